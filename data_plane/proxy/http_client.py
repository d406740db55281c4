"""The one place the data-plane function opens sockets to upstreams.

:class:`HttpClient` wraps one urllib3 ``PoolManager``: connections are kept alive and reused
across requests and, since :func:`shared_client` keeps one client per process, across
invocations of a warm function. One :meth:`HttpClient.send` is one exchange: no redirect is
followed (a 3xx goes back to the client), nothing is retried here (the caller decides, knowing
the method), bodies pass through untouched (a gzip body stays gzip), and no header is added
(no default ``User-Agent`` or ``Accept-Encoding``). The time budget covers the whole exchange,
from connecting to the last body byte.

Every connection checks the address it actually connects to with
:func:`control_plane.model.egress.address_refusal`: a name is resolved here, each address is
checked, and only an allowed one is connected to (TLS still verifies the name). A name that
resolved to a public address when the route was validated and to a private one now (DNS
rebinding) is refused. Loopback addresses are allowed only with ``allow_loopback``.

Failures are raised as the tree drawn in :mod:`data_plane.proxy`; no urllib3 exception leaves
this module.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from urllib3 import HTTPConnectionPool, HTTPHeaderDict, HTTPSConnectionPool, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    LocationValueError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util import SKIP_HEADER, Timeout

from control_plane.model.egress import address_refusal

Header = tuple[str, str]

CHUNK_BYTES = 64 * 1024
MAX_BODY_BYTES = 4_500_000
"""The largest answer relayed: base64-encoded, it still fits Lambda's 6 MB response payload."""


class UpstreamError(Exception):
    """One try got no usable answer."""


class UpstreamConnectError(UpstreamError):
    """No connection was made: the request never reached the upstream."""


class EgressRefusedError(UpstreamConnectError):
    """Every address of the upstream's host is one turnout may not call."""


class UpstreamResetError(UpstreamError):
    """The connection broke after the request went out, or the answer was unusable."""


class UpstreamTimeout(UpstreamError):
    """No complete answer within the try's time budget."""


class UpstreamResponseTooLarge(UpstreamError):
    """The answer is larger than a Lambda proxy result can carry."""


@dataclass(frozen=True)
class UpstreamReply:
    """A complete answer from an upstream."""

    status: int
    headers: list[Header]
    body: bytes


class _EgressRefused(NewConnectionError):
    """Raised inside urllib3's connection code; becomes :class:`EgressRefusedError`."""


class _EgressChecked:
    """Connection mixin: resolve, check every address, connect to an allowed one."""

    allow_loopback: ClassVar[bool] = False
    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        try:
            infos = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        refused: list[str] = []
        last_error: OSError | None = None
        for family, socktype, proto, _, sockaddr in infos:
            try:
                address = ipaddress.ip_address(str(sockaddr[0]))
            except ValueError:
                refused.append(f"{sockaddr[0]}: not an IP address")
                continue
            refusal = address_refusal(address, allow_loopback=self.allow_loopback)
            if refusal is not None:
                refused.append(f"{address}: {refusal}")
                continue
            try:
                return self._connect(family, socktype, proto, sockaddr)
            except OSError as exc:
                last_error = exc
        if last_error is None:
            raise _EgressRefused(
                self,  # type: ignore[arg-type]
                f"no address of {self.host} may be called ({'; '.join(refused) or 'none found'})",
            )
        if isinstance(last_error, TimeoutError):
            raise ConnectTimeoutError(self, f"connecting to {self.host} timed out")
        raise NewConnectionError(self, f"Failed to establish a new connection: {last_error}")  # type: ignore[arg-type]

    def _connect(self, family: int, socktype: int, proto: int, sockaddr: Any) -> socket.socket:
        sock = socket.socket(family, socktype, proto)
        try:
            for option in self.socket_options or ():
                sock.setsockopt(*option)
            if isinstance(self.timeout, int | float):
                sock.settimeout(self.timeout)
            if self.source_address:
                sock.bind(self.source_address)
            sock.connect(sockaddr)
        except OSError:
            sock.close()
            raise
        return sock


def _pool_manager(allow_loopback: bool, max_hosts: int, max_connections_per_host: int) -> PoolManager:
    attributes = {"allow_loopback": allow_loopback}
    http_connection = type("EgressCheckedHTTPConnection", (_EgressChecked, HTTPConnection), attributes)
    https_connection = type("EgressCheckedHTTPSConnection", (_EgressChecked, HTTPSConnection), attributes)
    manager = PoolManager(num_pools=max_hosts, maxsize=max_connections_per_host, block=False)
    manager.pool_classes_by_scheme = {
        "http": type("EgressCheckedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_connection}),
        "https": type("EgressCheckedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_connection}),
    }
    return manager


class HttpClient:
    """Pooled, egress-checked HTTP exchanges with upstreams; thread-safe."""

    def __init__(
        self,
        *,
        allow_loopback: bool = False,
        max_hosts: int = 64,
        max_connections_per_host: int = 64,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.allow_loopback = allow_loopback
        self.max_body_bytes = max_body_bytes
        self._pool = _pool_manager(allow_loopback, max_hosts, max_connections_per_host)

    def send(
        self,
        method: str,
        url: str,
        headers: Sequence[Header],
        body: bytes,
        *,
        timeout_seconds: float,
    ) -> UpstreamReply:
        """One exchange; the complete answer, or one of the :class:`UpstreamError` tree."""
        deadline = time.monotonic() + timeout_seconds
        if timeout_seconds <= 0:
            raise UpstreamTimeout("no time left for this try")
        outgoing = _outgoing_headers(headers)
        try:
            response = self._pool.urlopen(
                method,
                url,
                body=body or None,
                headers=outgoing,
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
                timeout=Timeout(connect=timeout_seconds, read=timeout_seconds),
            )
        except Exception as exc:  # noqa: BLE001 - mapped into the tree, whatever urllib3 raised
            raise _mapped(exc) from exc
        try:
            reply = UpstreamReply(
                status=response.status,
                headers=[(str(name), str(value)) for name, value in response.headers.items()],
                body=self._read_body(response, deadline),
            )
        except BaseException:
            response.close()
            response.release_conn()
            raise
        response.release_conn()
        return reply

    def _read_body(self, response: Any, deadline: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UpstreamTimeout("the answer did not complete in time")
            sock = getattr(getattr(response, "connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(remaining)
            try:
                chunk = response.read(CHUNK_BYTES, decode_content=False)
            except Exception as exc:  # noqa: BLE001 - mapped into the tree
                raise _mapped(exc) from exc
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_body_bytes:
                raise UpstreamResponseTooLarge(f"the answer is larger than {self.max_body_bytes} bytes")
            chunks.append(chunk)

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.clear()


def _outgoing_headers(headers: Sequence[Header]) -> Any:
    outgoing = HTTPHeaderDict()
    for name, value in headers:
        outgoing.add(name, value)
    for name in ("User-Agent", "Accept-Encoding"):
        if name not in outgoing:
            outgoing[name] = SKIP_HEADER
    return outgoing


def _mapped(exc: BaseException) -> UpstreamError:
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, _EgressRefused):
        return EgressRefusedError(str(exc))
    if isinstance(exc, ConnectTimeoutError | NameResolutionError | NewConnectionError | SSLError):
        return UpstreamConnectError(f"could not connect: {_short(exc)}")
    if isinstance(exc, LocationValueError | ValueError):
        # The text may quote a header value (a credential): leave it out.
        return UpstreamConnectError(f"the request could not be sent ({type(exc).__name__})")
    if isinstance(exc, ReadTimeoutError | TimeoutError):
        return UpstreamTimeout("the upstream did not answer in time")
    if isinstance(exc, ProtocolError | http.client.HTTPException | OSError | HTTPError):
        return UpstreamResetError(f"the exchange broke: {_short(exc)}")
    return UpstreamResetError(f"the exchange failed: {type(exc).__name__}")


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:297] + "..."


_shared: dict[bool, HttpClient] = {}
_shared_lock = threading.Lock()


def shared_client(*, allow_loopback: bool) -> HttpClient:
    """The process's client (one per ``allow_loopback`` value), so pools outlive invocations."""
    with _shared_lock:
        client = _shared.get(allow_loopback)
        if client is None:
            client = _shared[allow_loopback] = HttpClient(allow_loopback=allow_loopback)
        return client
