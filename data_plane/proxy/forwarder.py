"""The tries of one proxied request: order, budget, retry and outlier bookkeeping.

:meth:`Forwarder.forward` sends the request to the upstreams
:func:`~data_plane.proxy.upstream_order.upstream_order` ranks, one try after another, until one
answers or :func:`~data_plane.proxy.retry_policy.may_retry` says stop. Every try reports to the
:class:`~data_plane.proxy.outlier.OutlierDetector`. The whole forward ends by ``deadline`` (the
route's ``timeout_ms``); each try gets the share
:func:`~data_plane.proxy.retry_policy.try_budget_seconds` allows.

What the client gets: the first answer that is not a retried 5xx; when every try failed, the
last 5xx answer an upstream gave if there was one, else 504 if the last try timed out and 502
otherwise. The upstream URL is the upstream's ``url`` followed by the request path and query,
as for ``direct`` routes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from control_plane.model.route import Route, Upstream
from data_plane.proxy.http_client import (
    HttpClient,
    UpstreamConnectError,
    UpstreamError,
    UpstreamReply,
    UpstreamResetError,
    UpstreamTimeout,
)
from data_plane.proxy.outlier import OutlierDetector
from data_plane.proxy.proxy_event import ProxyRequest
from data_plane.proxy.proxy_result import bad_gateway, gateway_timeout, proxy_result
from data_plane.proxy.request_headers import upstream_headers
from data_plane.proxy.retry_policy import Failure, may_retry, try_budget_seconds
from data_plane.proxy.upstream_order import tries, upstream_order

Clock = Callable[[], float]
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


@dataclass(frozen=True)
class Try:
    """One try: the upstream's name and its status code or failure."""

    upstream: str
    outcome: str


@dataclass(frozen=True)
class Forwarded:
    """The proxy result for the client and the tries that led to it."""

    result: dict[str, Any]
    tries: tuple[Try, ...]
    answered_by: str | None


class Forwarder:
    """Forwards requests of proxy routes with retries on the next upstream."""

    def __init__(
        self,
        client: HttpClient,
        detector: OutlierDetector,
        *,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._detector = detector
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - traffic spreading, not security

    def forward(
        self,
        route: Route,
        request: ProxyRequest,
        *,
        active_upstream: str | None,
        credential: tuple[str, str] | None,
        deadline: float,
    ) -> Forwarded:
        """Send ``request`` upstream until an answer comes back or the tries run out."""
        order = upstream_order(
            [u for u in route.upstreams if u.url is not None],
            active=active_upstream,
            is_ejected=lambda upstream: self._detector.is_ejected(_key(route, upstream)),
            rng=self._rng,
        )
        planned = tries(order, route.retries.attempts)
        history: list[Try] = []
        last_answer: tuple[UpstreamReply, str] | None = None
        last_failure: Failure | None = None
        for index, upstream in enumerate(planned):
            remaining = deadline - self._clock()
            if remaining <= 0:
                last_failure = Failure.TIMEOUT
                break
            budget = try_budget_seconds(
                remaining,
                later_tries=len(planned) - index - 1,
                method=request.method,
                retry_on=route.retries.on,
            )
            key = _key(route, upstream)
            try:
                reply = self._send(upstream, request, credential, budget)
            except UpstreamError as exc:
                failure = _failure_of(exc)
                history.append(Try(upstream.name, failure.value if failure else "unusable"))
                if failure is None:
                    return Forwarded(bad_gateway(), tuple(history), None)
                self._detector.record_failure(key)
                last_failure = failure
                if not may_retry(request.method, failure, route.retries.on):
                    break
                continue
            history.append(Try(upstream.name, str(reply.status)))
            if reply.status < 500:
                self._detector.record_success(key)
                return Forwarded(_relayed(reply), tuple(history), upstream.name)
            self._detector.record_failure(key)
            last_answer, last_failure = (reply, upstream.name), Failure.STATUS_5XX
            is_last = index == len(planned) - 1
            if is_last or not may_retry(request.method, Failure.STATUS_5XX, route.retries.on):
                return Forwarded(_relayed(reply), tuple(history), upstream.name)
        if last_answer is not None:
            reply, name = last_answer
            return Forwarded(_relayed(reply), tuple(history), name)
        result = gateway_timeout() if last_failure is Failure.TIMEOUT else bad_gateway()
        return Forwarded(result, tuple(history), None)

    def _send(
        self,
        upstream: Upstream,
        request: ProxyRequest,
        credential: tuple[str, str] | None,
        budget_seconds: float,
    ) -> UpstreamReply:
        url = upstream_url(upstream.url or "", request.path, request.query)
        headers = upstream_headers(
            request.headers,
            upstream_authority=urlsplit(url).netloc,
            source_ip=request.source_ip,
            credential=credential,
        )
        return self._client.send(
            request.method, url, headers, request.body, timeout_seconds=budget_seconds
        )


def upstream_url(base: str, path: str, query: Sequence[tuple[str, str]]) -> str:
    """``base`` (``scheme://host[:port][/base-path]``) + the request path + its query."""
    url = base.rstrip("/") + quote(path if path.startswith("/") else "/" + path, safe=_PATH_SAFE)
    if query:
        url += "?" + urlencode(list(query), quote_via=quote)
    return url


def _key(route: Route, upstream: Upstream) -> tuple[str, str, str]:
    return route.route_id, upstream.name, upstream.url or ""


def _failure_of(exc: UpstreamError) -> Failure | None:
    if isinstance(exc, UpstreamConnectError):
        return Failure.CONNECT
    if isinstance(exc, UpstreamTimeout):
        return Failure.TIMEOUT
    if isinstance(exc, UpstreamResetError):
        return Failure.RESET
    return None


def _relayed(reply: UpstreamReply) -> dict[str, Any]:
    return proxy_result(reply.status, reply.headers, reply.body)
