"""Passive outlier detection: consecutive failures eject an upstream for a growing time."""

from __future__ import annotations

import pytest

from data_plane.proxy.outlier import OutlierDetector, OutlierPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def detector(clock: Clock) -> OutlierDetector:
    policy = OutlierPolicy(consecutive_failures=3, base_ejection_seconds=30, max_ejection_seconds=100)
    return OutlierDetector(policy, clock=clock)


def fail(detector: OutlierDetector, times: int, key: str = "a") -> list[bool]:
    return [detector.record_failure(key) for _ in range(times)]


def test_third_consecutive_failure_ejects(detector):
    assert fail(detector, 3) == [False, False, True]
    assert detector.is_ejected("a")
    assert not detector.is_ejected("b")


def test_a_success_in_between_resets_the_count(detector):
    fail(detector, 2)
    detector.record_success("a")
    assert fail(detector, 2) == [False, False]
    assert not detector.is_ejected("a")


def test_ejected_upstream_is_readmitted_after_the_base_ejection_time(detector, clock):
    fail(detector, 3)
    clock.now += 29.9
    assert detector.is_ejected("a")
    clock.now += 0.2
    assert not detector.is_ejected("a")


def test_failures_while_ejected_do_not_extend_the_ejection(detector, clock):
    fail(detector, 3)
    assert fail(detector, 5) == [False] * 5
    clock.now += 30
    assert not detector.is_ejected("a")


@pytest.mark.parametrize(
    ("ejections", "seconds"),
    [(1, 30), (2, 60), (3, 90), (4, 100), (5, 100)],  # grows by the base, capped at the max
)
def test_repeated_ejections_last_longer_up_to_the_maximum(detector, clock, ejections, seconds):
    for _ in range(ejections - 1):
        fail(detector, 3)
        while detector.is_ejected("a"):
            clock.now += 1
        # readmitted and failing again at once
    fail(detector, 3)
    ejected_at = clock.now
    while detector.is_ejected("a"):
        clock.now += 1
    assert clock.now - ejected_at == pytest.approx(seconds, abs=1)


def test_time_without_ejection_forgives_earlier_ejections(detector, clock):
    fail(detector, 3)
    clock.now += 30
    fail(detector, 3)  # second ejection: 60 s
    clock.now += 60
    clock.now += 120  # four base periods healthy: both earlier ejections forgiven
    fail(detector, 3)
    clock.now += 30
    assert not detector.is_ejected("a")


def test_a_timeout_ejects_at_once(detector):
    assert detector.record_failure("a", timeout=True) is True
    assert detector.is_ejected("a")


def test_a_timeout_after_other_failures_ejects_and_a_success_resets_both_counts(clock):
    detector = OutlierDetector(OutlierPolicy(consecutive_failures=5, consecutive_timeouts=2), clock=clock)
    assert detector.record_failure("a", timeout=True) is False
    detector.record_success("a")
    assert detector.record_failure("a", timeout=True) is False
    assert detector.record_failure("a") is False  # not a timeout: the timeouts are no longer in a row
    assert detector.record_failure("a", timeout=True) is False
    assert detector.record_failure("a", timeout=True) is True
