"""Lambda entry point of the data plane: API Gateway's ``AWS_PROXY`` integration for proxy routes.

``handler(event, context)`` takes an API Gateway REST proxy event (payload 1.0) and returns a
proxy result. Per request: read the event, find the route and its active upstream
(:mod:`~data_plane.proxy.route_directory`), fetch the route's credential
(:mod:`~data_plane.proxy.credentials`), forward with retries
(:mod:`~data_plane.proxy.forwarder`), and log one line: route, method, resource, status, the
tries (upstream and outcome; ``budget`` for a hedge or retry the retry budget refused) and the
latency. Headers, query strings, bodies and credentials
are never logged.

Within ``timeout_ms`` of the route counted from when API Gateway received the request (its
integration timeout: time spent before the function started counts), and never past the
function's own remaining time. What the
client sees when the function cannot serve is 502 ``{"message":"Bad Gateway"}`` (no route, no
credential, no upstream answered) or 504 ``{"message":"Gateway Timeout"}``; the reason is in the
log only.

Clients, pools, caches and outlier state are built once per environment and reused by every
invocation of a warm instance.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config

from control_plane.settings import environ
from data_plane.proxy.credentials import Credentials, CredentialUnavailableError
from data_plane.proxy.forwarder import Forwarder
from data_plane.proxy.http_client import shared_client
from data_plane.proxy.outlier import OutlierDetector, OutlierPolicy
from data_plane.proxy.proxy_event import InvalidEventError, ProxyRequest, read_event
from data_plane.proxy.proxy_result import bad_gateway
from data_plane.proxy.retry_budget import RetryBudget
from data_plane.proxy.route_directory import RouteDirectory, RouteLookupError
from data_plane.proxy.settings import ProxySettings

logger = Logger(service="turnout-data-plane")

Clock = Callable[[], float]
_AWS = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=1, read_timeout=2)
_FUNCTION_MARGIN_SECONDS = 0.1


@dataclass
class Dependencies:
    """What one warm instance keeps between invocations."""

    directory: RouteDirectory
    credentials: Credentials
    forwarder: Forwarder

    @classmethod
    def build(
        cls,
        settings: ProxySettings,
        *,
        clock: Clock = time.monotonic,
        outlier_policy: OutlierPolicy | None = None,
        rng: random.Random | None = None,
    ) -> Dependencies:
        """Clients on the function's AWS endpoint, the shared HTTP pool, fresh caches.

        ``clock`` drives the caches' lifetimes and outlier ejections (request deadlines and the
        retry budget's window always use the monotonic clock).
        """
        session = boto3.session.Session()

        def client(service: str) -> Any:
            return session.client(
                service, region_name=settings.region, endpoint_url=settings.endpoint_url, config=_AWS
            )

        return cls(
            directory=RouteDirectory(
                client("dynamodb"),
                routes_table=settings.routes_table,
                state_table=settings.state_table,
                allow_loopback=settings.allow_loopback_upstreams,
                clock=clock,
            ),
            credentials=Credentials(
                client("secretsmanager"),
                max_age_seconds=settings.secret_max_age_seconds,
                arn_prefix=settings.secrets_arn_prefix,
            ),
            forwarder=Forwarder(
                shared_client(allow_loopback=settings.allow_loopback_upstreams),
                OutlierDetector(outlier_policy, clock=clock),
                rng=rng,
                budget=RetryBudget(settings.retry_budget),
            ),
        )


def make_handler(
    build: Callable[[ProxySettings], Dependencies],
) -> Callable[[Any, Any], dict[str, Any]]:
    """The Lambda handler, building its dependencies with ``build`` once per environment."""
    built: dict[ProxySettings, Dependencies] = {}
    lock = threading.Lock()

    def dependencies(settings: ProxySettings) -> Dependencies:
        with lock:
            found = built.get(settings)
            if found is None:
                built.clear()
                found = built[settings] = build(settings)
            return found

    def handler(event: Any, context: Any) -> dict[str, Any]:
        started = time.monotonic()
        entered_epoch_seconds = time.time()
        deps = dependencies(ProxySettings.from_env(environ()))
        try:
            return _serve(event, context, deps, started, entered_epoch_seconds)
        except Exception as exc:  # noqa: BLE001 - the client gets 502, the log gets the type
            logger.error("the request failed inside the function", extra={"error": type(exc).__name__})
            return bad_gateway()

    return handler


def _serve(
    event: Any, context: Any, deps: Dependencies, started: float, entered_epoch_seconds: float
) -> dict[str, Any]:
    try:
        request = read_event(event)
    except InvalidEventError as exc:
        logger.warning("not an API Gateway proxy event", extra={"reason": str(exc)})
        return bad_gateway()
    where = {"method": request.method, "resource": request.resource, "request_id": request.request_id}
    try:
        resolved = deps.directory.resolve(request.resource, request.method)
    except RouteLookupError as exc:
        logger.error("routes unavailable", extra={**where, "reason": str(exc)})
        return bad_gateway()
    if resolved is None:
        logger.warning("no valid proxy route serves this resource and method", extra=where)
        return bad_gateway()
    route = resolved.route
    where["route_id"] = route.route_id
    credential = None
    if route.upstream_auth is not None:
        try:
            credential = deps.credentials.header(route.upstream_auth)
        except CredentialUnavailableError as exc:
            logger.error("upstream credential unavailable", extra={**where, "reason": str(exc)})
            return bad_gateway()
    forwarded = deps.forwarder.forward(
        route,
        request,
        active_upstream=resolved.active_upstream,
        credential=credential,
        deadline=started + _budget_seconds(route.timeout_ms, context, request, entered_epoch_seconds),
    )
    logger.info(
        "proxied",
        extra={
            **where,
            "status": forwarded.result["statusCode"],
            "upstream": forwarded.answered_by,
            "tries": [f"{t.upstream}:{t.outcome}" for t in forwarded.tries],
            "latency_ms": round((time.monotonic() - started) * 1000, 3),
        },
    )
    return forwarded.result


def _budget_seconds(
    timeout_ms: int, context: Any, request: ProxyRequest, entered_epoch_seconds: float
) -> float:
    budget = timeout_ms / 1000
    if request.received_epoch_ms is not None:
        waited = max(0.0, entered_epoch_seconds - request.received_epoch_ms / 1000)
        budget -= waited
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        budget = min(budget, remaining() / 1000 - _FUNCTION_MARGIN_SECONDS)
    return budget


handler = make_handler(Dependencies.build)
