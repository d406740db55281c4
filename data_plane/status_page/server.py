"""The status page's two paths, read-only:

    GET|HEAD /__turnout/             the page (one HTML document, inline style and script)
    GET|HEAD /__turnout              301 to /__turnout/
    GET|HEAD /__turnout/api/status   the status view as JSON; 503 {"error": ...} when the
                                     state cannot be read (the page keeps its last view)
    any other method                 405, Allow: GET, HEAD

The page's Content-Security-Policy lets only its own inline style and script apply (by their
SHA-256), fetches go only to its own origin, and nothing else loads: a route's text that
slipped past the page's escaping still could not run. Every answer is ``no-store``.

The view is read on a worker thread (boto3 blocks), at most once per ``max_age_seconds``
however many pages poll: requests meanwhile share the last read.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from aiohttp import web
from botocore.exceptions import BotoCoreError, ClientError

from control_plane.errors import GatewayError

LOG = logging.getLogger("turnout.gateway.status")

PAGE_PATH = "/__turnout/"
API_PATH = "/__turnout/api/status"
PATHS = frozenset({PAGE_PATH, PAGE_PATH.rstrip("/"), API_PATH})
MAX_AGE_SECONDS = 0.5
_HERE = Path(__file__).resolve().parent
_ALLOWED = ("GET", "HEAD")
_COMMON_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                   "Referrer-Policy": "no-referrer"}

StatusView = Callable[[], dict]


@dataclass(frozen=True)
class Page:
    """The assembled page and the policy that allows exactly its inline parts."""

    html: bytes
    content_security_policy: str


@cache
def page() -> Page:
    """``page.html`` with ``page.css`` and ``page.js`` inlined (read once)."""
    style = (_HERE / "page.css").read_text(encoding="utf-8")
    script = (_HERE / "page.js").read_text(encoding="utf-8")
    html = ((_HERE / "page.html").read_text(encoding="utf-8")
            .replace("{{style}}", style).replace("{{script}}", script))
    policy = "; ".join([
        "default-src 'none'",
        f"script-src '{_digest(script)}'",
        f"style-src '{_digest(style)}'",
        "connect-src 'self'",
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])
    return Page(html=html.encode("utf-8"), content_security_policy=policy)


class StatusPage:
    """Answers the requests for :data:`PATHS` from ``view()`` (the status view document)."""

    def __init__(self, view: StatusView, *, max_age_seconds: float = MAX_AGE_SECONDS) -> None:
        self._view = view
        self._max_age_seconds = max_age_seconds
        self._lock: asyncio.Lock | None = None
        self._last: tuple[float, int, bytes] | None = None

    @staticmethod
    def serves(path: str) -> bool:
        return path in PATHS

    async def handle(self, request: web.Request, path: str) -> web.Response:
        if request.method not in _ALLOWED:
            return web.json_response({"message": "the status page is read-only"}, status=405,
                                     headers={**_COMMON_HEADERS, "Allow": ", ".join(_ALLOWED)})
        if path == API_PATH:
            status, body = await self._read()
            return web.Response(status=status, body=body, content_type="application/json",
                                headers=_COMMON_HEADERS)
        if path != PAGE_PATH:
            return web.Response(status=301, headers={**_COMMON_HEADERS, "Location": PAGE_PATH})
        built = page()
        return web.Response(body=built.html, content_type="text/html", charset="utf-8",
                            headers={**_COMMON_HEADERS, "X-Frame-Options": "DENY",
                                     "Content-Security-Policy": built.content_security_policy})

    async def _read(self) -> tuple[int, bytes]:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._last[0] < self._max_age_seconds:
                return self._last[1], self._last[2]
            status, body = await asyncio.get_running_loop().run_in_executor(None, self._build)
            self._last = (time.monotonic(), status, body)
            return status, body

    def _build(self) -> tuple[int, bytes]:
        try:
            return 200, json.dumps(self._view(), default=str).encode("utf-8")
        except (BotoCoreError, ClientError, GatewayError, LookupError) as exc:
            message = " ".join(str(exc).split())[:400] or type(exc).__name__
            LOG.warning("status view unavailable: %s", message)
            return 503, json.dumps({"error": message}).encode("utf-8")


def _digest(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()
