"""How CloudWatch decides a metric alarm's state from its datapoints (pure).

Follows "How alarm state is evaluated when data is missing" in the CloudWatch user guide:

- CloudWatch looks at more datapoints than ``EvaluationPeriods`` (N): the *evaluation range*.
  Its exact size is not documented beyond the example (5 for N = 3); here it is N + 2 periods.
- When the range holds at least N real datapoints, the N most recent real ones are evaluated
  (gaps are skipped, ``TreatMissingData`` is not consulted): ALARM when at least
  ``DatapointsToAlarm`` (M) of them breach, else OK.
- Otherwise the shortfall is filled as ``TreatMissingData`` says, using as few filled
  datapoints as possible and every real one in the range:
  ``breaching`` counts the fills as breaching, ``notBreaching`` as not breaching;
  ``missing`` with no datapoint at all is INSUFFICIENT_DATA, ``ignore`` keeps the state.
  With ``missing`` and ``ignore``, a non-breaching real datapoint makes it OK unless M breach;
  when every real datapoint breaches but fewer than M, the alarm goes to ALARM once the oldest
  of them is at least M periods old ("avoiding premature transitions": ``missing`` goes to
  ALARM, ``ignore`` keeps its state) and otherwise waits (keeps its state).

Only whole periods are evaluated: the one in progress is not, so a verdict never changes
because a period is half full. Periods are aligned on multiples of the period since the epoch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

OK = "OK"
ALARM = "ALARM"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"
INITIAL_REASON = "Unchecked: Initial alarm creation"

_COMPARISONS = {
    "GreaterThanOrEqualToThreshold": ("greater than or equal to", lambda v, t: v >= t),
    "GreaterThanThreshold": ("greater than", lambda v, t: v > t),
    "LessThanThreshold": ("less than", lambda v, t: v < t),
    "LessThanOrEqualToThreshold": ("less than or equal to", lambda v, t: v <= t),
}
_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
_MISSING_TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")


@dataclass(frozen=True)
class AlarmRule:
    """What evaluation needs of a metric alarm."""

    period_seconds: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    statistic: str
    treat_missing_data: str = "missing"

    @classmethod
    def from_alarm(cls, alarm: Mapping[str, Any]) -> AlarmRule | None:
        """The rule of a ``DescribeAlarms`` entry; None for what is not evaluated here
        (metric math, percentiles, anomaly-detection bands)."""
        if alarm.get("Metrics") or alarm.get("ExtendedStatistic") or not alarm.get("MetricName"):
            return None
        if alarm.get("ComparisonOperator") not in _COMPARISONS:
            return None
        if alarm.get("Statistic") not in _STATISTICS or not alarm.get("Period"):
            return None
        periods = int(alarm.get("EvaluationPeriods") or 1)
        treatment = alarm.get("TreatMissingData") or "missing"
        return cls(
            period_seconds=int(alarm["Period"]),
            evaluation_periods=periods,
            datapoints_to_alarm=int(alarm.get("DatapointsToAlarm") or periods),
            threshold=float(alarm["Threshold"]),
            comparison=str(alarm["ComparisonOperator"]),
            statistic=str(alarm["Statistic"]),
            treat_missing_data=treatment if treatment in _MISSING_TREATMENTS else "missing",
        )

    @property
    def evaluation_range(self) -> int:
        return self.evaluation_periods + 2

    def breaches(self, value: float) -> bool:
        return _COMPARISONS[self.comparison][1](value, self.threshold)


@dataclass(frozen=True)
class Verdict:
    """The state an evaluation leads to (``None``: keep the current one) and why."""

    state: str | None
    reason: str
    evaluated: tuple[tuple[datetime, float], ...] = ()
    filled: int = 0


def evaluation_window(rule: AlarmRule, now: datetime) -> tuple[datetime, datetime]:
    """``(start, end)`` of the evaluation range: whole periods ending at the last boundary."""
    period = rule.period_seconds
    end_epoch = int(now.timestamp()) // period * period
    end = datetime.fromtimestamp(end_epoch, UTC)
    return end - timedelta(seconds=period * rule.evaluation_range), end


def evaluate(rule: AlarmRule, slots: Sequence[tuple[datetime, float | None]]) -> Verdict:
    """The verdict for the evaluation range ``slots`` (oldest first, ``None`` = missing)."""
    n, m = rule.evaluation_periods, rule.datapoints_to_alarm
    real = [(at, value) for at, value in slots if value is not None]
    if len(real) >= n:
        evaluated = tuple(real[-n:])
        breaching = sum(rule.breaches(v) for _, v in evaluated)
        state = ALARM if breaching >= m else OK
        return Verdict(state, _threshold_reason(rule, evaluated, state), evaluated)
    filled = n - len(real)
    breaching = sum(rule.breaches(v) for _, v in real)
    evaluated = tuple(real)
    treatment = rule.treat_missing_data
    if treatment in ("breaching", "notBreaching"):
        counted = breaching + (filled if treatment == "breaching" else 0)
        state = ALARM if counted >= m else OK
        return Verdict(state, _filled_reason(rule, evaluated, filled, state), evaluated, filled)
    if breaching >= m:
        return Verdict(ALARM, _threshold_reason(rule, evaluated, ALARM), evaluated, filled)
    if not real:
        if treatment == "ignore":
            return Verdict(None, "no datapoints; missing data is ignored", (), filled)
        noun = "datapoint was" if n == 1 else "datapoints were"
        return Verdict(INSUFFICIENT_DATA, f"Insufficient Data: {n} {noun} unknown.", (), filled)
    if breaching < len(real):
        return Verdict(OK, _threshold_reason(rule, evaluated, OK), evaluated, filled)
    oldest = next(i for i, (_, value) in enumerate(slots) if value is not None)
    if len(slots) - oldest >= m and treatment == "missing":
        return Verdict(ALARM, _threshold_reason(rule, evaluated, ALARM), evaluated, filled)
    return Verdict(None, "too few datapoints to leave the current state", evaluated, filled)


def reason_data(rule: AlarmRule, verdict: Verdict, *, query_date: datetime,
                start_date: datetime) -> str:
    """The ``StateReasonData`` JSON document CloudWatch attaches to a threshold verdict."""
    document: dict[str, Any] = {
        "version": "1.0",
        "queryDate": cloudwatch_time(query_date),
        "startDate": cloudwatch_time(start_date),
        "statistic": rule.statistic,
        "period": rule.period_seconds,
        "recentDatapoints": [value for _, value in verdict.evaluated],
        "threshold": rule.threshold,
        "evaluatedDatapoints": [{"timestamp": cloudwatch_time(at), "value": value}
                                for at, value in reversed(verdict.evaluated)],
    }
    return json.dumps(document, separators=(",", ":"))


def cloudwatch_time(moment: datetime) -> str:
    """``2019-10-02T17:04:40.985+0000``, CloudWatch's timestamp format in alarm events."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def _threshold_reason(rule: AlarmRule, evaluated: Sequence[tuple[datetime, float]],
                      state: str) -> str:
    words = _COMPARISONS[rule.comparison][0]
    shown = ", ".join(f"{value} ({at.astimezone(UTC):%d/%m/%y %H:%M:%S})"
                      for at, value in reversed(evaluated))
    count = len(evaluated)
    noun = "datapoint" if count == 1 else "datapoints"
    verb = ("was" if count == 1 else "were") + ("" if state == ALARM else " not")
    minimum = (f"minimum {rule.datapoints_to_alarm} datapoint"
               f"{'' if rule.datapoints_to_alarm == 1 else 's'} for OK -> ALARM transition"
               if state == ALARM else
               f"minimum {rule.evaluation_periods - rule.datapoints_to_alarm + 1} datapoint"
               f"{'' if rule.evaluation_periods == rule.datapoints_to_alarm else 's'} "
               "for ALARM -> OK transition")
    return (f"Threshold Crossed: {count} out of the last {count} {noun} [{shown}] {verb} "
            f"{words} the threshold ({rule.threshold}) ({minimum}).")


def _filled_reason(rule: AlarmRule, evaluated: Sequence[tuple[datetime, float]], filled: int,
                   state: str) -> str:
    treated = "Breaching" if rule.treat_missing_data == "breaching" else "NonBreaching"
    periods = "period" if filled == 1 else "periods"
    points = "datapoint was" if filled == 1 else "datapoints were"
    text = (f"Threshold Crossed: no datapoints were received for {filled} {periods} and "
            f"{filled} missing {points} treated as [{treated}].")
    if evaluated:
        text += " " + _threshold_reason(rule, evaluated, state)
    return text
