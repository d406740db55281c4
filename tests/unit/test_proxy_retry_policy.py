"""When a proxy route repeats a failed try on the next upstream, and how long each try may take."""

from __future__ import annotations

import pytest

from data_plane.proxy.retry_policy import Failure, may_retry, try_budget_seconds

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
    ("remaining", "later_tries", "method", "retry_on", "budget"),
    [
        (1.0, 1, "GET", ALL, 0.5),  # a hanging first upstream leaves half for the next
        (0.9, 2, "GET", ALL, 0.3),
        (1.0, 0, "GET", ALL, 1.0),  # the last try may use everything left
        (1.0, 2, "POST", ALL, 1.0),  # a POST timeout is never retried: no need to save time
        (1.0, 1, "GET", ["connect-failure", "5xx"], 1.0),  # timeouts not retried on this route
        (-0.2, 1, "GET", ALL, 0.0),
    ],
)
def test_each_try_gets_its_share_of_the_remaining_time(remaining, later_tries, method, retry_on, budget):
    got = try_budget_seconds(remaining, later_tries=later_tries, method=method, retry_on=retry_on)
    assert got == pytest.approx(budget)
