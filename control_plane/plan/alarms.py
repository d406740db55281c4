"""What CloudWatch alarms a route needs (pure): one per upstream, on the prober's metric.

The alarm (see :mod:`control_plane.model.health_signals` for the metric and the name):

- ``Statistic`` ``Minimum`` over ``Period`` seconds, ``LessThanThreshold`` 1: any datapoint 0
  (the prober judged the upstream unhealthy) in a period makes it breach.
- ``Period``: 10 s (the shortest CloudWatch allows, high resolution) when the probe interval is
  10 s or less; otherwise the shortest allowed period (20, 30, or a multiple of 60) that holds
  one probe, so every period normally has a datapoint. A stack may raise the shortest period
  (its ``AlarmPeriodSeconds`` parameter: 60 avoids high-resolution alarms).
- ``EvaluationPeriods`` 1 and ``DatapointsToAlarm`` 1: the prober already applied
  ``unhealthy_threshold`` / ``healthy_threshold``, so a 0 is a decided verdict, not a single bad
  probe; demanding more periods would only add delay (an M-of-N here would debounce twice).
  The way back is slower by nature: OK needs a whole period of 1s.
- ``TreatMissingData`` ``missing``: no data means "unknown", never "unhealthy". A prober that
  stops (crashed, throttled, deleted) must not fail every route over; its alarms go to
  ``INSUFFICIENT_DATA`` once the evaluation range holds no datapoint (the failover workflow
  acts on ``ALARM`` only), and short gaps between prober invocations are bridged by the
  datapoints before them. ``breaching`` would turn a dead prober into a failover storm.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from control_plane.model.health_signals import (
    METRIC_NAME,
    METRIC_NAMESPACE,
    alarm_name,
    metric_dimensions,
)
from control_plane.model.route import Route

HIGH_RESOLUTION_PERIODS = (10, 20, 30)
TAG_ROUTE = "turnout:route-id"
TAG_UPSTREAM = "turnout:upstream"
TAG_API = "turnout:rest-api-id"

_COMPARED = ("AlarmDescription", "ActionsEnabled", "Namespace", "MetricName", "Statistic",
             "Period", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
             "ComparisonOperator", "TreatMissingData")
_ACTION_LISTS = ("OKActions", "AlarmActions", "InsufficientDataActions")


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm as ``PutMetricAlarm`` takes it (``Tags`` apply when it is created)."""

    name: str
    request: Mapping[str, Any]
    tags: tuple[tuple[str, str], ...] = field(default=())

    def put_request(self) -> dict[str, Any]:
        return {**self.request, "Tags": [{"Key": k, "Value": v} for k, v in self.tags]}


@dataclass(frozen=True)
class AlarmPlan:
    puts: tuple[AlarmSpec, ...] = ()
    deletes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.puts and not self.deletes


def alarm_period(interval_seconds: int, shortest_seconds: int = 10) -> int:
    """The alarm period for a probe interval, at least ``shortest_seconds`` (see the module
    docstring)."""
    seconds = max(interval_seconds, shortest_seconds)
    for period in HIGH_RESOLUTION_PERIODS:
        if seconds <= period:
            return period
    return 60 * math.ceil(seconds / 60)


def desired_alarms(route: Route, *, rest_api_id: str,
                   shortest_period_seconds: int = 10) -> dict[str, AlarmSpec]:
    """The alarms ``route`` needs, by name."""
    period = alarm_period(route.health_check.interval_seconds, shortest_period_seconds)
    alarms = {}
    for upstream in route.upstreams:
        name = alarm_name(route.route_id, upstream.name)
        request = {
            "AlarmName": name,
            "AlarmDescription": (f"turnout: upstream '{upstream.name}' of route "
                                 f"'{route.route_id}' is unhealthy (the prober's "
                                 f"{METRIC_NAME} metric fell below 1)."),
            "ActionsEnabled": True,
            "Namespace": METRIC_NAMESPACE,
            "MetricName": METRIC_NAME,
            "Dimensions": metric_dimensions(route.route_id, upstream.name),
            "Statistic": "Minimum",
            "Period": period,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "Threshold": 1.0,
            "ComparisonOperator": "LessThanThreshold",
            "TreatMissingData": "missing",
        }
        tags = ((TAG_ROUTE, route.route_id), (TAG_UPSTREAM, upstream.name),
                (TAG_API, rest_api_id))
        alarms[name] = AlarmSpec(name=name, request=request, tags=tags)
    return alarms


def matches(spec: AlarmSpec, observed: Mapping[str, Any]) -> bool:
    """Whether the alarm ``DescribeAlarms`` returned is configured as ``spec`` says."""
    wanted = spec.request
    for key in _COMPARED:
        have, want = observed.get(key), wanted.get(key)
        if key == "Threshold":
            if have is None or float(have) != float(want):
                return False
        elif have != want:
            return False
    if any(observed.get(key) for key in _ACTION_LISTS):
        return False
    if observed.get("Metrics") or observed.get("ExtendedStatistic") or observed.get("Unit"):
        return False
    return _dimensions(observed.get("Dimensions")) == _dimensions(wanted.get("Dimensions"))


def plan_alarms(desired: Mapping[str, AlarmSpec],
                observed: Iterable[Mapping[str, Any]]) -> AlarmPlan:
    """Puts for what is missing or differs, deletes for what no upstream wants any more."""
    seen = {alarm["AlarmName"]: alarm for alarm in observed}
    puts = tuple(spec for name, spec in sorted(desired.items())
                 if name not in seen or not matches(spec, seen[name]))
    deletes = tuple(sorted(name for name in seen if name not in desired))
    return AlarmPlan(puts=puts, deletes=deletes)


def _dimensions(raw: object) -> list[tuple[str, str]]:
    if not isinstance(raw, list):
        return []
    return sorted((str(d.get("Name")), str(d.get("Value"))) for d in raw if isinstance(d, dict))
