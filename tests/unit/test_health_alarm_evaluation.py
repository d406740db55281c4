"""Alarm evaluation as CloudWatch documents it: M of N, missing data, premature alarms.

The tables are the CloudWatch user guide's ("How alarm state is evaluated when data is
missing"): five datapoints of the evaluation range, oldest first; 0 does not breach, X
breaches, - is missing. "keep" means the alarm stays in whatever state it was.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from local_cloud.alarm_evaluation import (
    ALARM,
    INSUFFICIENT_DATA,
    OK,
    AlarmRule,
    cloudwatch_time,
    evaluate,
    evaluation_window,
)

T0 = datetime(2026, 12, 4, 20, 0, 0, tzinfo=UTC)
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")


def rule(m: int, n: int, treatment: str = "missing", **extra) -> AlarmRule:
    return AlarmRule(period_seconds=300, evaluation_periods=n, datapoints_to_alarm=m,
                     threshold=50.0, comparison="GreaterThanThreshold", statistic="Average",
                     treat_missing_data=treatment, **extra)


def slots(pattern: str) -> list[tuple[datetime, float | None]]:
    values = {"0": 10.0, "X": 99.0, "-": None}
    return [(T0 + timedelta(minutes=5 * i), values[mark])
            for i, mark in enumerate(pattern.split())]


def state(verdict) -> str:
    return verdict.state or "keep"


@pytest.mark.parametrize(("pattern", "expected"), [
    ("0 - X - X", (OK, OK, OK, OK)),
    ("0 - - - -", (OK, OK, OK, OK)),
    ("- - - - -", (INSUFFICIENT_DATA, "keep", ALARM, OK)),
    ("0 X X - X", (ALARM, ALARM, ALARM, ALARM)),
    ("- - X - -", (ALARM, "keep", ALARM, OK)),
])
def test_three_of_three_follows_the_cloudwatch_table(pattern, expected):
    got = tuple(state(evaluate(rule(3, 3, t), slots(pattern))) for t in TREATMENTS)
    assert got == expected


@pytest.mark.parametrize(("pattern", "expected"), [
    ("0 - X - X", (ALARM, ALARM, ALARM, ALARM)),
    ("0 0 X 0 X", (ALARM, ALARM, ALARM, ALARM)),
    ("0 - X - -", (OK, OK, ALARM, OK)),
    ("- - - - 0", (OK, OK, ALARM, OK)),
    ("- - - X -", (ALARM, "keep", ALARM, OK)),
])
def test_two_of_three_follows_the_cloudwatch_table(pattern, expected):
    got = tuple(state(evaluate(rule(2, 3, t), slots(pattern))) for t in TREATMENTS)
    assert got == expected


@pytest.mark.parametrize(("pattern", "expected"), [
    ("- - - - X", "keep"),   # one breaching datapoint, too recent to alarm on
    ("- - - X -", "keep"),
    ("- - X - -", ALARM),    # old enough: alarms even with fewer than M datapoints
])
def test_a_lone_recent_breach_does_not_alarm_prematurely(pattern, expected):
    assert state(evaluate(rule(3, 3), slots(pattern))) == expected


@pytest.mark.parametrize(("pattern", "expected"), [
    ("X 0 0", OK),           # only the most recent datapoint counts (1 of 1)
    ("0 0 X", ALARM),
    ("X - -", ALARM),        # a gap keeps the last verdict instead of going unknown
    ("0 - -", OK),
    ("- - -", INSUFFICIENT_DATA),
])
def test_one_of_one_with_missing_data_as_turnout_configures_its_alarms(pattern, expected):
    turnout = AlarmRule(period_seconds=10, evaluation_periods=1, datapoints_to_alarm=1,
                        threshold=1.0, comparison="LessThanThreshold", statistic="Minimum")
    values = {"0": 1.0, "X": 0.0, "-": None}
    range_ = [(T0 + timedelta(seconds=10 * i), values[m]) for i, m in enumerate(pattern.split())]
    assert turnout.evaluation_range == 3
    assert state(evaluate(turnout, range_)) == expected


@pytest.mark.parametrize(("comparison", "value", "breaches"), [
    ("GreaterThanOrEqualToThreshold", 50.0, True),
    ("GreaterThanThreshold", 50.0, False),
    ("LessThanThreshold", 49.9, True),
    ("LessThanOrEqualToThreshold", 50.0, True),
    ("LessThanThreshold", 50.0, False),
])
def test_comparison_operators(comparison, value, breaches):
    assert AlarmRule(60, 1, 1, 50.0, comparison, "Average").breaches(value) is breaches


def test_threshold_reason_reads_like_cloudwatchs():
    verdict = evaluate(rule(1, 1), [(T0, 99.5)])
    assert verdict.reason == (
        "Threshold Crossed: 1 out of the last 1 datapoint [99.5 (04/12/26 20:00:00)] was "
        "greater than the threshold (50.0) (minimum 1 datapoint for OK -> ALARM transition).")
    ok = evaluate(rule(1, 1), [(T0, 10.0)])
    assert "was not greater than the threshold" in ok.reason
    assert "for ALARM -> OK transition" in ok.reason


def test_only_whole_periods_aligned_on_the_epoch_are_evaluated():
    turnout = AlarmRule(10, 1, 1, 1.0, "LessThanThreshold", "Minimum")
    start, end = evaluation_window(turnout, datetime(2026, 12, 4, 20, 0, 17, 400000, tzinfo=UTC))
    assert end == datetime(2026, 12, 4, 20, 0, 10, tzinfo=UTC)
    assert start == end - timedelta(seconds=30)


def test_alarms_this_evaluator_cannot_compute_are_left_alone():
    base = {"MetricName": "m", "Period": 60, "Threshold": 1.0, "EvaluationPeriods": 1,
            "Statistic": "Average", "ComparisonOperator": "GreaterThanThreshold"}
    assert AlarmRule.from_alarm(base) is not None
    assert AlarmRule.from_alarm({**base, "Metrics": [{"Id": "e1", "Expression": "m1*2"}]}) is None
    assert AlarmRule.from_alarm({**base, "Statistic": None, "ExtendedStatistic": "p99"}) is None
    assert AlarmRule.from_alarm(
        {**base, "ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold"}) is None
    assert AlarmRule.from_alarm({**base, "DatapointsToAlarm": None}).datapoints_to_alarm == 1


def test_event_timestamps_have_cloudwatchs_format():
    assert cloudwatch_time(datetime(2019, 10, 2, 17, 4, 40, 985000, tzinfo=UTC)) == (
        "2019-10-02T17:04:40.985+0000")
