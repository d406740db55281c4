"""``HTTP_PROXY`` over a VPC link: the local gateway plays the internal ALB behind it.

Per request, as API Gateway and then the ALB would:

1. render the integration URI (its host is the ALB's DNS name, its port the listener's) and
   set the integration's mapped headers (``X-Turnout-Route: '<route_id>'``, replacing any the
   client sent);
2. match the listener's rules in priority order (:func:`match_rule`: ``http-header``,
   ``host-header``, ``path-pattern`` and ``http-request-method`` conditions, all of a rule's
   conditions must hold; values are ALB patterns with ``*`` and ``?``); no rule: the
   listener's default action (turnout's answers a fixed 404);
3. for a forward: pick a target group at random by weight among those weighted above 0
   (:func:`choose_group`), then a target round-robin among the group's healthy targets; when
   none is healthy, among all of them, as an ALB fails open (:func:`eligible_targets`);
4. forward to ``http://<ip>:<port><path>`` with ``Host`` still naming the ALB and
   ``X-Forwarded-Proto``/``-Port`` saying how the ALB was reached, and relay the answer as
   :mod:`data_plane.http_proxy` does.

Answers the ALB itself gives reach the client as API Gateway passes them through: 503 when
the chosen group has no target, 502 when the target refuses or breaks the connection, a
fixed response as configured. The integration timeout gives API Gateway's own 504.
"""

from __future__ import annotations

import functools
import itertools
import logging
import random
import re
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web

from data_plane.access_log import Exchange
from data_plane.alb_config import (
    AlbListener,
    AlbRule,
    AlbTarget,
    AlbTargetGroup,
    Condition,
    FixedResponse,
    Forward,
)
from data_plane.gateway_config import GatewayConfig, Integration, MethodConfig
from data_plane.gateway_responses import INTEGRATION_TIMEOUT, INTERNAL_SERVER_ERROR
from data_plane.headers import Header, response_headers_for_client
from data_plane.http_proxy import forwarded_headers, integration_url, relay, upstream_request
from data_plane.integration_headers import mapped_headers, with_mapped_headers
from data_plane.routing import Match
from data_plane.transport import Transport, UpstreamError, UpstreamTimeout

LOG = logging.getLogger("turnout.gateway")

_STATUS_TEXT = {502: "Bad Gateway", 503: "Service Temporarily Unavailable"}


# ---- the ALB's decisions (pure) ------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _pattern(value: str, *, case_sensitive: bool) -> re.Pattern[str]:
    """An ALB condition value (``*`` any characters, ``?`` one) as a whole-string regex."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value)
    return re.compile(body + r"\Z", (0 if case_sensitive else re.IGNORECASE) | re.DOTALL)


def condition_holds(condition: Condition, *, method: str, path: str, host: str,
                    headers: Sequence[Header]) -> bool:
    """Whether one rule condition holds for the request (unknown fields never hold)."""
    if condition.field == "http-header":
        name = (condition.header_name or "").lower()
        values = [v for n, v in headers if n.lower() == name]
        return any(_pattern(p, case_sensitive=False).match(v)
                   for p in condition.values for v in values)
    if condition.field == "host-header":
        hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return any(_pattern(p, case_sensitive=False).match(hostname) for p in condition.values)
    if condition.field == "path-pattern":
        return any(_pattern(p, case_sensitive=True).match(path) for p in condition.values)
    if condition.field == "http-request-method":
        return method in condition.values
    return False


def match_rule(listener: AlbListener, *, method: str, path: str, host: str,
               headers: Sequence[Header]) -> AlbRule | None:
    """The first rule, by priority, whose conditions all hold (None: the default action)."""
    for rule in listener.rules:
        if rule.conditions and all(
                condition_holds(c, method=method, path=path, host=host, headers=headers)
                for c in rule.conditions):
            return rule
    return None


def choose_group(forward: Forward, rng: random.Random) -> AlbTargetGroup | None:
    """A target group drawn by weight among those weighted above 0 (None: there is none)."""
    weighted = [(group, weight) for group, weight in forward.groups if weight > 0]
    if not weighted:
        return None
    groups, weights = zip(*weighted, strict=True)
    return rng.choices(groups, weights=weights)[0]


def eligible_targets(group: AlbTargetGroup) -> tuple[AlbTarget, ...]:
    """The healthy targets; every target when none is healthy (the ALB fails open)."""
    healthy = tuple(t for t in group.targets if t.healthy)
    return healthy or group.targets


# ---- the integration -------------------------------------------------------------------------


class AlbIntegration:
    """Serves resource methods whose integration is ``HTTP_PROXY`` with ``VPC_LINK``."""

    def __init__(self, transport: Transport, *, rng: random.Random | None = None) -> None:
        self._transport = transport
        self._rng = rng or random.Random()  # noqa: S311 - load spreading, not security
        self._turns: dict[str, itertools.count] = {}

    async def handle(
        self,
        request: web.Request,
        *,
        route: Match[MethodConfig],
        integration: Integration,
        config: GatewayConfig,
        exchange: Exchange,
    ) -> web.StreamResponse:
        """Pass ``request`` through the ALB the integration names, and relay the answer."""
        url = integration_url(request, route=route, integration=integration, config=config,
                              exchange=exchange)
        if url is None:
            return INTERNAL_SERVER_ERROR.to_web_response()
        port = url.port or (443 if url.scheme == "https" else 80)
        listener = config.alb.listener(url.host, port)
        if listener is None:
            LOG.warning("request %s: no ALB listener at %s:%d", exchange.request_id, url.host, port)
            return INTERNAL_SERVER_ERROR.to_web_response()
        headers = self._headers(request, route, integration, config, url.authority, port)
        parts = urlsplit(url.url)
        method = request.method if integration.http_method == "ANY" else integration.http_method
        rule = match_rule(listener, method=method, path=parts.path or "/", host=url.authority,
                          headers=headers)
        action = rule.action if rule is not None else listener.default_action
        if isinstance(action, FixedResponse):
            return _fixed(action)
        if not isinstance(action, Forward):
            LOG.warning("request %s: the ALB rule's action is not emulated (%s)",
                        exchange.request_id, action)
            return INTERNAL_SERVER_ERROR.to_web_response()
        group = choose_group(action, self._rng)
        target = self._next_target(group) if group is not None else None
        if target is None:
            return _alb_error(503)
        exchange.upstream_host = f"{target.ip}:{target.port}"
        path_and_query = parts.path or "/"
        if parts.query:
            path_and_query += "?" + parts.query
        host = f"[{target.ip}]" if ":" in target.ip else target.ip
        outgoing = upstream_request(request, url=f"http://{host}:{target.port}{path_and_query}",
                                    headers=headers, integration=integration)
        async with AsyncExitStack() as stack:
            try:
                response = await stack.enter_async_context(self._transport.exchange(outgoing))
            except UpstreamTimeout as exc:
                LOG.info("request %s: %s", exchange.request_id, exc)
                return INTEGRATION_TIMEOUT.to_web_response()
            except UpstreamError as exc:
                LOG.info("request %s: target %s: %s", exchange.request_id,
                         exchange.upstream_host, exc)
                return _alb_error(502)
            return await relay(request, response, exchange)

    def _headers(self, request: web.Request, route: Match[MethodConfig],
                 integration: Integration, config: GatewayConfig, authority: str,
                 port: int) -> list[Header]:
        query: Mapping[str, str] = {}
        if any(s.startswith("method.request.querystring.")
               for s in integration.request_parameters.values()):
            query = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
        mapped = mapped_headers(integration.request_parameters, headers=request.headers,
                                path_parameters=route.path_parameters, query=query,
                                stage_variables=config.stage_variables)
        through_alb = [("X-Forwarded-Proto", "http"), ("X-Forwarded-Port", str(port))]
        return with_mapped_headers(forwarded_headers(request, authority),
                                   [*mapped, *through_alb])

    def _next_target(self, group: AlbTargetGroup) -> AlbTarget | None:
        targets = eligible_targets(group)
        if not targets:
            return None
        turn = next(self._turns.setdefault(group.arn, itertools.count()))
        return targets[turn % len(targets)]


def _fixed(action: FixedResponse) -> web.Response:
    response = web.Response(status=action.status, body=action.body.encode())
    response.headers["Content-Type"] = action.content_type
    return response


def _alb_error(status: int) -> web.Response:
    """The ALB's own error page, as it reaches the client through API Gateway."""
    title = f"{status} {_STATUS_TEXT[status]}"
    body = (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n")
    response = web.Response(status=status, body=body.encode())
    for name, value in response_headers_for_client([("Server", "awselb/2.0"),
                                                    ("Content-Type", "text/html")]):
        response.headers[name] = value
    return response
