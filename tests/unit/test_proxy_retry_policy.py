"""When a proxy route repeats a failed try on the next upstream, how long each try may take and
when it is hedged."""

from __future__ import annotations

import pytest

from data_plane.proxy.retry_policy import Failure, may_retry, try_timeouts

ALL = ["connect-failure", "5xx", "timeout"]
CONNECT, RESET, STATUS_5XX, TIMEOUT = Failure.CONNECT, Failure.RESET, Failure.STATUS_5XX, Failure.TIMEOUT


@pytest.mark.parametrize(
    ("method", "failure", "retry_on", "retried"),
    [
        # a request that never left may be repeated whatever its method
        ("GET", CONNECT, ["connect-failure"], True),
        ("POST", CONNECT, ["connect-failure"], True),
        ("PATCH", CONNECT, ALL, True),
        ("POST", CONNECT, ["5xx", "timeout"], False),
        # idempotent methods: what the route lists
        ("GET", STATUS_5XX, ALL, True),
        ("HEAD", TIMEOUT, ALL, True),
        ("OPTIONS", STATUS_5XX, ["5xx"], True),
        ("PUT", TIMEOUT, ["timeout"], True),
        ("DELETE", STATUS_5XX, ALL, True),
        ("GET", STATUS_5XX, ["connect-failure"], False),
        ("GET", TIMEOUT, ["connect-failure", "5xx"], False),
        # a broken connection counts as a connect failure or a 5xx for idempotent methods
        ("GET", RESET, ["connect-failure"], True),
        ("GET", RESET, ["5xx"], True),
        ("GET", RESET, ["timeout"], False),
        # the upstream may have acted on a POST or PATCH that reached it: never repeated
        ("POST", STATUS_5XX, ALL, False),
        ("POST", TIMEOUT, ALL, False),
        ("POST", RESET, ALL, False),
        ("PATCH", STATUS_5XX, ALL, False),
        ("PATCH", TIMEOUT, ALL, False),
        ("get", STATUS_5XX, ALL, True),
    ],
)
def test_which_failures_are_retried(method, failure, retry_on, retried):
    assert may_retry(method, failure, retry_on) is retried


@pytest.mark.parametrize(
    ("remaining", "later", "method", "retry_on", "other", "p95", "total", "connect", "hedge"),
    [
        # idempotent, another upstream next: hedged after 3 x p95, the try may run to the end
        (5.0, 1, "GET", ALL, True, 0.02, 5.0, 1.5, 0.15),  # the floor
        (5.0, 1, "GET", ALL, True, 0.2, 5.0, 1.5, 0.6),
        (5.0, 1, "GET", ALL, True, 2.0, 5.0, 1.5, 2.5),  # never later than the equal share
        (5.0, 1, "GET", ALL, True, None, 5.0, 1.5, 2.5),  # no latency known yet: the share
        (0.9, 2, "PUT", ALL, True, 0.01, 0.9, 0.9, 0.15),
        # the same upstream next: the equal share, so the retry fits
        (1.0, 1, "GET", ALL, False, 0.01, 0.5, 0.5, None),
        (0.9, 2, "GET", ALL, False, None, 0.3, 0.3, None),
        # the last try may use everything left
        (1.0, 0, "GET", ALL, True, 0.01, 1.0, 1.0, None),
        # a POST timeout is never retried: never hedged, but a connect failure is retried fast
        (5.0, 2, "POST", ALL, True, 0.01, 5.0, 1.5, None),
        (5.0, 1, "POST", ["5xx"], True, 0.01, 5.0, 5.0, None),
        # timeouts not retried on this route
        (5.0, 1, "GET", ["connect-failure", "5xx"], True, 0.01, 5.0, 1.5, None),
        (-0.2, 1, "GET", ALL, True, None, 0.0, 0.0, 0.0),
    ],
)
def test_each_try_gets_time_limits_that_leave_room_for_the_next(
        remaining, later, method, retry_on, other, p95, total, connect, hedge):
    got = try_timeouts(remaining, later_tries=later, method=method, retry_on=retry_on,
                       next_is_other_upstream=other, recent_p95_seconds=p95)
    assert got.total_seconds == pytest.approx(total)
    assert got.connect_seconds == pytest.approx(connect)
    if hedge is None:
        assert got.hedge_after_seconds is None
    else:
        assert got.hedge_after_seconds == pytest.approx(hedge)
