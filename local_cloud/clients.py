"""boto3 clients on the embedded AWS, all made from one shared session.

A boto3 session loads the service models on first use (a quarter of a second per new session),
so every part of the local cloud makes its clients here instead of creating sessions.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

_session: boto3.session.Session | None = None
_lock = threading.Lock()


def aws_client(service: str, *, endpoint_url: str, region: str, attempts: int = 2) -> Any:
    """A client for ``service`` on ``endpoint_url``, making at most ``attempts`` tries."""
    global _session
    with _lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client(
            service, endpoint_url=endpoint_url, region_name=region,
            config=Config(retries={"total_max_attempts": attempts}),
        )


class AwsClients:
    """Clients on one endpoint, created on first use (one try per call: no retried writes)."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = aws_client(service, endpoint_url=self.endpoint_url,
                                                region=self.region, attempts=1)
        return self._clients[service]
