"""One HTTP health probe, under the egress policy.

``GET <path>`` on one :class:`~control_plane.health.jobs.Endpoint`; the probe succeeds when the
status is one of the expected ones, within the timeout (connect, TLS and response head
together). The host is resolved here and every address is checked before connecting (url
upstreams with :func:`~control_plane.model.egress.address_refusal`, in-VPC targets with
:func:`~control_plane.model.egress.target_refusal`); the connection goes to the checked
address, so DNS rebinding cannot point a probe at the metadata service. Loopback is allowed
only with ``allow_loopback`` (``TURNOUT_ALLOW_LOOPBACK_UPSTREAMS``). HTTPS certificates are
verified against the host name, as API Gateway does for its HTTP integrations.

Errors are short sentences for people (``connection refused``, ``status 500``, ``timed out
after 2000 ms``): never a URL with credentials, never a response body.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from control_plane.health.jobs import Endpoint
from control_plane.model import egress

USER_AGENT = "turnout-prober/1.0"

Resolver = Callable[[str, int], Iterable[str]]


@dataclass(frozen=True)
class ProbeResult:
    success: bool
    status: int | None = None
    error: str | None = None
    duration_ms: float = 0.0


class _ProbeError(Exception):
    """A probe failure, with the sentence that explains it."""


def system_resolver(host: str, port: int) -> list[str]:
    """Addresses of ``host`` (``[]`` when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def probe(endpoint: Endpoint, *, timeout_seconds: float, expected_statuses: Iterable[int],
          allow_loopback: bool = False, resolver: Resolver = system_resolver,
          tls_context: ssl.SSLContext | None = None) -> ProbeResult:
    """Probe ``endpoint`` once; never raises."""
    started = time.monotonic()
    deadline = started + timeout_seconds

    def elapsed_ms() -> float:
        return (time.monotonic() - started) * 1000.0

    try:
        status = _request(endpoint, deadline, timeout_seconds, allow_loopback, resolver,
                          tls_context)
    except _ProbeError as exc:
        return ProbeResult(False, None, str(exc), elapsed_ms())
    if status in set(expected_statuses):
        return ProbeResult(True, status, None, elapsed_ms())
    return ProbeResult(False, status, f"status {status}", elapsed_ms())


def _request(endpoint: Endpoint, deadline: float, timeout_seconds: float, allow_loopback: bool,
             resolver: Resolver, tls_context: ssl.SSLContext | None) -> int:
    timeout_text = f"timed out after {round(timeout_seconds * 1000)} ms"
    addresses = _allowed_addresses(endpoint, allow_loopback, resolver)
    connection = _connection(endpoint, addresses[0], _remaining(deadline, timeout_text),
                             tls_context)
    try:
        connection.putrequest("GET", endpoint.path, skip_accept_encoding=True)
        connection.putheader("User-Agent", USER_AGENT)
        connection.putheader("Accept", "*/*")
        connection.putheader("Connection", "close")
        connection.endheaders()
        if connection.sock is not None:
            connection.sock.settimeout(_remaining(deadline, timeout_text))
        response = connection.getresponse()
        return int(response.status)
    except TimeoutError as exc:
        raise _ProbeError(timeout_text) from exc
    except ssl.SSLCertVerificationError as exc:
        raise _ProbeError(f"TLS certificate not accepted: {exc.verify_message}") from exc
    except ssl.SSLError as exc:
        raise _ProbeError(f"TLS handshake failed ({exc.reason or 'unknown reason'})") from exc
    except ConnectionRefusedError as exc:
        raise _ProbeError("connection refused") from exc
    except ConnectionResetError as exc:
        raise _ProbeError("connection reset") from exc
    except http.client.HTTPException as exc:
        raise _ProbeError(f"invalid HTTP response ({type(exc).__name__})") from exc
    except OSError as exc:
        raise _ProbeError(f"connection failed ({exc.strerror or type(exc).__name__})") from exc
    finally:
        connection.close()


def _remaining(deadline: float, timeout_text: str) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _ProbeError(timeout_text)
    return remaining


def _allowed_addresses(endpoint: Endpoint, allow_loopback: bool,
                       resolver: Resolver) -> list[str]:
    literal = egress.parse_ip(endpoint.host)
    candidates = [str(literal)] if literal is not None else list(
        resolver(endpoint.host, endpoint.port))
    if not candidates:
        raise _ProbeError("the host name does not resolve")
    allowed: list[str] = []
    refusals: list[str] = []
    for text in candidates:
        refusal = _refusal(text, endpoint.is_target, allow_loopback)
        if refusal is None:
            allowed.append(text)
        else:
            refusals.append(refusal)
    if not allowed:
        raise _ProbeError(f"address not allowed: {refusals[0]}")
    return allowed


def _refusal(text: str, is_target: bool, allow_loopback: bool) -> str | None:
    address_text, _, zone = text.partition("%")
    address = egress.parse_ip(address_text)
    if address is None or zone:
        return "not a plain IP address"
    if allow_loopback and egress.is_loopback(str(address)):
        return None
    if is_target:
        refusal = egress.target_refusal(str(address))
        return None if refusal is None else "not a private address"
    return egress.address_refusal(address)


class _PinnedConnection(http.client.HTTPConnection):
    """Plain HTTP to an address that was checked, with the endpoint's host in ``Host``."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedTlsConnection(http.client.HTTPSConnection):
    """HTTPS to an address that was checked; the certificate must match the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float,
                 context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        try:
            self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


def _connection(endpoint: Endpoint, address: str, timeout: float,
                tls_context: ssl.SSLContext | None) -> http.client.HTTPConnection:
    if endpoint.scheme == "https":
        context = tls_context or ssl.create_default_context()
        return _PinnedTlsConnection(endpoint.host, endpoint.port, address, timeout, context)
    return _PinnedConnection(endpoint.host, endpoint.port, address, timeout)
