"""CloudWatch alarms, evaluated (moto stores alarms and metric data but never evaluates them).

:class:`AlarmEvaluator` does what CloudWatch does for every metric alarm, from a background
thread:

- a new alarm starts in ``INSUFFICIENT_DATA`` ("Unchecked: Initial alarm creation"), as on AWS
  (moto starts it at ``OK``), and is evaluated at once;
- it is evaluated again after every period boundary (every 10 s for periods under a minute,
  as CloudWatch evaluates high-resolution alarms, every 60 s otherwise), half a second after the
  boundary so the period's last datapoints are in, reading the evaluation range with
  ``GetMetricData`` (one request for every alarm due) and deciding with
  :mod:`local_cloud.alarm_evaluation`;
- a change is recorded with ``SetAlarmState`` and published to the default bus as AWS's
  ``CloudWatch Alarm State Change`` event (source ``aws.cloudwatch``, ``resources`` = the
  alarm's ARN, ``detail`` with ``alarmName``, ``state``, ``previousState`` and
  ``configuration``);
- an updated alarm keeps its state, as on AWS (moto's ``PutMetricAlarm`` resets it to ``OK``);
- a state set by hand (``aws cloudwatch set-alarm-state``) is announced like any change and
  lasts until the next evaluation, as on AWS.

Alarms on metric math, percentiles or anomaly bands are left alone.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from local_cloud.alarm_evaluation import (
    INITIAL_REASON,
    INSUFFICIENT_DATA,
    OK,
    AlarmRule,
    cloudwatch_time,
    evaluate,
    evaluation_window,
    reason_data,
)
from local_cloud.background import BackgroundRunner
from local_cloud.clients import aws_client

log = logging.getLogger(__name__)

REFRESH_SECONDS = 1.0
SETTLE_SECONDS = 0.5
DETAIL_TYPE = "CloudWatch Alarm State Change"
_QUERIES_PER_REQUEST = 500


@dataclass
class _Known:
    """What the evaluator last made (or saw) of one alarm."""

    state: str
    reason: str
    reason_data: str | None
    timestamp: datetime
    next_evaluation: datetime


@dataclass(frozen=True)
class StateChange:
    alarm_name: str
    previous: str
    state: str


def evaluation_cadence(period_seconds: int) -> int:
    """How often CloudWatch evaluates an alarm of this period, in seconds."""
    return 10 if period_seconds < 60 else 60


class AlarmEvaluator(BackgroundRunner):
    """Evaluates every metric alarm of the endpoint's region (see the module docstring)."""

    thread_name = "cloudwatch-alarms"
    what = "alarm evaluation"

    def __init__(self, endpoint_url: str, *, region: str = "us-east-1",
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._cloudwatch = aws_client("cloudwatch", endpoint_url=endpoint_url, region=region)
        self._events = aws_client("events", endpoint_url=endpoint_url, region=region)
        self._now = now
        self._known: dict[str, _Known] = {}
        self._init_background()
        self.changes: list[StateChange] = []

    def step(self) -> None:
        self.evaluate_once()

    def _wait_seconds(self) -> float:
        now = self._now()
        upcoming = [(k.next_evaluation - now).total_seconds() for k in self._known.values()]
        return max(0.05, min([REFRESH_SECONDS, *upcoming]))

    # ---- one pass ----------------------------------------------------------------------

    def evaluate_once(self, now: datetime | None = None) -> list[StateChange]:
        """Read every alarm, evaluate the ones due at ``now``; returns the changes made."""
        now = now or self._now()
        alarms = self._describe()
        for arn in list(self._known):
            if arn not in alarms:
                del self._known[arn]
        due: list[tuple[Mapping[str, Any], AlarmRule]] = []
        changes: list[StateChange] = []
        for arn, alarm in alarms.items():
            change = self._observe(arn, alarm, now)
            if change is not None:
                changes.append(change)
            rule = AlarmRule.from_alarm(alarm)
            if rule is not None and now >= self._known[arn].next_evaluation:
                due.append((alarm, rule))
        values = self._datapoints(due, now)
        for index, (alarm, rule) in enumerate(due):
            change = self._decide(alarm, rule, values.get(index, {}), now)
            if change is not None:
                changes.append(change)
        self.changes.extend(changes)
        return changes

    def _describe(self) -> dict[str, Mapping[str, Any]]:
        alarms: dict[str, Mapping[str, Any]] = {}
        paginator = self._cloudwatch.get_paginator("describe_alarms")
        for page in paginator.paginate(AlarmTypes=["MetricAlarm"]):
            for alarm in page.get("MetricAlarms", []):
                alarms[alarm["AlarmArn"]] = alarm
        return alarms

    def _observe(self, arn: str, alarm: Mapping[str, Any], now: datetime) -> StateChange | None:
        """Track a new, updated or hand-set alarm; returns a hand-set change (announced)."""
        known = self._known.get(arn)
        reset_by_moto = (alarm.get("StateValue") == OK
                         and alarm.get("StateReason") == INITIAL_REASON)
        if known is None:
            if reset_by_moto:
                self._set_state(alarm, INSUFFICIENT_DATA, INITIAL_REASON, None)
                self._known[arn] = _Known(INSUFFICIENT_DATA, INITIAL_REASON, None, now, now)
            else:
                self._known[arn] = _Known(alarm["StateValue"], alarm.get("StateReason", ""),
                                          alarm.get("StateReasonData"), now, now)
            return None
        if reset_by_moto:  # PutMetricAlarm on an existing alarm: AWS keeps its state
            self._set_state(alarm, known.state, known.reason, known.reason_data)
            known.next_evaluation = now
            return None
        if alarm.get("StateValue") != known.state:  # SetAlarmState by hand
            previous = _Known(known.state, known.reason, known.reason_data, known.timestamp, now)
            known.state = str(alarm["StateValue"])
            known.reason = str(alarm.get("StateReason", ""))
            known.reason_data = alarm.get("StateReasonData")
            known.timestamp = now
            self._publish(alarm, previous, known)
            return StateChange(alarm["AlarmName"], previous.state, known.state)
        return None

    def _datapoints(self, due: list[tuple[Mapping[str, Any], AlarmRule]],
                    now: datetime) -> dict[int, dict[datetime, float]]:
        """Per due alarm (by index): the evaluation range's values, by period start."""
        groups: dict[tuple[datetime, datetime], list[int]] = {}
        for index, (_, rule) in enumerate(due):
            groups.setdefault(evaluation_window(rule, now - timedelta(seconds=SETTLE_SECONDS)),
                              []).append(index)
        values: dict[int, dict[datetime, float]] = {}
        for (start, end), indexes in groups.items():
            for first in range(0, len(indexes), _QUERIES_PER_REQUEST):
                chunk = indexes[first:first + _QUERIES_PER_REQUEST]
                queries = [_query(f"q{index}", *due[index]) for index in chunk]
                paginator = self._cloudwatch.get_paginator("get_metric_data")
                for page in paginator.paginate(MetricDataQueries=queries, StartTime=start,
                                               EndTime=end, ScanBy="TimestampAscending"):
                    for result in page.get("MetricDataResults", []):
                        index = int(result["Id"][1:])
                        series = values.setdefault(index, {})
                        for at, value in zip(result.get("Timestamps", []),
                                             result.get("Values", []), strict=False):
                            series[at.astimezone(UTC)] = float(value)
        return values

    def _decide(self, alarm: Mapping[str, Any], rule: AlarmRule,
                series: dict[datetime, float], now: datetime) -> StateChange | None:
        known = self._known[alarm["AlarmArn"]]
        cadence = evaluation_cadence(rule.period_seconds)
        boundary = int(now.timestamp() - SETTLE_SECONDS) // cadence * cadence
        known.next_evaluation = datetime.fromtimestamp(boundary + cadence + SETTLE_SECONDS, UTC)
        start, end = evaluation_window(rule, now - timedelta(seconds=SETTLE_SECONDS))
        period = timedelta(seconds=rule.period_seconds)
        slots = [(start + i * period, series.get(start + i * period))
                 for i in range(rule.evaluation_range)]
        verdict = evaluate(rule, slots)
        if verdict.state is None or verdict.state == known.state:
            return None
        data = (reason_data(rule, verdict, query_date=now, start_date=verdict.evaluated[0][0])
                if verdict.evaluated else None)
        previous = _Known(known.state, known.reason, known.reason_data, known.timestamp, now)
        self._set_state(alarm, verdict.state, verdict.reason, data)
        known.state, known.reason, known.reason_data, known.timestamp = (
            verdict.state, verdict.reason, data, now)
        self._publish(alarm, previous, known)
        return StateChange(alarm["AlarmName"], previous.state, verdict.state)

    # ---- writes ------------------------------------------------------------------------

    def _set_state(self, alarm: Mapping[str, Any], state: str, reason: str,
                   data: str | None) -> None:
        self._cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=state,
                                         StateReason=reason[:1023],
                                         StateReasonData=data or "{}")

    def _publish(self, alarm: Mapping[str, Any], previous: _Known, current: _Known) -> None:
        detail = state_change_detail(alarm, previous, current)
        self._events.put_events(Entries=[{
            "Source": "aws.cloudwatch", "DetailType": DETAIL_TYPE,
            "Resources": [alarm["AlarmArn"]], "Detail": json.dumps(detail),
            "EventBusName": "default",
        }])


def state_change_detail(alarm: Mapping[str, Any], previous: _Known,
                        current: _Known) -> dict[str, Any]:
    """The ``detail`` of AWS's ``CloudWatch Alarm State Change`` for a single-metric alarm."""
    configuration: dict[str, Any] = {}
    if alarm.get("AlarmDescription"):
        configuration["description"] = alarm["AlarmDescription"]
    stat: dict[str, Any] = {
        "metric": {
            "dimensions": {d["Name"]: d["Value"] for d in alarm.get("Dimensions") or []},
            "name": alarm.get("MetricName"),
            "namespace": alarm.get("Namespace"),
        },
        "period": alarm.get("Period"),
        "stat": alarm.get("Statistic") or alarm.get("ExtendedStatistic"),
    }
    if alarm.get("Unit"):
        stat["unit"] = alarm["Unit"]
    configuration["metrics"] = [{
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, str(alarm["AlarmArn"]))),
        "metricStat": stat,
        "returnData": True,
    }]
    return {
        "alarmName": alarm["AlarmName"],
        "state": _state(current),
        "previousState": _state(previous),
        "configuration": configuration,
    }


def _state(known: _Known) -> dict[str, Any]:
    state: dict[str, Any] = {"value": known.state, "reason": known.reason}
    if known.reason_data and known.reason_data != "{}":
        state["reasonData"] = known.reason_data
    state["timestamp"] = cloudwatch_time(known.timestamp)
    return state


def _query(query_id: str, alarm: Mapping[str, Any], rule: AlarmRule) -> dict[str, Any]:
    stat: dict[str, Any] = {
        "Metric": {"Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"],
                   "Dimensions": list(alarm.get("Dimensions") or [])},
        "Period": rule.period_seconds,
        "Stat": rule.statistic,
    }
    if alarm.get("Unit"):
        stat["Unit"] = alarm["Unit"]
    return {"Id": query_id, "MetricStat": stat, "ReturnData": True}
