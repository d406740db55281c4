"""The local gateway: a deployed API Gateway REST API stage, served on 127.0.0.1.

The stage is served at the root (``http://127.0.0.1:8080/<resource path>``, no
stage prefix). Every request is matched against the current configuration
snapshot (:mod:`data_plane.gateway_config`, never read per request) and handed
to the handler of its method's integration kind; ``HTTP_PROXY`` is the one
served today, others (``AWS_PROXY``, ``HTTP_PROXY/VPC_LINK``) plug into the same
table. A method whose kind has no handler gets 500 Internal server error.

Beyond the integrations:

* no resource or method for the request (or nothing deployed yet): 403
  ``{"message":"Missing Authentication Token"}``;
* every response carries a fresh ``x-amzn-RequestId``;
* ``/__turnout/health`` answers 200 ``{"status":"ok","routes":N}`` for any
  method, N counting the deployed resource methods; it shadows any resource of
  that path;
* ``/__turnout/`` is the status page and ``/__turnout/api/status`` its JSON
  (:mod:`data_plane.status_page`; read-only, GET and HEAD), shadowing resources too;
* one JSON access-log line per request (:mod:`data_plane.access_log`).
* requests with unsound framing are refused first, connection closed
  (:mod:`data_plane.request_framing`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

from aiohttp import web

from data_plane.access_control import check_access
from data_plane.access_log import ACCESS_LOG, Exchange
from data_plane.gateway_config import GatewayConfig, Integration, MethodConfig
from data_plane.gateway_responses import INTERNAL_SERVER_ERROR, MISSING_AUTHENTICATION_TOKEN
from data_plane.integrations import build_integrations
from data_plane.request_framing import refuse_ambiguous_framing
from data_plane.routing import Match
from data_plane.server_thread import ServerThread
from data_plane.status_page.server import StatusPage, StatusView
from data_plane.status_page.stack_view import StackStatusView
from data_plane.transport import Transport

LOG = logging.getLogger("turnout.gateway")

HEALTH_PATH = "/__turnout/health"
_EXCHANGE = web.RequestKey("turnout_exchange", Exchange)


class ConfigProvider(Protocol):
    """Anything holding the snapshot to serve, such as a ``ConfigSource``."""

    @property
    def current(self) -> GatewayConfig:
        """The snapshot to serve the next request with."""
        ...


class IntegrationHandler(Protocol):
    """Serves the requests of one integration type."""

    async def handle(
        self,
        request: web.Request,
        *,
        route: Match[MethodConfig],
        integration: Integration,
        config: GatewayConfig,
        exchange: Exchange,
    ) -> web.StreamResponse:
        """Answer ``request``, which matched ``route``."""
        ...


class LocalGateway:
    """An HTTP server emulating API Gateway for one stage, run in its own thread."""

    def __init__(
        self,
        config_source: ConfigProvider,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        access_log: logging.Logger | None = ACCESS_LOG,
        lambda_client_factory: Callable[[str], Any] | None = None,
        status_view: StatusView | None = None,
    ) -> None:
        """``lambda_client_factory(region)`` gives the client AWS_PROXY integrations invoke
        functions with (boto3's Lambda client by default; the local cloud passes its runtime).
        ``status_view()`` gives the status page's document (by default, the status view of
        the stack whose API is served)."""
        self._config_source = config_source
        self._status_view = status_view
        self._access_log = access_log
        self._lambda_client_factory = lambda_client_factory
        self._server = ServerThread(self._make_app, host=host, port=port, name="turnout-gateway")

    @property
    def host(self) -> str:
        """The address the gateway listens on."""
        return self._server.host

    @property
    def port(self) -> int:
        """The port the gateway listens on (the chosen one after ``start()`` with port 0)."""
        return self._server.port

    @property
    def url(self) -> str:
        """The base URL of the served stage."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Start serving; return once listening."""
        self._server.start()

    def stop(self) -> None:
        """Stop serving, closing client and upstream connections."""
        self._server.stop()

    def __enter__(self) -> LocalGateway:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _make_app(self) -> web.Application:
        transport = Transport()

        async def pooled_connections(_app: web.Application) -> AsyncIterator[None]:
            await transport.start()
            yield
            await transport.close()

        app = web.Application(middlewares=[refuse_ambiguous_framing])
        app.cleanup_ctx.append(pooled_connections)
        app.on_response_prepare.append(_on_response_start)
        dispatcher = _Dispatcher(
            self._config_source,
            build_integrations(transport, lambda_client_factory=self._lambda_client_factory),
            self._access_log,
            StatusPage(self._status_view or StackStatusView(self._config_source)),
        )
        app.router.add_route("*", "/{tail:.*}", dispatcher.serve)
        return app


class _Dispatcher:
    def __init__(
        self,
        config_source: ConfigProvider,
        integrations: Mapping[str, IntegrationHandler],
        access_log: logging.Logger | None,
        status_page: StatusPage,
    ) -> None:
        self._config_source = config_source
        self._integrations = integrations
        self._access_log = access_log
        self._status_page = status_page

    async def serve(self, request: web.Request) -> web.StreamResponse:
        exchange = Exchange(
            request_id=str(uuid.uuid4()), method=request.method, path=request.rel_url.raw_path
        )
        request[_EXCHANGE] = exchange
        status = INTERNAL_SERVER_ERROR.status
        try:
            response = await self._answer(request, exchange)
            status = response.status
            return response
        except Exception:
            LOG.exception("request %s failed inside the gateway", exchange.request_id)
            if exchange.status is not None:
                # The response had begun and cannot be replaced: cut the client off.
                status = exchange.status
                if request.transport is not None:
                    request.transport.abort()
            return INTERNAL_SERVER_ERROR.to_web_response()
        finally:
            if self._access_log is not None:
                self._access_log.info(exchange.log_line(status))

    async def _answer(self, request: web.Request, exchange: Exchange) -> web.StreamResponse:
        config = self._config_source.current
        if exchange.path == HEALTH_PATH:
            routes = len(config.routes) if config.deployed else 0
            return web.Response(
                body=json.dumps({"status": "ok", "routes": routes}, separators=(",", ":")).encode(),
                content_type="application/json",
            )
        if self._status_page.serves(exchange.path):
            return await self._status_page.handle(request, exchange.path)
        route = config.match(request.method, exchange.path)
        if route is None:
            return MISSING_AUTHENTICATION_TOKEN.to_web_response()
        exchange.resource = route.resource_path
        refusal = await check_access(request, route=route, config=config, exchange=exchange)
        if refusal is not None:
            return refusal
        integration = route.target.integration
        handler = self._integrations.get(integration.kind) if integration else None
        if integration is None or handler is None:
            LOG.warning(
                "request %s: %s %s has no integration the local gateway serves (%s)",
                exchange.request_id,
                route.method,
                route.resource_path,
                integration.kind if integration else "none",
            )
            return INTERNAL_SERVER_ERROR.to_web_response()
        return await handler.handle(
            request, route=route, integration=integration, config=config, exchange=exchange
        )


async def _on_response_start(request: web.Request, response: web.StreamResponse) -> None:
    exchange = request.get(_EXCHANGE)
    if exchange is None:
        response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
        return
    exchange.status = response.status
    response.headers["x-amzn-RequestId"] = exchange.request_id
