"""Fall/rise: how many consecutive probe results move an upstream between healthy and not."""

from __future__ import annotations

import pytest

from control_plane.health.fall_rise import INITIAL, HealthState, observe


def run(results: str, *, fall: int, rise: int, start: HealthState = INITIAL) -> str:
    """Feed ``results`` ("+" success, "-" failure); the verdict after each, "U" or "D"."""
    state = start
    verdicts = []
    for mark in results:
        state = observe(state, mark == "+", unhealthy_threshold=fall, healthy_threshold=rise)
        verdicts.append("U" if state.healthy else "D")
    return "".join(verdicts)


@pytest.mark.parametrize(("results", "fall", "rise", "verdicts"), [
    ("---", 3, 2, "UUD"),            # the third consecutive failure takes it down
    ("--+--", 3, 2, "UUUUU"),        # a success resets the failure streak
    ("-", 1, 1, "D"),                # fall 1: one failure is enough
    ("--++", 2, 2, "UDDU"),          # down after two, up after two
    ("--+-++", 2, 2, "UDDDDU"),      # a failure resets the success streak
    ("--+++", 2, 3, "UDDDU"),        # rise 3 needs three successes
    ("++++", 3, 2, "UUUU"),          # a healthy upstream stays healthy
    ("--" + "+-" * 5, 2, 2, "UD" + "DD" * 5),  # flapping every probe never comes back up
    ("-" * 10, 10, 2, "U" * 9 + "D"),
])
def test_upstream_verdicts_follow_fall_and_rise(results, fall, rise, verdicts):
    assert run(results, fall=fall, rise=rise) == verdicts


def test_a_new_upstream_starts_healthy_with_empty_streaks():
    assert INITIAL == HealthState(healthy=True, consecutive_successes=0, consecutive_failures=0)


def test_streaks_continue_from_a_stored_state():
    stored = HealthState(healthy=True, consecutive_successes=0, consecutive_failures=1)
    assert run("-", fall=2, rise=2, start=stored) == "D"
    down = HealthState(healthy=False, consecutive_successes=1, consecutive_failures=0)
    assert run("+", fall=2, rise=2, start=down) == "U"


def test_streak_counts_are_reported():
    state = INITIAL
    for success in (False, False, False, True):
        state = observe(state, success, unhealthy_threshold=2, healthy_threshold=3)
    assert state == HealthState(healthy=False, consecutive_successes=1, consecutive_failures=0)


def test_thresholds_below_one_are_refused():
    with pytest.raises(ValueError):
        observe(INITIAL, True, unhealthy_threshold=0, healthy_threshold=1)
