"""Request smuggling attempts against the local gateway, sent on raw sockets.

Each :class:`Attempt` is the exact bytes a client sends on one connection: a request whose
framing is ambiguous (conflicting ``Content-Length`` / ``Transfer-Encoding``, two lengths,
obs-fold, invalid header bytes, transfer codings other than ``chunked``, chunk sizes that
overflow), usually followed by a second request hidden where a lenient parser would see a
new one. A gateway that is not fooled refuses the first request (an error status, or closes
the connection) and never passes anything on as two requests.

:func:`run_attempts` sends every attempt and counts what the upstream behind the route (a real
HTTP server that counts what it receives) got meanwhile. Two controls, a valid chunked
request and two pipelined requests, show that the counting sees what does get through.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from tests.reliability.upstreams import Upstream

PATH = "/smuggle/{proxy+}"
HIDDEN = b"GET /smuggle/hidden HTTP/1.1\r\nHost: gw\r\n\r\n"


@dataclass(frozen=True)
class Attempt:
    name: str
    data: bytes
    passes: int = 0
    """How many requests the upstream should receive: 0 for an attempt, 1 or 2 for a control."""
    held: bool = False
    """The request announces more body than is sent: the gateway may wait for it instead of
    refusing, but must not answer anything else on the connection or let the hidden request
    through."""


def _post(headers: bytes, body: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    return b"POST /smuggle/a " + version + b"\r\nHost: gw\r\n" + headers + b"\r\n" + body


ATTEMPTS: tuple[Attempt, ...] = (
    Attempt("Content-Length then Transfer-Encoding (CL.TE)",
            _post(b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n" + HIDDEN)),
    Attempt("Transfer-Encoding then Content-Length (TE.CL)",
            _post(b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
                  b"2c\r\n" + HIDDEN + b"\r\n0\r\n\r\n")),
    Attempt("two different Content-Lengths",
            _post(b"Content-Length: 0\r\nContent-Length: 44\r\n", HIDDEN)),
    Attempt("two equal Content-Lengths", _post(b"Content-Length: 2\r\nContent-Length: 2\r\n", b"ab")),
    Attempt("Content-Length as a list", _post(b"Content-Length: 2, 2\r\n", b"ab")),
    Attempt("Content-Length with a sign", _post(b"Content-Length: +2\r\n", b"ab")),
    Attempt("negative Content-Length", _post(b"Content-Length: -1\r\n", b"ab" + HIDDEN)),
    Attempt("hex Content-Length", _post(b"Content-Length: 0x2c\r\n", HIDDEN)),
    Attempt("Content-Length beyond 64 bits",
            _post(b"Content-Length: 99999999999999999999999\r\n", HIDDEN)),
    Attempt("Transfer-Encoding: chunked, identity",
            _post(b"Transfer-Encoding: chunked, identity\r\n", b"0\r\n\r\n" + HIDDEN)),
    Attempt("Transfer-Encoding: identity with a length",
            _post(b"Transfer-Encoding: identity\r\nContent-Length: 2\r\n", b"ab")),
    Attempt("Transfer-Encoding: gzip, chunked",
            _post(b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n" + HIDDEN)),
    Attempt("Transfer-Encoding: xchunked",
            _post(b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n" + HIDDEN)),
    Attempt("Transfer-Encoding in capitals and a length",
            _post(b"Transfer-Encoding: CHUNKED\r\nContent-Length: 6\r\n", b"0\r\n\r\n" + HIDDEN)),
    Attempt("two Transfer-Encoding headers",
            _post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
                  b"0\r\n\r\n" + HIDDEN)),
    Attempt("space before the colon of Transfer-Encoding",
            _post(b"Transfer-Encoding : chunked\r\nContent-Length: 6\r\n", b"0\r\n\r\n" + HIDDEN)),
    Attempt("Transfer-Encoding folded onto the next line (obs-fold)",
            _post(b"Transfer-Encoding:\r\n chunked\r\nContent-Length: 6\r\n", b"0\r\n\r\n" + HIDDEN)),
    Attempt("obs-fold in an ordinary header",
            b"GET /smuggle/a HTTP/1.1\r\nHost: gw\r\nX-Note: one\r\n two\r\n\r\n" + HIDDEN),
    Attempt("Transfer-Encoding ending in a bare CR",
            _post(b"Transfer-Encoding: chunked\r\r\nContent-Length: 6\r\n", b"0\r\n\r\n" + HIDDEN)),
    Attempt("NUL byte in a header value",
            b"GET /smuggle/a HTTP/1.1\r\nHost: gw\r\nX-Note: a\x00b\r\n\r\n" + HIDDEN),
    Attempt("bare CR inside a header value",
            b"GET /smuggle/a HTTP/1.1\r\nHost: gw\r\nX-Note: a\rContent-Length: 44\r\n\r\n" + HIDDEN),
    Attempt("control byte in a header name",
            b"GET /smuggle/a HTTP/1.1\r\nHost: gw\r\nX\x01Note: b\r\n\r\n" + HIDDEN),
    Attempt("bare LF line endings",
            b"POST /smuggle/a HTTP/1.1\nHost: gw\nContent-Length: 6\nTransfer-Encoding: chunked\n\n"
            b"0\n\n" + HIDDEN),
    Attempt("chunk size beyond 64 bits",
            _post(b"Transfer-Encoding: chunked\r\n", b"FFFFFFFFFFFFFFFFFFFF\r\nab\r\n0\r\n\r\n" + HIDDEN)),
    Attempt("negative chunk size",
            _post(b"Transfer-Encoding: chunked\r\n", b"-2\r\nab\r\n0\r\n\r\n" + HIDDEN)),
    Attempt("chunk size with trailing garbage",
            _post(b"Transfer-Encoding: chunked\r\n", b"2 x\r\nab\r\n0\r\n\r\n" + HIDDEN)),
    Attempt("NUL in a chunk extension",
            _post(b"Transfer-Encoding: chunked\r\n", b"2;\x00\r\nab\r\n0\r\n\r\n" + HIDDEN)),
    Attempt("chunk lines ending in bare LF",
            _post(b"Transfer-Encoding: chunked\r\n", b"2\nab\n0\n\n" + HIDDEN)),
    Attempt("Content-Length in the chunked trailer",
            _post(b"Transfer-Encoding: chunked\r\n", b"0\r\nContent-Length: 44\r\n\r\n" + HIDDEN)),
    Attempt("HTTP/1.0 with Transfer-Encoding",
            _post(b"Transfer-Encoding: chunked\r\n", b"0\r\n\r\n" + HIDDEN, b"HTTP/1.0")),
    Attempt("HTTP/1.0 with Transfer-Encoding and a length",
            _post(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n" + HIDDEN,
                  b"HTTP/1.0")),
    Attempt("HTTP/0.9 request line", b"GET /smuggle/a\r\n\r\n"),
    Attempt("two Host headers", b"GET /smuggle/a HTTP/1.1\r\nHost: gw\r\nHost: other\r\n\r\n" + HIDDEN),
    Attempt("header section larger than 64 KiB",
            b"GET /smuggle/a HTTP/1.1\r\nHost: gw\r\nX-Pad: " + b"a" * 70000 + b"\r\n\r\n" + HIDDEN),
    Attempt("HTTP/2 preface on the HTTP/1.1 port", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    Attempt("HTTP/2.0 in a request line", b"GET /smuggle/a HTTP/2.0\r\nHost: gw\r\n\r\n" + HIDDEN),
    Attempt("chunk size of 2^63-1 bytes, the hidden request inside it",
            _post(b"Transfer-Encoding: chunked\r\n", b"7FFFFFFFFFFFFFFF\r\nab" + HIDDEN), held=True),
    # controls: what a correct client sends does get through, and is counted
    Attempt("control: a valid chunked POST",
            _post(b"Transfer-Encoding: chunked\r\n", b"2\r\nab\r\n0\r\n\r\n"), passes=1),
    Attempt("control: two pipelined GETs",
            b"GET /smuggle/a HTTP/1.1\r\nHost: gw\r\n\r\n" + HIDDEN, passes=2),
)


@dataclass(frozen=True)
class Outcome:
    attempt: Attempt
    statuses: tuple[int, ...]
    """The status of every response read on the connection, in order."""
    reached_upstream: int
    received: bytes = b""
    """Everything the gateway sent back on the connection."""

    @property
    def refused(self) -> bool:
        """The first request got an error status, or no response before the connection closed."""
        return not self.statuses or self.statuses[0] >= 400

    @property
    def as_expected(self) -> bool:
        if self.attempt.passes:
            return self.reached_upstream == self.attempt.passes and set(self.statuses) == {200}
        if self.attempt.held and not self.statuses:
            return self.reached_upstream == 0
        return self.refused and len(self.statuses) <= 1 and self.reached_upstream == 0


def exchange(port: int, data: bytes, *, quiet_seconds: float = 1.5) -> bytes:
    """Send ``data`` on a new connection; everything received until it closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=quiet_seconds) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass
        received = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return received


def statuses(received: bytes) -> tuple[int, ...]:
    """The status codes of the responses in ``received`` (status lines at message starts)."""
    found = []
    rest = received
    while rest.startswith(b"HTTP/"):
        line, _, rest = rest.partition(b"\r\n")
        parts = line.split(b" ")
        code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        head, _, rest = rest.partition(b"\r\n\r\n")
        length = 0
        for header in head.split(b"\r\n"):
            name, _, value = header.partition(b":")
            if name.strip().lower() == b"content-length" and value.strip().isdigit():
                length = int(value.strip())
        if code != 100:
            found.append(code)
        rest = rest[length:] if code != 100 else rest
    return tuple(found)


def run_attempts(gateway_port: int, upstream: Upstream,
                 attempts: tuple[Attempt, ...] = ATTEMPTS) -> list[Outcome]:
    """Send each attempt and count what reached ``upstream`` meanwhile."""
    outcomes = []
    for attempt in attempts:
        before = upstream.count()
        received = exchange(gateway_port, attempt.data)
        time.sleep(0.05)
        outcomes.append(Outcome(attempt, statuses(received), upstream.count() - before, received))
    return outcomes


def route_item(upstream: Upstream) -> dict:
    """The route the attempts target (a plain JSON document)."""
    return {
        "route_id": "smuggle", "path": PATH, "methods": ["GET", "POST"],
        "upstreams": [{"name": "main", "url": upstream.url, "priority": 0,
                       "allow_insecure": True}],
        "health_check": {"path": "/health", "interval_seconds": 10},
    }
