"""The embedded AWS: moto's server on 127.0.0.1, configured for the local cloud.

moto runs in this process (``ThreadedMotoServer``), so the patches in
:mod:`local_cloud.patches` reach the very backends that serve the requests. The AWS CLI and
boto3 talk to it with ``--endpoint-url`` / ``AWS_ENDPOINT_URL`` (region ``us-east-1``, any
credentials).

Configuration applied on start (or on :meth:`Emulator.attach` to a server already running in
this process):

- ``MOTO_PORT`` names this server, because moto's Step Functions interpreter sends its service
  calls (``lambda:invoke``, ``dynamodb:*``, ...) to ``localhost:$MOTO_PORT``;
- the Step Functions interpreter is switched on and Lambda's Docker runtime off
  (``POST /moto-api/config``);
- werkzeug's per-request log lines and moto's noisy loggers are silenced.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import urllib.error
import urllib.request
import warnings
from urllib.parse import urlsplit

DEFAULT_PORT = 4566
REGION = "us-east-1"
LOOPBACK = "127.0.0.1"

EMULATOR_CONFIG = {
    "lambda": {"use_docker": False},
    "stepfunctions": {"execute_state_machine": True},
}


class EmulatorError(OSError):
    """The embedded AWS could not be started or configured."""


def quiet_logs() -> None:
    """Silence werkzeug's per-request lines and moto's chatter; real errors still show."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", module=r"moto(\.|$)")


def _post_json(url: str, body: object, *, timeout: float = 10.0) -> bytes:
    request = urllib.request.Request(  # noqa: S310 - always http://127.0.0.1
        url,
        data=json.dumps(body).encode("utf-8"),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return response.read()


def _ensure_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise EmulatorError(
                f"cannot serve the AWS endpoint on {host}:{port}: {exc.strerror or exc}"
            ) from exc


class Emulator:
    """moto's server on 127.0.0.1:``port``, started in this process (or attached to)."""

    def __init__(self, *, port: int = DEFAULT_PORT) -> None:
        self.port = port
        self._server = None  # moto.server.ThreadedMotoServer, when this object started it
        self._previous_moto_port: str | None = None

    @property
    def url(self) -> str:
        """The endpoint URL for boto3 / the AWS CLI."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def owns_server(self) -> bool:
        """True when :meth:`start` launched the server (and :meth:`stop` shuts it down)."""
        return self._server is not None

    @classmethod
    def attach(cls, url: str) -> Emulator:
        """Configure a moto server already running in this process at ``url``."""
        parts = urlsplit(url)
        if parts.hostname != LOOPBACK or parts.port is None:
            raise EmulatorError(f"the embedded AWS must be http://{LOOPBACK}:<port>, not {url}")
        emulator = cls(port=parts.port)
        emulator._configure()
        return emulator

    def start(self) -> None:
        """Start the server and configure it; raises :class:`EmulatorError` if the port is taken."""
        if self._server is not None:
            return
        from moto.server import ThreadedMotoServer

        quiet_logs()
        _ensure_port_free(LOOPBACK, self.port)
        server = ThreadedMotoServer(ip_address=LOOPBACK, port=self.port, verbose=False)
        server.start()
        self._server = server
        self._previous_moto_port = os.environ.get("MOTO_PORT")
        try:
            self._configure()
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        """Shut the server down if this object started it (idempotent); restores ``MOTO_PORT``."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()
        if self._previous_moto_port is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = self._previous_moto_port

    def reset(self) -> None:
        """Drop every resource (``POST /moto-api/reset``); the configuration stays."""
        _post_json(f"{self.url}/moto-api/reset", {})

    def _configure(self) -> None:
        quiet_logs()
        os.environ["MOTO_PORT"] = str(self.port)
        try:
            _post_json(f"{self.url}/moto-api/config", EMULATOR_CONFIG)
        except (urllib.error.URLError, OSError) as exc:
            raise EmulatorError(f"the AWS endpoint at {self.url} does not answer: {exc}") from exc
