"""Fixtures shared by every test folder.

One embedded AWS endpoint (moto's server on 127.0.0.1) serves the whole test session; each
test that asks for ``aws`` gets it freshly reset. ``mock_aws`` is never used: entering it
would wipe the running server's state.
"""

from __future__ import annotations

import os
import socket
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

REGION = "us-east-1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class AwsEndpoint:
    url: str
    region: str = REGION

    def client(self, service: str, **kwargs):
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name=self.region, **kwargs)

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).read()  # noqa: S310 - loopback only


@pytest.fixture(scope="session", autouse=True)
def _fake_credentials() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                             "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN")}
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"  # noqa: S105 - the emulator's dummy key
    os.environ["AWS_DEFAULT_REGION"] = REGION
    os.environ.pop("AWS_SESSION_TOKEN", None)
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def aws_server() -> Iterator[AwsEndpoint]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    port = free_port()
    os.environ["MOTO_PORT"] = str(port)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield AwsEndpoint(url=f"http://127.0.0.1:{port}")
    server.stop()


@pytest.fixture
def aws(aws_server: AwsEndpoint) -> AwsEndpoint:
    """The embedded AWS endpoint, reset to empty for this test."""
    aws_server.reset()
    return aws_server
