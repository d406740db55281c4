"""The tries of one proxied request: order, time limits, hedging, retries and outlier bookkeeping.

:meth:`Forwarder.forward` sends the request to the upstreams
:func:`~data_plane.proxy.upstream_order.upstream_order` ranks, until one answers or
:func:`~data_plane.proxy.retry_policy.may_retry` says stop. The whole forward ends by
``deadline`` (the route's ``timeout_ms``); each try gets the limits
:func:`~data_plane.proxy.retry_policy.try_timeouts` gives it.

Hedging: when a try of an idempotent request on a route that retries timeouts has no answer
after its hedging delay, the next try starts on the next upstream *without* giving up the first
one; the first usable answer wins and the other try is cancelled (its socket shut down). A
request already waiting on an upstream that has just hung is therefore not lost: it is answered
by the next upstream a hedging delay later. Requests whose timeout may not be repeated
(``POST``, ``PATCH``, routes that do not list ``timeout``) are never hedged; their tries run one
after the other, and a connect failure, which proves the request never left, is still retried.

Every try reports to the :class:`~data_plane.proxy.outlier.OutlierDetector` (a try that timed
out ejects its upstream at once; one that another upstream beat after its hedging delay counts
as a failure) and its first-byte time to the :class:`~data_plane.proxy.latency.LatencyTracker`
the hedging delay is derived from.

Hedges and retries, except retries after a connect failure, are spent from the route's
:class:`~data_plane.proxy.retry_budget.RetryBudget`. When it refuses a hedge, the request keeps
waiting on its current try and the hedge is asked for again one hedging delay later; when it
refuses a retry, the request ends as if it had no tries left. A planned try the budget kept from
starting is reported with the outcome ``budget``.

What the client gets: the first answer that is not a retried 5xx; when every try failed, the
last 5xx answer an upstream gave if there was one, else 504 if the last try timed out and 502
otherwise; 502 with its own message when the answer is too large for a Lambda proxy result.
The upstream URL is the upstream's ``url`` followed by the request path and query, as for
``direct`` routes.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from control_plane.model.route import Route, Upstream
from data_plane.proxy.http_client import (
    Cancellation,
    HttpClient,
    UpstreamCancelled,
    UpstreamConnectError,
    UpstreamError,
    UpstreamReply,
    UpstreamResetError,
    UpstreamResponseTooLarge,
    UpstreamTimeout,
)
from data_plane.proxy.latency import LatencyTracker
from data_plane.proxy.outlier import OutlierDetector
from data_plane.proxy.proxy_event import ProxyRequest
from data_plane.proxy.proxy_result import (
    bad_gateway,
    gateway_timeout,
    proxy_result,
    response_too_large,
)
from data_plane.proxy.request_headers import upstream_headers
from data_plane.proxy.retry_budget import RetryBudget
from data_plane.proxy.retry_policy import (
    HEDGE_FLOOR_SECONDS,
    HEDGE_PERCENTILE,
    Failure,
    TryTimeouts,
    may_retry,
    try_timeouts,
)
from data_plane.proxy.upstream_order import tries, upstream_order

Clock = Callable[[], float]
Key = tuple[str, str, str]
Outcome = UpstreamReply | UpstreamError
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
OVER_BUDGET = "budget"
"""The outcome of a planned try the retry budget kept from starting."""

_tries_executor: ThreadPoolExecutor | None = None
_tries_executor_lock = threading.Lock()


def shared_executor() -> ThreadPoolExecutor:
    """The process's pool for hedged tries (threads are created only as they are needed)."""
    global _tries_executor
    with _tries_executor_lock:
        if _tries_executor is None:
            _tries_executor = ThreadPoolExecutor(max_workers=256, thread_name_prefix="turnout-try")
        return _tries_executor


@dataclass(frozen=True)
class Try:
    """One try: the upstream's name and its status code or failure (``budget``: not started,
    the route's retry budget was spent)."""

    upstream: str
    outcome: str


@dataclass(frozen=True)
class Forwarded:
    """The proxy result for the client and the tries that led to it."""

    result: dict[str, Any]
    tries: tuple[Try, ...]
    answered_by: str | None


@dataclass
class _Attempt:
    upstream: Upstream
    key: Key
    started: float
    timeouts: TryTimeouts
    cancellation: Cancellation = field(default_factory=Cancellation)
    first_byte: threading.Event = field(default_factory=threading.Event)
    hedged: bool = False
    hedge_again_at: float | None = None

    @property
    def hedge_at(self) -> float | None:
        after = self.timeouts.hedge_after_seconds
        if after is None:
            return None
        return self.started + after if self.hedge_again_at is None else self.hedge_again_at


class Forwarder:
    """Forwards requests of proxy routes with hedging and retries on the next upstream."""

    def __init__(
        self,
        client: HttpClient,
        detector: OutlierDetector,
        *,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        latencies: LatencyTracker | None = None,
        executor: Executor | None = None,
        budget: RetryBudget | None = None,
    ) -> None:
        self._client = client
        self._detector = detector
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - traffic spreading, not security
        self._latencies = latencies or LatencyTracker()
        self._executor = executor
        self._budget = budget or RetryBudget(clock=clock)

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
        if not planned:
            return Forwarded(bad_gateway(), (), None)
        self._budget.record_request(route.route_id)
        hedging = (may_retry(request.method, Failure.TIMEOUT, route.retries.on)
                   and len({_key(route, u) for u in planned}) > 1)
        race = _Race(self, route, request, credential, deadline, planned,
                     executor=(self._executor or shared_executor()) if hedging else None)
        return race.run()

    def _exchange(
        self,
        attempt: _Attempt,
        request: ProxyRequest,
        credential: tuple[str, str] | None,
        deadline: float,
    ) -> Outcome:
        """One try; a try that waited for a worker never outlives the request or its cancelling."""
        if attempt.cancellation.cancelled:
            return UpstreamCancelled("the request was decided before this try started")
        late = max(0.0, self._clock() - attempt.started)
        total = min(attempt.timeouts.total_seconds - late, deadline - self._clock())
        if total <= 0:
            return UpstreamCancelled("no time was left for this try when it could start")
        url = upstream_url(attempt.upstream.url or "", request.path, request.query)
        headers = upstream_headers(
            request.headers,
            upstream_authority=urlsplit(url).netloc,
            source_ip=request.source_ip,
            credential=credential,
        )
        try:
            return self._client.send(
                request.method, url, headers, request.body,
                timeout_seconds=total,
                connect_timeout_seconds=min(total, attempt.timeouts.connect_seconds),
                cancellation=attempt.cancellation,
                on_first_byte=attempt.first_byte.set,
            )
        except UpstreamError as exc:
            return exc


class _Race:
    """The tries of one request, running one after another or, once hedged, side by side."""

    def __init__(
        self,
        forwarder: Forwarder,
        route: Route,
        request: ProxyRequest,
        credential: tuple[str, str] | None,
        deadline: float,
        planned: Sequence[Upstream],
        *,
        executor: Executor | None,
    ) -> None:
        self._forwarder = forwarder
        self._route = route
        self._request = request
        self._credential = credential
        self._deadline = deadline
        self._planned = planned
        self._executor = executor
        self._clock = forwarder._clock
        self._detector = forwarder._detector
        self._pending: dict[Future[Outcome], _Attempt] = {}
        self._newest: _Attempt | None = None
        self._started = 0
        self._history: list[tuple[float, Try]] = []
        self._last_answer: tuple[UpstreamReply, str] | None = None
        self._last_failure: Failure | None = None
        self._refused: tuple[float, int] | None = None

    def run(self) -> Forwarded:
        try:
            return self._run()
        finally:
            for attempt in self._pending.values():  # only left when something unexpected failed
                attempt.cancellation.cancel()

    def _run(self) -> Forwarded:
        self._start_next(budgeted=False)
        while self._pending:
            now = self._clock()
            if now >= self._deadline:
                self._time_out_pending()
                break
            hedge_at = self._hedge_due_at()
            wake = self._deadline if hedge_at is None else min(self._deadline, hedge_at)
            done, _ = wait(list(self._pending), timeout=max(0.0, wake - now),
                           return_when=FIRST_COMPLETED)
            if not done:
                self._hedge_if_due()
                continue
            for future in sorted(done, key=lambda f: self._pending[f].started):
                attempt = self._pending.pop(future)
                decided = self._settle(attempt, future.result())
                if decided is not None:
                    self._abandon_pending()
                    return self._done(*decided)
        if self._last_answer is not None:
            reply, name = self._last_answer
            return self._done(_relayed(reply), name)
        timed_out = self._last_failure is Failure.TIMEOUT
        return self._done(gateway_timeout() if timed_out else bad_gateway(), None)

    def _start_next(self, *, budgeted: bool) -> bool:
        """Start the next planned try, if any is left, time remains and, when ``budgeted``, the
        route's retry budget allows it; whether it started."""
        if self._started >= len(self._planned):
            return False
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            self._last_failure = Failure.TIMEOUT
            return False
        if budgeted and not self._forwarder._budget.allow_extra_try(self._route.route_id):
            self._refused = (self._clock(), self._started)
            return False
        index = self._started
        self._started += 1
        upstream = self._planned[index]
        key = _key(self._route, upstream)
        later = len(self._planned) - index - 1
        next_is_other = later > 0 and _key(self._route, self._planned[index + 1]) != key
        timeouts = try_timeouts(
            remaining,
            later_tries=later,
            method=self._request.method,
            retry_on=self._route.retries.on,
            next_is_other_upstream=self._executor is not None and next_is_other,
            recent_p95_seconds=self._forwarder._latencies.percentile(key, HEDGE_PERCENTILE),
        )
        attempt = _Attempt(upstream, key, self._clock(), timeouts)
        self._newest = attempt
        run = self._forwarder._exchange
        arguments = (attempt, self._request, self._credential, self._deadline)
        if self._executor is None:
            future: Future[Outcome] = Future()
            future.set_result(run(*arguments))
        else:
            future = self._executor.submit(run, *arguments)
        self._pending[future] = attempt
        return True

    def _hedge_if_due(self) -> None:
        """Start the next try beside the newest one when its hedging delay has passed; when the
        retry budget refuses it, ask again one hedging delay later."""
        newest, hedge_at = self._newest, self._hedge_due_at()
        now = self._clock()
        if newest is None or hedge_at is None or now < hedge_at:
            return
        if self._start_next(budgeted=True):
            newest.hedged = True
        else:
            delay = max(HEDGE_FLOOR_SECONDS, newest.timeouts.hedge_after_seconds or 0.0)
            newest.hedge_again_at = now + delay

    def _hedge_due_at(self) -> float | None:
        """When the newest try should be hedged, if it should be."""
        newest = self._newest
        if (newest is None or newest.hedged or newest.hedge_at is None
                or newest.first_byte.is_set() or self._started >= len(self._planned)
                or newest not in self._pending.values()):
            return None
        return newest.hedge_at

    def _settle(self, attempt: _Attempt, outcome: Outcome) -> tuple[dict[str, Any], str | None] | None:
        """Book one finished try; the result for the client (and who answered) when it decides
        the request."""
        name = attempt.upstream.name
        if isinstance(outcome, UpstreamReply):
            self._history.append((attempt.started, Try(name, str(outcome.status))))
            if outcome.status < 500:
                self._detector.record_success(attempt.key)
                self._forwarder._latencies.record(attempt.key, outcome.first_byte_seconds)
                return _relayed(outcome), name
            self._detector.record_failure(attempt.key)
            self._last_answer, failure = (outcome, name), Failure.STATUS_5XX
        elif isinstance(outcome, UpstreamCancelled):
            # The try never reached its upstream in time: nothing to hold against the upstream.
            self._history.append((attempt.started, Try(name, "cancelled")))
            self._last_failure = self._last_failure or Failure.TIMEOUT
            return None
        else:
            failure = _failure_of(outcome)
            self._history.append((attempt.started, Try(name, failure.value if failure else "unusable")))
            if failure is None:
                too_large = isinstance(outcome, UpstreamResponseTooLarge)
                return (response_too_large() if too_large else bad_gateway()), None
            self._detector.record_failure(attempt.key, timeout=failure is Failure.TIMEOUT)
        self._last_failure = failure
        if may_retry(self._request.method, failure, self._route.retries.on):
            # A connect failure never reached its upstream: retrying it adds no load.
            self._start_next(budgeted=failure is not Failure.CONNECT)
        return None

    def _abandon_pending(self) -> None:
        """Cancel the tries still running; one beaten after its hedging delay counts as failed
        (``outpaced``), one that had not reached it is just ``cancelled``."""
        for attempt in self._pending.values():
            attempt.cancellation.cancel()
            outpaced = attempt.hedged and not attempt.first_byte.is_set()
            if outpaced:
                self._detector.record_failure(attempt.key)
            outcome = "outpaced" if outpaced else "cancelled"
            self._history.append((attempt.started, Try(attempt.upstream.name, outcome)))
        self._pending.clear()

    def _time_out_pending(self) -> None:
        """The route's time is up: every try still running timed out."""
        for attempt in self._pending.values():
            attempt.cancellation.cancel()
            self._detector.record_failure(attempt.key, timeout=True)
            self._history.append((attempt.started, Try(attempt.upstream.name, Failure.TIMEOUT.value)))
        self._pending.clear()
        self._last_failure = Failure.TIMEOUT

    def _done(self, result: dict[str, Any], answered_by: str | None) -> Forwarded:
        if self._refused is not None and self._refused[1] >= self._started:
            refused_at, index = self._refused
            self._history.append((refused_at, Try(self._planned[index].name, OVER_BUDGET)))
        ordered = sorted(self._history, key=lambda entry: entry[0])
        return Forwarded(result, tuple(entry for _, entry in ordered), answered_by)


def upstream_url(base: str, path: str, query: Sequence[tuple[str, str]]) -> str:
    """``base`` (``scheme://host[:port][/base-path]``) + the request path + its query."""
    url = base.rstrip("/") + quote(path if path.startswith("/") else "/" + path, safe=_PATH_SAFE)
    if query:
        url += "?" + urlencode(list(query), quote_via=quote)
    return url


def _key(route: Route, upstream: Upstream) -> Key:
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
