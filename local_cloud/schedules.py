"""Scheduled EventBridge rules, fired (moto stores ``ScheduleExpression`` but never fires it).

:class:`ScheduleRunner` re-reads the default bus's rules every second (rules come and go with
stack updates and the CLI), and fires each ``ENABLED`` rule that has a ``ScheduleExpression``
(:mod:`local_cloud.schedule_expressions`): a ``rate(...)`` rule first fires one second after it
is first seen (``turnout up`` should not wait a whole period before the prober's first run),
then every period; a ``cron(...)`` rule at its times (UTC). Firing sends AWS's scheduled event
to every target of the rule::

    {"version": "0", "id": <uuid>, "detail-type": "Scheduled Event", "source": "aws.events",
     "account": <account>, "time": <scheduled time>, "region": <region>,
     "resources": [<rule arn>], "detail": {}}

with the target's ``Input`` / ``InputPath`` / ``InputTransformer`` applied, as EventBridge does.
Lambda targets are invoked asynchronously (``InvocationType=Event``, as EventBridge invokes
Lambda), so a function that runs for a minute, like the prober, holds up nothing; Step
Functions targets go through the :class:`~local_cloud.eventbridge.EventTargetDispatcher`; SQS
targets get the message. Other target types are reported once and skipped.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local_cloud.background import BackgroundRunner
from local_cloud.clients import aws_client
from local_cloud.eventbridge import target_input
from local_cloud.patches import RuleRef
from local_cloud.schedule_expressions import (
    RateSchedule,
    Schedule,
    UnsupportedSchedule,
    parse_schedule,
)

log = logging.getLogger(__name__)

FIRST_RATE_DELAY_SECONDS = 1.0
POLL_INTERVAL_SECONDS = 1.0


@dataclass
class _Scheduled:
    name: str
    arn: str
    expression: str
    schedule: Schedule
    next_time: datetime


def scheduled_event(rule_arn: str, at: datetime) -> dict[str, Any]:
    """The event EventBridge sends when a scheduled rule fires at ``at``."""
    parts = rule_arn.split(":")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": parts[4],
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": parts[3],
        "resources": [rule_arn],
        "detail": {},
    }


class ScheduleRunner(BackgroundRunner):
    """Fires the default bus's scheduled rules from a background thread."""

    thread_name = "eventbridge-schedules"
    what = "scheduled rules"

    def __init__(self, endpoint_url: str, dispatcher, *, region: str = "us-east-1",
                 first_rate_delay_seconds: float = FIRST_RATE_DELAY_SECONDS,
                 poll_interval_seconds: float = POLL_INTERVAL_SECONDS,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._dispatcher = dispatcher
        self._events = aws_client("events", endpoint_url=endpoint_url, region=region)
        self._lambda = aws_client("lambda", endpoint_url=endpoint_url, region=region)
        self._sqs = aws_client("sqs", endpoint_url=endpoint_url, region=region)
        self._first_delay = timedelta(seconds=first_rate_delay_seconds)
        self._poll = poll_interval_seconds
        self._now = now
        self._rules: dict[str, _Scheduled] = {}
        self._reported: set[str] = set()
        self._init_background()
        self.fired = 0

    def step(self) -> None:
        self.tick()

    def _wait_seconds(self) -> float:
        if not self._rules:
            return self._poll
        soonest = min(r.next_time for r in self._rules.values())
        return max(0.0, min(self._poll, (soonest - self._now()).total_seconds()))

    def tick(self) -> int:
        """Read the rules and fire the ones that are due; returns how many fired."""
        now = self._now()
        self._refresh(now)
        fired = 0
        for scheduled in list(self._rules.values()):
            if scheduled.next_time <= now:
                at = scheduled.next_time
                scheduled.next_time = self._advance(scheduled, now)
                self.fire(scheduled.name, scheduled.arn, at)
                fired += 1
        return fired

    def fire(self, rule_name: str, rule_arn: str, at: datetime) -> None:
        """Send the scheduled event of ``rule_name`` to each of its targets."""
        event = scheduled_event(rule_arn, at)
        targets = self._events.list_targets_by_rule(Rule=rule_name).get("Targets", [])
        for target in targets:
            try:
                self._deliver(rule_name, rule_arn, target, event)
            except (ClientError, BotoCoreError) as exc:
                log.warning("rule %s: delivery to %s failed: %s", rule_name, target.get("Arn"), exc)
        self.fired += 1

    def _deliver(self, rule_name: str, rule_arn: str, target: Mapping[str, Any],
                 event: dict[str, Any]) -> None:
        arn = str(target["Arn"])
        service = arn.split(":")[2]
        if service == "lambda":
            self._lambda.invoke(FunctionName=arn, InvocationType="Event",
                                Payload=json.dumps(target_input(target, event)).encode())
        elif service == "states":
            self._dispatcher.deliver(RuleRef(name=rule_name, arn=rule_arn,
                                             event_bus_name="default"), target, event)
        elif service == "sqs":
            queue_url = self._sqs.get_queue_url(QueueName=arn.split(":")[5])["QueueUrl"]
            self._sqs.send_message(QueueUrl=queue_url,
                                   MessageBody=json.dumps(target_input(target, event)))
        elif arn not in self._reported:
            self._reported.add(arn)
            log.warning("rule %s: scheduled delivery to %s targets is not emulated locally",
                        rule_name, service)

    def _refresh(self, now: datetime) -> None:
        seen: dict[str, Mapping[str, Any]] = {}
        paginator = self._events.get_paginator("list_rules")
        for page in paginator.paginate(EventBusName="default"):
            for rule in page.get("Rules", []):
                if rule.get("ScheduleExpression") and rule.get("State") == "ENABLED":
                    seen[rule["Arn"]] = rule
        for arn in list(self._rules):
            if arn not in seen:
                del self._rules[arn]
        for arn, rule in seen.items():
            known = self._rules.get(arn)
            expression = rule["ScheduleExpression"]
            if known is not None and known.expression == expression:
                continue
            try:
                schedule = parse_schedule(expression)
            except UnsupportedSchedule as exc:
                if arn not in self._reported:
                    self._reported.add(arn)
                    log.warning("rule %s will not fire locally: %s", rule["Name"], exc)
                continue
            first = (now + self._first_delay if isinstance(schedule, RateSchedule)
                     else schedule.next_after(now))
            self._rules[arn] = _Scheduled(rule["Name"], arn, expression, schedule, first)

    @staticmethod
    def _advance(scheduled: _Scheduled, now: datetime) -> datetime:
        """The next firing after ``now`` (a runner that fell behind does not fire in a burst)."""
        following = scheduled.schedule.next_after(scheduled.next_time)
        while following <= now:
            following = scheduled.schedule.next_after(following)
        return following
