"""The one place that opens sockets to upstreams.

A :class:`Transport` owns a pooled aiohttp ``ClientSession`` and runs one
exchange at a time per call of :meth:`Transport.exchange`: it sends the method,
URL (already percent-encoded, sent as is), headers and a streamed body, and
yields an :class:`UpstreamResponse` whose body is read chunk by chunk.

The session passes bodies through untouched (no decompression: a gzip body
stays gzip), follows no redirects, keeps no cookies between clients, ignores
proxy environment variables and adds no headers of its own (no default
``User-Agent``, ``Accept`` or ``Accept-Encoding``). The integration's timeout
covers the whole exchange, connecting through the last body byte, as API
Gateway's integration timeout does.

Every failure is raised as one of::

    UpstreamError               no usable response (invalid response, broken body) -> 502
    ├── UpstreamConnectError    refused, unreachable, DNS or TLS failure, or the
    │                           connection dropped before a response -> 502
    └── UpstreamTimeout         no complete response within the timeout -> 504

Other aiohttp exceptions never leave this module.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from data_plane.headers import Header

CHUNK_BYTES = 64 * 1024
_FAILURES = (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError)


class UpstreamError(Exception):
    """The upstream gave no usable response."""


class UpstreamConnectError(UpstreamError):
    """No connection to the upstream, or it dropped before answering."""


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer completely within the integration timeout."""


@dataclass(frozen=True)
class UpstreamRequest:
    """What to send upstream."""

    method: str
    url: str
    headers: Sequence[Header]
    body: AsyncIterable[bytes] | None
    timeout_ms: int


class UpstreamResponse:
    """An upstream's status and headers, with its body still to be read."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status: int = response.status
        self.reason: str | None = response.reason
        self.headers: list[Header] = [
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in response.raw_headers
        ]

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, exactly as the upstream sent it."""
        try:
            async for chunk in self._response.content.iter_chunked(CHUNK_BYTES):
                yield chunk
        except _FAILURES as exc:
            raise _mapped(exc) from exc


class Transport:
    """A pool of upstream connections; create and use it inside one event loop."""

    def __init__(self, *, pool_size: int = 256, keepalive_timeout_seconds: float = 30.0) -> None:
        self._pool_size = pool_size
        self._keepalive_timeout_seconds = keepalive_timeout_seconds
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the connection pool."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._pool_size,
                    keepalive_timeout=self._keepalive_timeout_seconds,
                ),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                trust_env=False,
            )

    async def close(self) -> None:
        """Close every pooled connection."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    @asynccontextmanager
    async def exchange(self, request: UpstreamRequest) -> AsyncIterator[UpstreamResponse]:
        """Send ``request`` and yield the response once its headers have arrived."""
        if self._session is None:
            raise RuntimeError("Transport.start() was not awaited")
        try:
            response = await self._session.request(
                request.method,
                URL(request.url, encoded=True),
                headers=CIMultiDict(request.headers),
                data=request.body,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=request.timeout_ms / 1000),
            )
        except _FAILURES as exc:
            raise _mapped(exc) from exc
        try:
            yield UpstreamResponse(response)
        finally:
            response.release()


def _mapped(exc: BaseException) -> UpstreamError:
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, asyncio.TimeoutError):
        return UpstreamTimeout("the upstream did not answer in time")
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ServerDisconnectedError):
        return UpstreamConnectError(f"could not reach the upstream: {exc}")
    if isinstance(exc, aiohttp.ClientOSError):
        return UpstreamConnectError(f"the upstream connection failed: {exc}")
    return UpstreamError(f"the upstream exchange failed: {type(exc).__name__}: {exc}")
