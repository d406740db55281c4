"""When a scheduled EventBridge rule fires next: rate() and AWS's six-field cron(), in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from local_cloud.schedule_expressions import UnsupportedSchedule, parse_schedule

FRIDAY_EVENING = datetime(2026, 12, 4, 21, 7, 30, tzinfo=UTC)


@pytest.mark.parametrize(("expression", "expected"), [
    ("rate(1 minute)", datetime(2026, 12, 4, 21, 8, 30, tzinfo=UTC)),
    ("rate(5 minutes)", datetime(2026, 12, 4, 21, 12, 30, tzinfo=UTC)),
    ("rate(2 hours)", datetime(2026, 12, 4, 23, 7, 30, tzinfo=UTC)),
    ("rate(1 day)", datetime(2026, 12, 5, 21, 7, 30, tzinfo=UTC)),
    ("cron(0/15 * * * ? *)", datetime(2026, 12, 4, 21, 15, tzinfo=UTC)),
    ("cron(* * * * ? *)", datetime(2026, 12, 4, 21, 8, tzinfo=UTC)),
    ("cron(0 10 ? * MON-FRI *)", datetime(2026, 12, 7, 10, 0, tzinfo=UTC)),
    ("cron(0 18 ? * 6 *)", datetime(2026, 12, 11, 18, 0, tzinfo=UTC)),   # 6 = Friday
    ("cron(30 2 1 * ? *)", datetime(2027, 1, 1, 2, 30, tzinfo=UTC)),
    ("cron(0 12 * JUL-AUG ? 2027)", datetime(2027, 7, 1, 12, 0, tzinfo=UTC)),
    ("cron(5,35 21 4 DEC ? 2026)", datetime(2026, 12, 4, 21, 35, tzinfo=UTC)),
])
def test_next_firing_time(expression, expected):
    assert parse_schedule(expression).next_after(FRIDAY_EVENING) == expected


@pytest.mark.parametrize("expression", [
    "rate(0 minutes)", "rate(5 weeks)", "cron(0 10 * * *)", "cron(0 10 L * ? *)",
    "cron(0 10 ? * 6#3 *)", "cron(0 10 15W * ? *)", "cron(61 * * * ? *)", "every minute",
])
def test_expressions_that_cannot_fire_here_are_refused(expression):
    with pytest.raises(UnsupportedSchedule):
        parse_schedule(expression)
