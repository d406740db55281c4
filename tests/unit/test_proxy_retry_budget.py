"""The retry budget: hedges and retries of a route stay a bounded share of its requests, while a
hung request on a quiet route is still hedged and a refused connection is always retried.

The real forwarder runs against upstreams that stand behind its one I/O seam (the HTTP client's
``send``): each upstream answers a status, refuses connections or hangs until the test lets it
answer. The clock of the forwarder and of its budget is the test's, so hedging delays and the
budget's window pass only when the test moves it. Outlier ejection is left out (its thresholds
are never reached), so every request meets the failing primary first, as the requests that start
in the moment before an ejection do.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest

from control_plane.model.route import Route
from data_plane.proxy.forwarder import Forwarded, Forwarder
from data_plane.proxy.http_client import (
    Cancellation,
    UpstreamCancelled,
    UpstreamConnectError,
    UpstreamReply,
)
from data_plane.proxy.latency import LatencyTracker
from data_plane.proxy.outlier import OutlierDetector, OutlierPolicy
from data_plane.proxy.proxy_event import ProxyRequest
from data_plane.proxy.retry_budget import RetryBudget, RetryBudgetPolicy
from data_plane.proxy.settings import ProxySettings

ALL_FAILURES = ("connect-failure", "5xx", "timeout")
WINDOW_SECONDS = RetryBudgetPolicy().window_seconds
PAST_THE_HEDGING_DELAY = 1.0  # the hedging delay here is its 150 ms floor


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Upstreams:
    """What the upstreams ``a`` and ``b`` do: a status code, ``"refuse"`` (the connection is
    refused) or ``"hang"`` (no answer until :attr:`released` is set, then 200)."""

    def __init__(self) -> None:
        self.behaviour: dict[str, int | str] = {"a": 200, "b": 200}
        self.received: Counter[str] = Counter()
        self.released = threading.Event()
        self._changed = threading.Condition()

    def send(self, method: str, url: str, headers, body: bytes, *, timeout_seconds: float,
             connect_timeout_seconds: float | None = None, cancellation: Cancellation | None = None,
             on_first_byte: Callable[[], None] | None = None) -> UpstreamReply:
        name = (urlsplit(url).hostname or "").split(".")[0]
        status = self.behaviour[name]
        if status == "refuse":
            raise UpstreamConnectError("connection refused")
        with self._changed:
            self.received[name] += 1
            self._changed.notify_all()
        if status == "hang":
            self.released.wait(timeout=30)
            if cancellation is not None and cancellation.cancelled:
                raise UpstreamCancelled("the caller gave this try up")
            status = 200
        if on_first_byte is not None:
            on_first_byte()
        return UpstreamReply(int(status), [("X-Upstream", name)], b"", first_byte_seconds=0.01)

    def wait_until_received(self, name: str, count: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.received[name] >= count, timeout=10)


class Proxy:
    """The forwarder of one function instance, called as the handler calls it."""

    def __init__(self, forwarder: Forwarder, clock: Clock) -> None:
        self.forwarder = forwarder
        self.clock = clock

    def __call__(self, route: Route, method: str = "GET") -> Forwarded:
        request = ProxyRequest(resource="/{proxy+}", method=method, path="/x", headers=(),
                               query=(), body=b"" if method == "GET" else b"{}")
        return self.forwarder.forward(route, request, active_upstream="a", credential=None,
                                      deadline=self.clock() + 20)


def svc(*retry_on: str) -> Route:
    return Route.model_validate({
        "route_id": "svc",
        "path": "/{proxy+}",
        "mode": "proxy",
        "methods": ["GET", "POST"],
        "upstreams": [{"name": "a", "url": "https://a.example", "priority": 0},
                      {"name": "b", "url": "https://b.example", "priority": 1}],
        "retries": {"attempts": 1, "on": list(retry_on)},
        "timeout_ms": 20_000,
    })


def outcomes(forwarded: Forwarded) -> list[tuple[str, str]]:
    return [(t.upstream, t.outcome) for t in forwarded.tries]


@contextmanager
def clients(upstreams: Upstreams, count: int) -> Iterator[ThreadPoolExecutor]:
    """Client threads; whatever happens, hung upstreams answer before they are joined."""
    pool = ThreadPoolExecutor(count)
    try:
        yield pool
    finally:
        upstreams.released.set()
        pool.shutdown(wait=True)


def eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def upstreams() -> Iterator[Upstreams]:
    upstreams = Upstreams()
    yield upstreams
    upstreams.released.set()


@pytest.fixture
def budget(clock: Clock) -> RetryBudget:
    return RetryBudget(clock=clock)


@pytest.fixture
def tries_pool(upstreams: Upstreams) -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=256)
    yield pool
    upstreams.released.set()
    pool.shutdown(wait=True)


@pytest.fixture
def proxy(clock: Clock, upstreams: Upstreams, budget: RetryBudget, tries_pool: ThreadPoolExecutor) -> Proxy:
    latencies = LatencyTracker()
    for _ in range(latencies.min_samples):  # a usually fast primary: hedged after 150 ms
        latencies.record(("svc", "a", "https://a.example"), 0.01)
    never_ejected = OutlierPolicy(consecutive_failures=10**9, consecutive_timeouts=10**9)
    forwarder = Forwarder(upstreams, OutlierDetector(never_ejected, clock=clock),  # type: ignore[arg-type]
                          clock=clock, rng=random.Random(1), latencies=latencies,
                          executor=tries_pool, budget=budget)
    return Proxy(forwarder, clock)


def test_one_hung_request_on_a_quiet_route_is_still_hedged(proxy, clock, upstreams):
    upstreams.behaviour = {"a": "hang", "b": 200}
    with clients(upstreams, 1) as client:
        answer = client.submit(proxy, svc(*ALL_FAILURES))
        upstreams.wait_until_received("a", 1)
        clock.now += PAST_THE_HEDGING_DELAY
        forwarded = answer.result(timeout=10)
    assert forwarded.result["statusCode"] == 200
    assert forwarded.answered_by == "b"
    assert outcomes(forwarded) == [("a", "outpaced"), ("b", "200")]


def test_when_every_request_is_slow_at_once_a_fifth_are_hedged_and_every_one_is_answered(
    proxy, clock, upstreams, budget
):
    upstreams.behaviour = {"a": "hang", "b": 200}
    route = svc(*ALL_FAILURES)
    with clients(upstreams, 100) as pool:
        answers = [pool.submit(proxy, route) for _ in range(100)]
        upstreams.wait_until_received("a", 100)
        clock.now += PAST_THE_HEDGING_DELAY  # all 100 are past their hedging delay at once
        eventually(lambda: budget.usage("svc").refused == 80)
        upstreams.released.set()  # the slow primary answers at last
        results = [answer.result(timeout=10) for answer in answers]
    assert [r.result["statusCode"] for r in results] == [200] * 100
    hedged = [r for r in results if r.answered_by == "b"]
    waited = [r for r in results if r.answered_by == "a"]
    assert len(hedged) == 20
    assert upstreams.received["b"] == 20  # the extra load on b: a fifth of the requests
    assert all(outcomes(r) == [("a", "outpaced"), ("b", "200")] for r in hedged)
    assert len(waited) == 80
    assert all(outcomes(r) == [("a", "200"), ("b", "budget")] for r in waited)


def test_request_refused_a_hedge_is_hedged_once_the_budget_allows_it(clock, upstreams, tries_pool):
    budget = RetryBudget(RetryBudgetPolicy(budget_percent=0, min_extra_tries=1), clock=clock)
    latencies = LatencyTracker()
    for _ in range(latencies.min_samples):
        latencies.record(("svc", "a", "https://a.example"), 0.01)
    proxy = Proxy(Forwarder(upstreams, OutlierDetector(clock=clock), clock=clock,  # type: ignore[arg-type]
                            latencies=latencies, executor=tries_pool, budget=budget), clock)
    upstreams.behaviour = {"a": 503, "b": 200}
    assert proxy(svc(*ALL_FAILURES)).answered_by == "b"  # the one extra try of the window
    upstreams.behaviour = {"a": "hang", "b": 200}
    with clients(upstreams, 1) as client:
        answer = client.submit(proxy, svc(*ALL_FAILURES))
        upstreams.wait_until_received("a", 2)
        clock.now += PAST_THE_HEDGING_DELAY
        eventually(lambda: budget.usage("svc").refused == 1)
        assert not answer.done()  # still waiting on the hung primary
        clock.now += WINDOW_SECONDS
        forwarded = answer.result(timeout=10)
    assert forwarded.answered_by == "b"
    assert outcomes(forwarded) == [("a", "outpaced"), ("b", "200")]


def test_retries_after_a_5xx_stop_at_a_fifth_of_the_requests_and_the_client_gets_the_5xx(
    proxy, upstreams
):
    upstreams.behaviour = {"a": 503, "b": 200}
    route = svc("connect-failure", "5xx")
    results = [proxy(route) for _ in range(100)]
    retried = [r for r in results if r.answered_by == "b"]
    refused = [r for r in results if r.answered_by == "a"]
    assert [r.answered_by for r in results[:4]] == ["b", "b", "b", "a"]  # the minimum: 3
    assert len(retried) == 20
    assert upstreams.received["b"] == 20
    assert len(refused) == 80
    assert all(r.result["statusCode"] == 503 for r in refused)
    assert all(outcomes(r) == [("a", "503"), ("b", "budget")] for r in refused)


def test_a_dead_primary_loses_no_request_even_with_the_budget_spent_and_many_at_once(
    proxy, upstreams, budget
):
    route = svc(*ALL_FAILURES)
    upstreams.behaviour = {"a": 503, "b": 200}
    spending = [proxy(route).answered_by for _ in range(4)]  # retries after 5xx spend it
    assert spending == ["b", "b", "b", "a"]
    upstreams.behaviour = {"a": "refuse", "b": 200}  # killed: connections refused
    spent = budget.usage("svc").extra_tries
    with clients(upstreams, 50) as pool:
        results = list(pool.map(proxy, [route] * 100, ["GET", "POST"] * 50))
    assert [r.result["statusCode"] for r in results] == [200] * 100
    assert all(outcomes(r) == [("a", "connect-failure"), ("b", "200")] for r in results)
    assert budget.usage("svc").extra_tries == spent


def test_retries_resume_once_the_window_has_passed(proxy, clock, upstreams):
    upstreams.behaviour = {"a": 503, "b": 200}
    route = svc("connect-failure", "5xx")
    assert [proxy(route).answered_by for _ in range(5)] == ["b", "b", "b", "a", "a"]
    clock.now += WINDOW_SECONDS / 2
    assert proxy(route).answered_by == "a"
    clock.now += WINDOW_SECONDS / 2
    assert [proxy(route).answered_by for _ in range(4)] == ["b", "b", "b", "a"]


def test_budget_is_kept_per_route(proxy, upstreams):
    upstreams.behaviour = {"a": 503, "b": 200}
    busy = svc("connect-failure", "5xx")
    other = busy.model_copy(update={"route_id": "other"})
    assert [proxy(busy).answered_by for _ in range(4)] == ["b", "b", "b", "a"]
    assert proxy(other).answered_by == "b"


@pytest.mark.parametrize(("env", "expected"), [
    ({}, RetryBudgetPolicy(20.0, 3, 10.0)),
    ({"RETRY_BUDGET_PERCENT": "50", "RETRY_BUDGET_MIN_EXTRA_TRIES": "0",
      "RETRY_BUDGET_WINDOW_SECONDS": "2.5"}, RetryBudgetPolicy(50.0, 0, 2.5)),
    ({"RETRY_BUDGET_PERCENT": "-1", "RETRY_BUDGET_MIN_EXTRA_TRIES": "many",
      "RETRY_BUDGET_WINDOW_SECONDS": "0"}, RetryBudgetPolicy(20.0, 3, 10.0)),
    ({"RETRY_BUDGET_PERCENT": "nan", "RETRY_BUDGET_WINDOW_SECONDS": "inf"}, RetryBudgetPolicy()),
])
def test_retry_budget_comes_from_the_function_environment_with_defaults_for_bad_values(env, expected):
    assert ProxySettings.from_env(env).retry_budget == expected
