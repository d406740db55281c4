"""Access control applied before a request reaches its integration, as API Gateway does:
the resource policy (``aws:SourceIp``), then API keys, then throttling.

:func:`check_access` returns the refusal to send, or None to let the request through.
"""

from __future__ import annotations

from aiohttp import web

from data_plane.access_log import Exchange
from data_plane.gateway_config import GatewayConfig
from data_plane.routing import Match


async def check_access(
    request: web.Request, *, route: Match, config: GatewayConfig, exchange: Exchange
) -> web.StreamResponse | None:
    return None
