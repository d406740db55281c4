"""Load through the local gateway across 50 routes while a primary is killed and restored.

The rate and duration are ``TURNOUT_LOAD_RPS`` and ``TURNOUT_LOAD_SECONDS``; the default rate is
a third of what two cores were measured to sustain in this scenario (450 requests/s with
the emulated AWS, the control plane, the gateway, the upstreams and this generator on them at
once). ``python -m bench.reliability`` runs the same scenario at 1,000 requests/s for 60 s and
prints the rate it achieved.
"""

from __future__ import annotations

import os

import pytest

from tests.reliability.load import LoadPlan, run_load, summary_lines

pytestmark = [pytest.mark.slow, pytest.mark.system, pytest.mark.timeout(900)]

RATE = float(os.environ.get("TURNOUT_LOAD_RPS", "150"))
SECONDS = float(os.environ.get("TURNOUT_LOAD_SECONDS", "45"))
MEMORY_GROWTH_ALLOWED = 1.25
"""The last third of the run may use at most this much more memory than the first third."""


def test_no_proxy_request_fails_and_direct_failures_stay_within_detection_while_a_primary_dies():
    plan = LoadPlan(rate_per_second=RATE, duration_seconds=SECONDS)
    report = run_load(plan)
    print("\n" + "\n".join(summary_lines(report)))

    assert report.achieved_rate >= 0.9 * RATE, "the gateway did not keep up with the offered rate"
    proxy = report.of(mode="proxy", victim=True) + report.of(mode="proxy", victim=False)
    assert report.failed(proxy) == []
    assert report.failed(report.of(mode="direct", victim=False)) == []
    victims_failed = report.failed(report.of(mode="direct", victim=True))
    assert len(victims_failed) <= report.direct_failure_bound()
    # the kill did move the victims' traffic, and the restore brought it back
    after_kill = report.served_by(mode="direct", start=report.kill_time, end=report.restore_time)
    assert after_kill.get("backup", 0) > 0 and "victim" not in after_kill
    assert report.served_by(mode="proxy", start=report.kill_time,
                            end=report.restore_time).get("backup", 0) > 0
    end = report.served_by(mode="direct", start=SECONDS - 3, end=SECONDS)
    assert end.get("victim", 0) > 0, f"no failback to the restored primary: {end}"
    first, last = report.rss_thirds()
    assert last <= first * MEMORY_GROWTH_ALLOWED, f"memory grew from {first:.0f} to {last:.0f} MiB"
