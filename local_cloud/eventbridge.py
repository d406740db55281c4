"""EventBridge delivery to Step Functions and Lambda targets.

moto matches the event against the rule (its own ``EventPattern``) and hands each Step
Functions or Lambda target to :class:`EventTargetDispatcher` (see :mod:`local_cloud.patches`).
The dispatcher delivers from a pool of worker threads, because EventBridge is asynchronous
(``PutEvents`` returns before the targets run) and delivers to many targets at once: one slow
target (a Lambda function that runs for seconds) must not hold up the others, and the events of
a burst (every route's alarms changing together) reach their targets side by side, in no
guaranteed order, as on AWS.

- Step Functions: ``StartExecution`` with a deterministic name derived from the event id, the
  rule and the target, so a repeated delivery of the same event starts nothing new.
- Lambda: the function runs in this process through :class:`~local_cloud.functions.FunctionRuntime`.

The target's ``Input`` (a constant), ``InputPath`` and ``InputTransformer`` are applied as AWS
does; without them the target receives the whole event.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from local_cloud.clients import aws_client
from local_cloud.functions import FunctionError, FunctionRuntime
from local_cloud.patches import RuleRef

log = logging.getLogger(__name__)

_MAX_EXECUTION_NAME = 80


@dataclass(frozen=True)
class _Delivery:
    rule: RuleRef
    target: Mapping[str, Any]
    event: Mapping[str, Any]


def aws_event(moto_event: Mapping[str, Any]) -> dict[str, Any]:
    """The event as EventBridge delivers it (ISO time, no moto-internal fields)."""
    event = {key: value for key, value in moto_event.items() if key != "ingestion-time"}
    when = event.get("time")
    if isinstance(when, int | float):
        event["time"] = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif isinstance(when, datetime):
        event["time"] = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return event


def target_input(target: Mapping[str, Any], event: Mapping[str, Any]) -> Any:
    """What the target receives: ``Input``, ``InputPath``, ``InputTransformer`` or the event."""
    if target.get("Input") is not None:
        return json.loads(target["Input"])
    if target.get("InputPath"):
        from jsonpath_ng.ext import parse

        matches = [match.value for match in parse(target["InputPath"]).find(event)]
        return matches[0] if matches else None
    transformer = target.get("InputTransformer")
    if transformer:
        from moto.events.utils import EventTemplateParser

        context = dict(event)
        context.setdefault("ingestion-time", event.get("time", ""))
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=context,
        )
    return dict(event)


def execution_name(event_id: str, rule_arn: str, target_id: str) -> str:
    """A Step Functions execution name unique to (event, rule, target) and stable across retries."""
    digest = hashlib.sha256(f"{rule_arn}|{target_id}".encode()).hexdigest()[:12]
    return f"{event_id}-{digest}"[:_MAX_EXECUTION_NAME]


DEFAULT_WORKERS = 8
"""Deliveries made at once."""


class EventTargetDispatcher:
    """Delivers matched events to Step Functions and Lambda targets from ``workers`` threads.

    ``delivered`` counts the deliveries finished (made or failed) so far.
    """

    def __init__(self, endpoint_url: str, functions: FunctionRuntime, *,
                 region: str = "us-east-1", workers: int = DEFAULT_WORKERS) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._functions = functions
        self._stepfunctions = aws_client("stepfunctions", endpoint_url=endpoint_url,
                                         region=region, attempts=1)
        self._queue: queue.Queue[_Delivery | None] = queue.Queue()
        self._pending = 0
        self.delivered = 0
        self._pending_lock = threading.Condition()
        self._workers_wanted = workers
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        """Start the worker threads (idempotent)."""
        if not self._workers:
            self._workers = [
                threading.Thread(target=self._run, name=f"eventbridge-targets-{n}", daemon=True)
                for n in range(self._workers_wanted)
            ]
            for worker in self._workers:
                worker.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the queued deliveries (up to ``timeout`` in all) and stop (idempotent)."""
        workers, self._workers = self._workers, []
        for _ in workers:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))

    def deliver(self, rule: RuleRef, target: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        """Queue one event for one target; returns at once."""
        with self._pending_lock:
            self._pending += 1
        self._queue.put(_Delivery(rule, dict(target), aws_event(event)))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queued delivery was made; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._pending_lock:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._pending_lock.wait(remaining)
        return True

    def _run(self) -> None:
        while True:
            delivery = self._queue.get()
            if delivery is None:
                return
            try:
                self._send(delivery)
            except Exception:  # noqa: BLE001 - one bad target must not stop the others
                log.exception("delivery of event %s to %s failed", delivery.event.get("id"),
                              delivery.target.get("Arn"))
            finally:
                with self._pending_lock:
                    self._pending -= 1
                    self.delivered += 1
                    self._pending_lock.notify_all()

    def _send(self, delivery: _Delivery) -> None:
        target = delivery.target
        arn = target["Arn"]
        payload = target_input(target, delivery.event)
        service = arn.split(":")[2]
        if service == "states":
            name = execution_name(str(delivery.event.get("id")), delivery.rule.arn,
                                  str(target.get("Id")))
            try:
                self._stepfunctions.start_execution(
                    stateMachineArn=arn, name=name, input=json.dumps(payload)
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                    raise
        elif service == "lambda":
            try:
                self._functions.invoke(arn, payload)
            except FunctionError as error:
                log.warning("rule %s: Lambda target failed: %s", delivery.rule.name, error)
