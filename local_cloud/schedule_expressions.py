"""EventBridge schedule expressions: when a scheduled rule fires next (pure, UTC).

- ``rate(value unit)``: every ``value`` minutes, hours or days (``minute``/``minutes``...).
- ``cron(minutes hours day-of-month month day-of-week year)``: AWS's six-field cron, with
  ``*``, ``?``, lists (``1,15``), ranges (``MON-FRI``), steps (``0/5``, ``*/10``), month and day
  names. Day-of-week counts ``1`` = ``SUN`` to ``7`` = ``SAT``. ``L``, ``W`` and ``#`` are not
  supported here (:class:`UnsupportedSchedule`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_CRON = re.compile(r"cron\((.*)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {n: i for i, n in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)}
_DAYS = {n: i for i, n in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], 1)}
_SEARCH_DAYS = 366 * 5


class UnsupportedSchedule(ValueError):
    """A schedule expression this module cannot compute."""


@dataclass(frozen=True)
class RateSchedule:
    seconds: int

    def next_after(self, moment: datetime) -> datetime:
        return moment + timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class CronSchedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None   # None: "?" (day-of-week decides)
    months: frozenset[int]
    days_of_week: frozenset[int] | None    # None: "?" (day-of-month decides)
    years: frozenset[int]

    def next_after(self, moment: datetime) -> datetime:
        """The first matching minute strictly after ``moment`` (same tzinfo)."""
        start = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for _ in range(_SEARCH_DAYS):
            if self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= start:
                            return candidate
            day += timedelta(days=1)
        raise UnsupportedSchedule("the cron expression never fires in the next five years")

    def _day_matches(self, day: datetime) -> bool:
        if day.year not in self.years or day.month not in self.months:
            return False
        aws_weekday = (day.isoweekday() % 7) + 1  # SUN=1 ... SAT=7
        dom = self.days_of_month is None or day.day in self.days_of_month
        dow = self.days_of_week is None or aws_weekday in self.days_of_week
        return dom and dow


Schedule = RateSchedule | CronSchedule


def parse_schedule(expression: str) -> Schedule:
    """The schedule of a rule's ``ScheduleExpression``."""
    text = expression.strip()
    rate = _RATE.fullmatch(text)
    if rate:
        value = int(rate.group(1))
        if value < 1:
            raise UnsupportedSchedule(f"a rate must be at least 1: {expression}")
        return RateSchedule(value * _UNIT_SECONDS[rate.group(2).rstrip("s")])
    cron = _CRON.fullmatch(text)
    if not cron:
        raise UnsupportedSchedule(f"not a rate() or cron() expression: {expression}")
    fields = cron.group(1).split()
    if len(fields) != 6:
        raise UnsupportedSchedule(f"cron needs six fields: {expression}")
    minutes, hours, dom, months, dow, years = fields
    return CronSchedule(
        minutes=_field(minutes, 0, 59),
        hours=_field(hours, 0, 23),
        days_of_month=None if dom == "?" else _field(dom, 1, 31),
        months=_field(months, 1, 12, _MONTHS),
        days_of_week=None if dow == "?" else _field(dow, 1, 7, _DAYS),
        years=_field(years, 1970, 2199),
    )


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        values.update(_part(part.upper(), low, high, names or {}))
    if not values:
        raise UnsupportedSchedule(f"empty cron field: {text}")
    return frozenset(values)


def _part(part: str, low: int, high: int, names: dict[str, int]) -> range:
    base, _, step_text = part.partition("/")
    step = _number(step_text, names) if step_text else 1
    if base in ("*", "?"):
        first, last = low, high
    elif "-" in base:
        first_text, last_text = base.split("-", 1)
        first, last = _number(first_text, names), _number(last_text, names)
    else:
        first = _number(base, names)
        last = high if step_text else first
    if not (low <= first <= high and low <= last <= high) or step < 1:
        raise UnsupportedSchedule(f"cron field '{part}' is out of range {low}-{high}")
    return range(first, last + 1, step)


def _number(text: str, names: dict[str, int]) -> int:
    if text in names:
        return names[text]
    if not text.isdigit():
        raise UnsupportedSchedule(f"'{text}' is not supported locally (numbers, names, * ? , - /)")
    return int(text)
