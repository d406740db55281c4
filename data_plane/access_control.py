"""Access control applied before a request reaches its integration, in API Gateway's order:

1. the resource policy (:mod:`data_plane.resource_policy`), evaluated against the request's
   method ARN and the caller's address, which is the TCP peer of the connection: a client's
   ``X-Forwarded-For`` is never believed. Refused: 403 ``{"Message":"User: anonymous is not
   authorized to perform: execute-api:Invoke on resource: <arn>"}`` (``... with an explicit
   deny`` when a Deny statement matched), the account in the ARN masked as API Gateway does;
2. the API key, for methods with ``apiKeyRequired``: ``x-api-key`` must name an enabled key
   in a usage plan attached to the stage (:mod:`data_plane.api_keys`), else 403
   ``{"message":"Forbidden"}``. The accepted key's id is left on the exchange as
   ``exchange.api_key_id`` (an ``AWS_PROXY`` event carries it as
   ``requestContext.identity.apiKeyId``);
3. throttling (:mod:`data_plane.throttling`): the key's usage-plan throttle, per key, then the
   method's stage throttle (``methodSettings``, shared by all callers): 429
   ``{"message":"Too Many Requests"}`` when a bucket is empty.

Not emulated: the WAF web ACL associated with the stage on AWS (the AWS managed common rule
set and the rate-based rule run only in AWS WAF), usage-plan quotas and per-method
usage-plan throttles.

:func:`check_access` returns the refusal to send, or None to let the request through.
Everything it reads is in the configuration snapshot; nothing here calls AWS.
"""

from __future__ import annotations

import json

from aiohttp import web

from data_plane.access_config import AccessConfig
from data_plane.access_log import Exchange
from data_plane.api_keys import API_KEY_HEADER
from data_plane.gateway_config import GatewayConfig
from data_plane.gateway_responses import FORBIDDEN, TOO_MANY_REQUESTS, GatewayResponse
from data_plane.resource_policy import Decision, method_arn
from data_plane.routing import Match
from data_plane.throttling import throttles_for


def client_address(request: web.Request) -> str | None:
    """The TCP peer's address: the only source of the caller's IP the gateway trusts."""
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peer, tuple | list) and peer:
        return str(peer[0])
    return None


def access_denied(arn: str, decision: Decision, access: AccessConfig) -> GatewayResponse:
    """API Gateway's answer to a request its resource policy refuses."""
    account = access.account_id
    masked = arn.replace(f":{account}:", f":{'*' * 8}{account[-4:]}:", 1) if account else arn
    message = ("User: anonymous is not authorized to perform: execute-api:Invoke on resource: "
               + masked)
    if decision is Decision.EXPLICIT_DENY:
        message += " with an explicit deny"
    body = json.dumps({"Message": message}, separators=(",", ":")).encode()
    return GatewayResponse(403, body, "AccessDeniedException")


async def check_access(
    request: web.Request, *, route: Match, config: GatewayConfig, exchange: Exchange
) -> web.StreamResponse | None:
    access = config.access
    if access.policy is not None:
        arn = method_arn(access.arn_prefix, config.stage_name, request.method, exchange.path)
        decision = access.policy.decide(arn, client_address(request))
        if decision is not Decision.ALLOW:
            return access_denied(arn, decision, access).to_web_response()

    grant = None
    if route.target.api_key_required:
        grant = access.api_keys.grant_for(request.headers.get(API_KEY_HEADER))
        if grant is None:
            return FORBIDDEN.to_web_response()
        exchange.api_key_id = grant.key_id  # type: ignore[attr-defined]

    throttles = throttles_for(config.rest_api_id, config.stage_name)
    if grant is not None and grant.limit is not None and not throttles.allow(
            ("usage-plan", grant.plan_id, grant.key_id), grant.limit):
        return TOO_MANY_REQUESTS.to_web_response()
    limit = access.method_limit(route.resource_path, route.method)
    if limit is not None and not throttles.allow(
            ("method", route.resource_path, route.method), limit):
        return TOO_MANY_REQUESTS.to_web_response()
    return None
