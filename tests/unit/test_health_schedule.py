"""When probes start: every interval on a fixed grid, never cut short by the invocation's end."""

from __future__ import annotations

from control_plane.health.schedule import ProbeSchedule


def starts(schedule: ProbeSchedule, key: str, until: float, step: float = 0.25) -> list[float]:
    """Times (on the fake clock) at which ``key`` starts, polling every ``step``."""
    times, now = [], schedule.start
    while now <= until:
        if key in schedule.due(now):
            times.append(now)
        now = round(now + step, 6)
    return times


def test_each_job_is_probed_every_interval_from_its_first_due_time():
    schedule = ProbeSchedule(start=0.0, deadline=10.0)
    schedule.add("a", interval=2.0, timeout=0.5, due=0.0)
    schedule.add("b", interval=3.0, timeout=0.5, due=1.0)
    assert starts(schedule, "a", 10.0) == [0.0, 2.0, 4.0, 6.0, 8.0]
    schedule2 = ProbeSchedule(start=0.0, deadline=10.0)
    schedule2.add("b", interval=3.0, timeout=0.5, due=1.0)
    assert starts(schedule2, "b", 10.0) == [1.0, 4.0, 7.0]


def test_no_probe_starts_unless_its_timeout_ends_before_the_deadline():
    schedule = ProbeSchedule(start=0.0, deadline=5.0)
    schedule.add("a", interval=1.0, timeout=0.8, due=0.0)
    assert starts(schedule, "a", 6.0) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert schedule.next_wake(4.5) is None


def test_a_late_start_keeps_the_grid_and_skips_missed_slots():
    schedule = ProbeSchedule(start=0.0, deadline=100.0)
    schedule.add("a", interval=1.0, timeout=0.1, due=0.0)
    assert schedule.due(0.0) == ["a"]
    assert schedule.due(3.4) == ["a"]       # busy for a while: one probe, not three
    assert schedule.next_wake(3.4) == 4.0   # back on the grid
    assert schedule.due(3.9) == []


def test_next_wake_is_the_earliest_due_time_of_any_job():
    schedule = ProbeSchedule(start=0.0, deadline=100.0)
    schedule.add("slow", interval=10.0, timeout=1.0, due=5.0)
    schedule.add("fast", interval=1.0, timeout=0.5, due=0.5)
    assert schedule.next_wake(0.0) == 0.5
    assert schedule.due(0.5) == ["fast"]
    assert schedule.next_wake(0.6) == 1.5


def test_a_timeout_longer_than_the_invocation_still_gets_one_probe():
    schedule = ProbeSchedule(start=0.0, deadline=5.0)
    schedule.add("patient", interval=300.0, timeout=60.0, due=0.0)
    assert schedule.due(0.0) == ["patient"]
    assert schedule.next_wake(0.1) is None


def test_removed_and_rescheduled_jobs():
    schedule = ProbeSchedule(start=0.0, deadline=100.0)
    schedule.add("a", interval=1.0, timeout=0.1, due=0.0)
    schedule.remove("a")
    assert schedule.due(0.0) == [] and "a" not in schedule
    schedule.add("a", interval=5.0, timeout=0.1, due=2.0)
    assert schedule.next_wake(0.0) == 2.0
