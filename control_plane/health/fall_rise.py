"""Fall/rise: how consecutive probe results become a health verdict (HAProxy's ``fall`` and
``rise``, Envoy's ``unhealthy_threshold`` and ``healthy_threshold``).

A healthy upstream becomes unhealthy after ``unhealthy_threshold`` consecutive failed probes; an
unhealthy one becomes healthy after ``healthy_threshold`` consecutive successful probes. A
result breaks the opposite streak. An upstream never probed before starts healthy with both
streaks at zero: traffic already flows to it (the reconciler routes to the primary), so it
takes the configured number of failures to move traffic away, exactly as for an upstream that
was healthy a moment ago.

Pure: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HealthState:
    """The verdict and the two streaks behind it."""

    healthy: bool = True
    consecutive_successes: int = 0
    consecutive_failures: int = 0


INITIAL = HealthState()


def observe(state: HealthState, success: bool, *, unhealthy_threshold: int,
            healthy_threshold: int) -> HealthState:
    """The state after one more probe result."""
    if unhealthy_threshold < 1 or healthy_threshold < 1:
        raise ValueError("thresholds must be at least 1")
    if success:
        successes = state.consecutive_successes + 1
        healthy = state.healthy or successes >= healthy_threshold
        return HealthState(healthy, successes, 0)
    failures = state.consecutive_failures + 1
    healthy = state.healthy and failures < unhealthy_threshold
    return HealthState(healthy, 0, failures)
