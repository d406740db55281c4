"""The ``HTTP_PROXY`` integration: pass the request to the upstream, stream the answer back.

Per request: render the integration URI (stage variables, path parameters, the
client's query string), send the method (the request's own when the
integration says ``ANY``), the headers minus hop-by-hop ones plus ``Host`` and
``X-Forwarded-*``, and the body as it arrives; then relay the upstream's
status, headers and body as they arrive. Nothing is buffered whole.

Failures, as API Gateway reports them: an unusable URI is 500 Internal server
error, a refused or broken connection 502, no answer within the integration's
``timeoutInMillis`` 504 Endpoint request timed out. Once the upstream's status
has been relayed a failure can no longer be reported, so the client connection
is cut: the client sees a truncated body, never a complete-looking one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack

from aiohttp import web

from data_plane.access_log import Exchange
from data_plane.gateway_config import GatewayConfig, Integration, MethodConfig
from data_plane.gateway_responses import (
    INTEGRATION_FAILURE,
    INTEGRATION_TIMEOUT,
    INTERNAL_SERVER_ERROR,
)
from data_plane.headers import Header, request_headers_for_upstream, response_headers_for_client
from data_plane.integration_uri import IntegrationUriError, UpstreamUrl, render_upstream_url
from data_plane.routing import ANY_METHOD, Match
from data_plane.transport import (
    Transport,
    UpstreamError,
    UpstreamRequest,
    UpstreamResponse,
    UpstreamTimeout,
)

LOG = logging.getLogger("turnout.gateway")


def integration_url(
    request: web.Request,
    *,
    route: Match[MethodConfig],
    integration: Integration,
    config: GatewayConfig,
    exchange: Exchange,
) -> UpstreamUrl | None:
    """The integration's upstream URL for ``request``; None (logged) when its URI is unusable."""
    try:
        return render_upstream_url(
            integration.uri,
            stage_variables=config.stage_variables,
            path_parameters=route.path_parameters,
            request_parameters=integration.request_parameters,
            raw_query=request.rel_url.raw_query_string,
            headers=request.headers,
        )
    except IntegrationUriError as exc:
        LOG.warning("request %s: integration of %s %s is unusable: %s",
                    exchange.request_id, route.method, route.resource_path, exc)
        return None


class HttpProxyIntegration:
    """Serves resource methods whose integration type is ``HTTP_PROXY``."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def handle(
        self,
        request: web.Request,
        *,
        route: Match[MethodConfig],
        integration: Integration,
        config: GatewayConfig,
        exchange: Exchange,
    ) -> web.StreamResponse:
        """Forward ``request`` upstream and relay the answer."""
        url = integration_url(request, route=route, integration=integration, config=config,
                              exchange=exchange)
        if url is None:
            return INTERNAL_SERVER_ERROR.to_web_response()
        exchange.upstream_host = url.authority
        async with AsyncExitStack() as stack:
            try:
                response = await stack.enter_async_context(
                    self._transport.exchange(upstream_request(
                        request, url=url.url, headers=forwarded_headers(request, url.authority),
                        integration=integration))
                )
            except UpstreamError as exc:
                LOG.info("request %s: %s", exchange.request_id, exc)
                failed = INTEGRATION_TIMEOUT if isinstance(exc, UpstreamTimeout) else INTEGRATION_FAILURE
                return failed.to_web_response()
            return await relay(request, response, exchange)


def forwarded_headers(request: web.Request, upstream_authority: str) -> list[Header]:
    """The client's headers as API Gateway forwards them to ``upstream_authority``."""
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport else None
    local = transport.get_extra_info("sockname") if transport else None
    return request_headers_for_upstream(
        [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers],
        upstream_authority=upstream_authority,
        peer_address=peer[0] if peer else None,
        client_scheme="https" if request.secure else "http",
        gateway_port=local[1] if local else 0,
    )


def upstream_request(
    request: web.Request, *, url: str, headers: Sequence[Header], integration: Integration
) -> UpstreamRequest:
    """What to send for ``request``: the integration's method (the client's for ``ANY``),
    ``headers``, the body as it arrives and the integration's timeout."""
    method = request.method if integration.http_method == ANY_METHOD else integration.http_method
    return UpstreamRequest(
        method=method,
        url=url,
        headers=headers,
        body=request.content if request.body_exists else None,
        timeout_ms=integration.timeout_ms,
    )


async def relay(request: web.Request, upstream: UpstreamResponse, exchange: Exchange) -> web.StreamResponse:
    """Stream the upstream's status, headers (as the client should see them) and body."""
    response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
    for name, value in response_headers_for_client(upstream.headers):
        response.headers.add(name, value)
    await response.prepare(request)
    try:
        async for chunk in upstream.iter_chunks():
            await response.write(chunk)
    except UpstreamError as exc:
        LOG.info("request %s: upstream body cut short: %s", exchange.request_id, exc)
        if request.transport is not None:
            request.transport.abort()
        return response
    except ConnectionError:
        LOG.info("request %s: client went away during the response", exchange.request_id)
        return response
    await response.write_eof()
    return response
