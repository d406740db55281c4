"""The retry budget: extra tries may not multiply the load on a route's upstreams.

A hedge or a retry (any try of a request after its first) sends the request to an upstream
once more. One slow request is worth it; but when every request of a route is slow or failing
at once, because an upstream is overloaded, hedging and retrying every one of them would double
the load on the upstreams just when they can least take it. So, per route and per function
instance (one :class:`RetryBudget` per :class:`~data_plane.proxy.forwarder.Forwarder`), an extra
try may start only while the extra tries started in the last ``window_seconds`` are fewer than
``budget_percent`` of the route's requests in that window, or fewer than ``min_extra_tries``
(so a quiet route still hedges a hung request: three hedges outpace a hung upstream three times,
which is what ejects it). This is Finagle's and Envoy's retry budget (``budget_percent``,
``min_retry_concurrency``), counted over a sliding time window rather than over the requests
in flight: a Lambda instance serves one request at a time, so a concurrency count would never
limit anything there, while a rate over a window limits the instance's whole stream of requests.

Connect failures are outside the budget. A try whose connection failed provably never reached
its upstream, so retrying it on the next upstream still sends the request to the upstreams only
once: it adds no load. Retrying it is what lets a primary that was killed (connections refused)
lose no request, even when every request needs that retry at once. Hedges, and retries after
timeouts, resets and 5xx answers, are inside: the upstream may already be working on the
request.

A refused hedge leaves the request waiting on its current try (the forwarder asks again one
hedging delay later); a refused retry leaves the client the answer it would have had with no
more tries. The state lives in the function's memory, like the outlier detector's; the clock is
injected; the budget is thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass(frozen=True)
class RetryBudgetPolicy:
    """How many extra tries a route may make."""

    budget_percent: float = 20.0
    """Extra tries in the window, in percent of the route's requests in the window."""
    min_extra_tries: int = 3
    """Extra tries allowed in the window whatever the route's traffic."""
    window_seconds: float = 10.0
    """How far back requests and extra tries are counted."""


@dataclass(frozen=True)
class BudgetUsage:
    """What one route did within the window: requests, extra tries started, extra tries refused."""

    requests: int
    extra_tries: int
    refused: int


@dataclass
class _Window:
    requests: deque[float] = field(default_factory=deque)
    extra_tries: deque[float] = field(default_factory=deque)
    refused: deque[float] = field(default_factory=deque)

    def forget_before(self, cutoff: float) -> None:
        for times in (self.requests, self.extra_tries, self.refused):
            while times and times[0] <= cutoff:
                times.popleft()

    def empty(self) -> bool:
        return not (self.requests or self.extra_tries or self.refused)


class RetryBudget:
    """Counts requests and extra tries per route over a sliding window; decides extra tries."""

    MAX_TRACKED = 10_000

    def __init__(self, policy: RetryBudgetPolicy | None = None, *, clock: Clock = time.monotonic) -> None:
        self.policy = policy or RetryBudgetPolicy()
        self._clock = clock
        self._windows: dict[Hashable, _Window] = {}
        self._lock = threading.Lock()

    def record_request(self, route: Hashable) -> None:
        """A request of ``route`` starts (its first try is never counted against the budget)."""
        with self._lock:
            now = self._clock()
            self._window(route, now).requests.append(now)

    def allow_extra_try(self, route: Hashable) -> bool:
        """Whether a hedge or retry of ``route`` may start now; an allowed one is counted."""
        with self._lock:
            now = self._clock()
            window = self._window(route, now)
            spent = len(window.extra_tries)
            allowed = (spent < self.policy.min_extra_tries
                       or spent * 100 < self.policy.budget_percent * len(window.requests))
            (window.extra_tries if allowed else window.refused).append(now)
            return allowed

    def usage(self, route: Hashable) -> BudgetUsage:
        """What ``route`` did within the window (counts only: nothing about the requests)."""
        with self._lock:
            window = self._window(route, self._clock())
            return BudgetUsage(len(window.requests), len(window.extra_tries), len(window.refused))

    def _window(self, route: Hashable, now: float) -> _Window:
        cutoff = now - self.policy.window_seconds
        window = self._windows.get(route)
        if window is None:
            if len(self._windows) >= self.MAX_TRACKED:
                self._forget_idle(cutoff)
            window = self._windows[route] = _Window()
        window.forget_before(cutoff)
        return window

    def _forget_idle(self, cutoff: float) -> None:
        for key, window in list(self._windows.items()):
            window.forget_before(cutoff)
            if window.empty():
                del self._windows[key]
        if len(self._windows) >= self.MAX_TRACKED:
            self._windows.clear()
