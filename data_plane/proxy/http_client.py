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
from collections.abc import Callable, Sequence
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
from data_plane.proxy.proxy_result import MAX_PAYLOAD_BYTES

Header = tuple[str, str]

CHUNK_BYTES = 64 * 1024
MAX_BODY_BYTES = MAX_PAYLOAD_BYTES * 3 // 4
"""The largest answer read: base64-encoded, a larger one could not fit a Lambda proxy result."""


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


class UpstreamCancelled(UpstreamError):
    """The exchange was cancelled by its caller before it completed."""


@dataclass(frozen=True)
class UpstreamReply:
    """A complete answer from an upstream.

    ``body`` is the one buffer the body was read into; ``first_byte_seconds`` is the time from
    sending the request to the answer's status line and headers.
    """

    status: int
    headers: list[Header]
    body: bytes | bytearray
    first_byte_seconds: float = 0.0


class Cancellation:
    """Lets another thread stop an exchange: :meth:`cancel` shuts its socket down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancelled

    def cancel(self) -> None:
        """Stop the exchange: a blocked read returns at once, the connection is discarded.

        Sockets are shut down under the lock, so one the exchange has stopped watching (and may
        have returned to the pool) is never touched.
        """
        with self._lock:
            self._cancelled = True
            for sock in self._sockets:
                _shut(sock)

    def _watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if not self._cancelled:
                self._sockets.add(sock)
                return
        _shut(sock)

    def _forget(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sockets.discard(sock)  # type: ignore[arg-type]


def _shut(sock: socket.socket) -> None:
    try:
        # The plain socket's shutdown, also for TLS: the reading thread keeps its TLS state.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


_exchange = threading.local()
"""The :class:`Cancellation` of the exchange the current thread runs, if any."""


class _FinalResponse(http.client.HTTPResponse):
    """Reads past interim ``1xx`` answers (http.client itself skips only ``100``)."""

    def _read_status(self) -> tuple[str, int, str]:  # type: ignore[override]
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if status == http.client.CONTINUE or not 100 <= status < 200 or status == 101:
                return version, status, reason
            http.client._read_headers(self.fp)  # type: ignore[attr-defined]


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

    def getresponse(self) -> Any:
        """Wait for the answer, cancellable through the thread's :class:`Cancellation`."""
        cancellation = getattr(_exchange, "cancellation", None)
        sock = getattr(self, "sock", None)
        if cancellation is not None:
            cancellation._watch(sock)
        try:
            return super().getresponse()  # type: ignore[misc]
        finally:
            if cancellation is not None:
                cancellation._forget(sock)

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
    attributes = {"allow_loopback": allow_loopback, "response_class": _FinalResponse}
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
        connect_timeout_seconds: float | None = None,
        cancellation: Cancellation | None = None,
        on_first_byte: Callable[[], None] | None = None,
    ) -> UpstreamReply:
        """One exchange; the complete answer, or one of the :class:`UpstreamError` tree.

        ``timeout_seconds`` bounds the whole exchange, ``connect_timeout_seconds`` (at most
        that) the connection; ``on_first_byte`` is called once the status and headers are in.
        """
        started = time.monotonic()
        deadline = started + timeout_seconds
        if timeout_seconds <= 0:
            raise UpstreamTimeout("no time left for this try")
        connect = timeout_seconds if connect_timeout_seconds is None else min(
            connect_timeout_seconds, timeout_seconds)
        outgoing = _outgoing_headers(headers)
        _exchange.cancellation = cancellation
        try:
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
                    timeout=Timeout(total=timeout_seconds, connect=connect, read=timeout_seconds),
                )
            except Exception as exc:  # noqa: BLE001 - mapped into the tree, whatever urllib3 raised
                raise _mapped(exc, cancellation) from exc
            first_byte_seconds = time.monotonic() - started
            if on_first_byte is not None:
                on_first_byte()
            sock = getattr(getattr(response, "connection", None), "sock", None)
            if cancellation is not None:
                cancellation._watch(sock)
            try:
                reply = UpstreamReply(
                    status=response.status,
                    headers=[(str(name), str(value)) for name, value in response.headers.items()],
                    body=self._read_body(response, sock, deadline, cancellation),
                    first_byte_seconds=first_byte_seconds,
                )
            except Exception as exc:  # noqa: BLE001 - mapped into the tree
                response.close()
                response.release_conn()
                raise _mapped(exc, cancellation) from exc
            finally:
                if cancellation is not None:
                    cancellation._forget(sock)
            if cancellation is not None and cancellation.cancelled:
                response.close()  # its socket may have been shut down: never pooled again
            response.release_conn()
            return reply
        finally:
            _exchange.cancellation = None

    def _read_body(
        self, response: Any, sock: Any, deadline: float, cancellation: Cancellation | None
    ) -> bytearray:
        declared = _content_length(response)
        if declared is not None and declared > self.max_body_bytes:
            raise UpstreamResponseTooLarge(f"the answer is larger than {self.max_body_bytes} bytes")
        body = bytearray()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UpstreamTimeout("the answer did not complete in time")
            try:
                if sock is not None:
                    sock.settimeout(remaining)
                chunk = response.read(CHUNK_BYTES, decode_content=False)
            except Exception as exc:  # noqa: BLE001 - mapped into the tree
                raise _mapped(exc, cancellation) from exc
            if cancellation is not None and cancellation.cancelled:
                raise UpstreamCancelled("the exchange was cancelled")
            if not chunk:
                return body
            if len(body) + len(chunk) > self.max_body_bytes:
                raise UpstreamResponseTooLarge(f"the answer is larger than {self.max_body_bytes} bytes")
            body += chunk

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.clear()


def _content_length(response: Any) -> int | None:
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _outgoing_headers(headers: Sequence[Header]) -> Any:
    outgoing = HTTPHeaderDict()
    for name, value in headers:
        outgoing.add(name, value)
    for name in ("User-Agent", "Accept-Encoding"):
        if name not in outgoing:
            outgoing[name] = SKIP_HEADER
    return outgoing


def _mapped(exc: BaseException, cancellation: Cancellation | None = None) -> UpstreamError:
    if isinstance(exc, UpstreamError):
        return exc
    if cancellation is not None and cancellation.cancelled:
        return UpstreamCancelled("the exchange was cancelled")
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
