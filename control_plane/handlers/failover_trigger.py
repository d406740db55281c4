"""Lambda target of the failover rules: starts the workflow once per health change.

Two signals say an upstream's health changed, and both reach this function:

- CloudWatch's ``CloudWatch Alarm State Change`` for the upstream's alarm (default bus), the
  durable signal DESIGN 4C/4D describe (``ALARM`` and ``OK``; ``INSUFFICIENT_DATA`` is ignored);
- the prober's own ``Upstream Health Changed`` (turnout's bus), published when its verdict
  flips, before the alarm's period has ended: it makes failover about one alarm period faster,
  and failback independent of when the alarm gets round to ``OK``.

EventBridge delivers each event at least once, and a rule that starts a state machine itself
does so under a random execution name, so a repeated delivery would start a second workflow.
This function starts it under a name made of the change (alarm or upstream, new state, time of
the change): Standard workflows refuse a second execution of the same name (for 90 days), so
one change is one execution however often it is delivered. Distinct changes arriving together
(the alarm and the prober's event for the same flip, or many flips) are serialised by the
workflow's per-route lock, and each decides from the current health, so the second finds
nothing left to do. The input is the workflow's state document, clock included, so the first
step is the lock itself.

An alarm names its route and upstream in its tags (``turnout:route-id``, ``turnout:upstream``,
see :mod:`control_plane.plan.alarms`) and in its name (``turnout-<route_id>.<upstream>``, see
:mod:`control_plane.model.health_signals`), which is used when the tags cannot be read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from control_plane.adapters.aws_errors import error_code, translate
from control_plane.handlers.failover import initial_state
from control_plane.handlers.warm import Warm
from control_plane.model.health_signals import parse_alarm_name
from control_plane.plan.alarms import TAG_ROUTE, TAG_UPSTREAM
from control_plane.settings import environ

logger = Logger(service="turnout-failover-trigger")

ALARM_STATES = ("ALARM", "OK")
HEALTH_CHANGED = "Upstream Health Changed"
_NAME_LIMIT = 80
_RETRIES = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5,
                  read_timeout=20)


@dataclass(frozen=True)
class Change:
    """One health change of an upstream: an alarm's new state, or the prober's new verdict."""

    source: str  # "alarm" | "health"
    state: str  # ALARM | OK (alarm), UNHEALTHY | HEALTHY (health)
    time: str | None
    note: str | None = None
    alarm_name: str | None = None
    alarm_arn: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    route_id: str | None = None
    upstream: str | None = None

    @property
    def label(self) -> str:
        """The word the execution name carries: alarm, ok, down or up."""
        return {"ALARM": "alarm", "OK": "ok", "UNHEALTHY": "down", "HEALTHY": "up"}.get(
            self.state, self.state.lower())

    @classmethod
    def from_event(cls, event: object) -> Change | None:
        """The change an EventBridge event announces; None for any other event."""
        if not isinstance(event, dict) or not isinstance(event.get("detail"), dict):
            return None
        detail = event["detail"]
        if event.get("source") == "turnout" and event.get("detail-type") == HEALTH_CHANGED:
            if not (detail.get("route_id") and detail.get("upstream")
                    and isinstance(detail.get("healthy"), bool)):
                return None
            return cls(source="health", state="HEALTHY" if detail["healthy"] else "UNHEALTHY",
                       time=detail.get("time") or event.get("time"),
                       note=(str(detail["message"])[:500] if detail.get("message") else None),
                       route_id=str(detail["route_id"]), upstream=str(detail["upstream"]))
        if not detail.get("alarmName"):
            return None
        state = detail.get("state") or {}
        resources = event.get("resources") or []
        tags = detail.get("alarmTags") if isinstance(detail.get("alarmTags"), dict) else {}
        return cls(
            source="alarm", state=str(state.get("value") or ""),
            time=state.get("timestamp") or event.get("time"),
            note=(str(state["reason"])[:500] if state.get("reason") else None),
            alarm_name=str(detail["alarmName"]),
            alarm_arn=str(resources[0]) if resources else None,
            tags={str(k): str(v) for k, v in tags.items()},
        )


def execution_name(route_id: str, change: Change) -> str:
    """``<route>-<alarm|ok|down|up>-<digest>``: one change always gives the same name."""
    subject = change.alarm_name or f"{route_id}.{change.upstream}"
    digest = hashlib.sha256(
        f"{change.source}|{subject}|{change.state}|{change.time}".encode()).hexdigest()[:24]
    return f"{route_id[:40]}-{change.label}-{digest}"[:_NAME_LIMIT]


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN Step Functions gives the execution ``name`` of ``state_machine_arn``."""
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"


def workflow_input(route_id: str, upstream: str, change: Change, arn: str,
                   now: datetime) -> dict:
    """The workflow's state document, ready for its lock (no ``begin`` step needed)."""
    trigger = {"type": change.source, "upstream": upstream, "state": change.state,
               "alarm_name": change.alarm_name, "time": change.time, "note": change.note}
    return initial_state(route_id, trigger, arn, now)


class Starter:
    def __init__(self, *, stepfunctions, cloudwatch, state_machine_arn: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.stepfunctions = stepfunctions
        self.cloudwatch = cloudwatch
        self.state_machine_arn = state_machine_arn
        self.clock = clock

    def start(self, event: dict) -> dict:
        change = Change.from_event(event)
        if change is None:
            return {"started": False, "reason": "NotAHealthChange"}
        if change.source == "alarm" and change.state not in ALARM_STATES:
            return {"started": False, "reason": "IgnoredState"}
        target = self.route_of(change)
        if target is None:
            logger.info("alarm names no route", extra={"alarm": change.alarm_name})
            return {"started": False, "reason": "NoRoute"}
        route_id, upstream = target
        name = execution_name(route_id, change)
        document = workflow_input(route_id, upstream, change,
                                  execution_arn(self.state_machine_arn, name), self.clock())
        try:
            arn = self.stepfunctions.start_execution(
                stateMachineArn=self.state_machine_arn, name=name,
                input=json.dumps(document, sort_keys=True),
            )["executionArn"]
        except ClientError as exc:
            if error_code(exc) == "ExecutionAlreadyExists":
                logger.info("duplicate delivery", extra={"execution": name})
                return {"started": False, "reason": "Duplicate", "name": name}
            raise translate(exc, action="StartExecution") from exc
        except BotoCoreError as exc:
            raise translate(exc, action="StartExecution") from exc
        logger.info("workflow started", extra={"route_id": route_id, "upstream": upstream,
                                               "state": change.state, "execution": arn})
        return {"started": True, "execution_arn": arn, "name": name}

    def route_of(self, change: Change) -> tuple[str, str] | None:
        if change.route_id and change.upstream:
            return change.route_id, change.upstream
        tags = change.tags or self._tags(change.alarm_arn)
        if tags.get(TAG_ROUTE) and tags.get(TAG_UPSTREAM):
            return tags[TAG_ROUTE], tags[TAG_UPSTREAM]
        return parse_alarm_name(change.alarm_name or "")

    def _tags(self, alarm_arn: str | None) -> dict[str, str]:
        if not alarm_arn:
            return {}
        try:
            raw = self.cloudwatch.list_tags_for_resource(ResourceARN=alarm_arn)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return {}
            raise translate(exc, action="ListTagsForResource") from exc
        except BotoCoreError as exc:
            raise translate(exc, action="ListTagsForResource") from exc
        return {t["Key"]: t["Value"] for t in raw.get("Tags", [])}


def default_starter() -> Starter:
    session = boto3.Session()
    return Starter(
        stepfunctions=session.client("stepfunctions", config=_RETRIES),
        cloudwatch=session.client("cloudwatch", config=_RETRIES),
        state_machine_arn=environ().get("FAILOVER_STATE_MACHINE_ARN", ""),
    )


def make_handler(starter: Callable[[], Starter]) -> Callable[[dict, Any], dict]:
    current = Warm(starter, key=lambda: (environ().get("FAILOVER_STATE_MACHINE_ARN"),
                                         environ().get("AWS_ENDPOINT_URL")))

    def handler(event: dict, context: Any) -> dict:
        return current.get().start(event)

    return handler


handler = make_handler(default_starter)
