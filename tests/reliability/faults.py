"""Fault scenarios on the local cloud run in this process (so botocore hooks reach its clients).

- :func:`run_crash` : the reconcile function dies half-way through batches (a ``BaseException``
  raised before chosen AWS writes, see :mod:`tests.reliability.fault_handlers`) while routes
  are created, changed and deleted; the event source mapping retries as Lambda does.
- :func:`run_state_table_outage`: every call of the reconcile function on the state table is
  answered 503 for a while, starting as a batch of routes is written.
- :func:`run_failover_outage`: the failover workflow's own DynamoDB calls on the state table
  fail while an alarm starts it; once the table is back, the next alarm switches.
- :func:`run_lock_expiry`: a failover execution is stopped (as StopExecution or the state
  machine's timeout would end it) after it took the route's lock, so its unlock step never
  runs; an alarm before the lock expires leaves the route alone, one after it switches.

Each returns what a user would look at: statuses, stage variables, API paths, the reconciler's
on-failure queue, executions and audit items, plus the timings and counts for the benchmark.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from control_plane.model.item import from_item, to_item
from control_plane.plan.apigateway import stage_variable_name
from local_cloud import patches
from local_cloud.emulator import Emulator
from local_cloud.runtime import LocalCloud
from tests.functional.failover_stack import FailoverStack, failover_stack, interpreter_events
from tests.reliability import fault_handlers
from tests.reliability.fault_handlers import FAULTS, state_table_down, unavailable

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "cloudformation" / "turnout.yaml"


# ---- the whole stack in this process ------------------------------------------------------


class LocalStack:
    """``cloudformation/turnout.yaml`` deployed on the test's AWS endpoint and running here."""

    def __init__(self, aws, cloud: LocalCloud) -> None:
        self.aws = aws
        self.cloud = cloud
        self.outputs = cloud.outputs
        self.ddb = aws.client("dynamodb")
        self.apigw = aws.client("apigateway")

    def use_fault_handler(self) -> None:
        """Point the reconcile function at the handler with fault hooks."""
        self.aws.client("lambda").update_function_configuration(
            FunctionName=self.outputs["ReconcileFunctionName"], Handler=fault_handlers.HANDLER)
        time.sleep(1.2)  # the runtime re-reads a function's configuration once a second

    def put(self, doc: dict) -> None:
        self.ddb.put_item(TableName=self.outputs["RoutesTableName"], Item=to_item(doc))

    def delete(self, route_id: str) -> None:
        self.ddb.delete_item(TableName=self.outputs["RoutesTableName"],
                             Key={"route_id": {"S": route_id}})

    def statuses(self) -> dict[str, dict]:
        items = []
        for page in self.ddb.get_paginator("scan").paginate(
                TableName=self.outputs["StateTableName"], ConsistentRead=True):
            items.extend(page["Items"])
        return {i["route_id"]["S"]: from_item(i) for i in items if i["kind"]["S"] == "status"}

    def stage_variables(self) -> dict[str, str]:
        try:
            return self.apigw.get_stage(restApiId=self.outputs["RestApiId"],
                                        stageName=self.outputs["StageName"]).get("variables", {})
        except self.apigw.exceptions.NotFoundException:
            return {}

    def api_paths(self) -> set[str]:
        items = self.apigw.get_resources(restApiId=self.outputs["RestApiId"], limit=500)["items"]
        return {r["path"] for r in items}

    def failure_queue_messages(self) -> int:
        attributes = self.aws.client("sqs").get_queue_attributes(
            QueueUrl=self.outputs["ReconcileFailureQueueUrl"], AttributeNames=["All"])["Attributes"]
        return (int(attributes["ApproximateNumberOfMessages"])
                + int(attributes["ApproximateNumberOfMessagesNotVisible"]))

    def resync(self) -> dict:
        """Invoke the reconcile function as its schedule does; its summary."""
        return self.cloud.functions.invoke(self.outputs["ReconcileFunctionName"],
                                           {"action": "resync"})

    def wait_until(self, predicate, *, timeout: float) -> bool:
        """True once ``predicate()`` holds; False when ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.5)
        return False


@contextmanager
def local_stack(aws) -> Iterator[LocalStack]:
    Emulator.attach(aws.url)
    patches.apply_patches()
    cloud = LocalCloud(template_path=TEMPLATE, emulator_url=aws.url, source_root=ROOT,
                       allow_loopback_upstreams=True,
                       function_environment={"TURNOUT_APIGW_RATE_PER_SECOND": "200",
                                             "TURNOUT_APIGW_BURST": "800"})
    FAULTS.reset()
    try:
        with cloud:
            yield LocalStack(aws, cloud)
    finally:
        FAULTS.reset()


def route(route_id: str, host: str) -> dict:
    return {"route_id": route_id, "path": f"/{route_id}/{{proxy+}}", "methods": ["GET"],
            "upstreams": [{"name": "main", "url": f"https://{host}", "priority": 0}]}


@dataclass
class Convergence:
    """The world after a fault, against what the routes written ask for."""

    expected_hosts: dict[str, str]
    deleted: set[str]
    statuses: dict[str, dict]
    variables: dict[str, str]
    paths: set[str]
    failure_queue_messages: int
    resync_writes: int
    seconds: float
    crashes: int = 0
    refused_calls: int = 0

    def wrong(self) -> list[str]:
        """Every way the world differs from the routes written (empty: converged)."""
        problems = []
        for route_id, host in self.expected_hosts.items():
            status = self.statuses.get(route_id, {})
            if status.get("phase") != "READY":
                problems.append(f"{route_id} is {status.get('phase')}")
            if self.variables.get(stage_variable_name(route_id)) != host:
                problems.append(f"{route_id} serves {self.variables.get(stage_variable_name(route_id))}")
            if f"/{route_id}/{{proxy+}}" not in self.paths:
                problems.append(f"{route_id} has no resource")
        for route_id in self.deleted:  # a route deleted before it was ever reconciled has no status
            if self.statuses.get(route_id, {}).get("phase", "DELETED") != "DELETED":
                problems.append(f"{route_id} is {self.statuses[route_id].get('phase')}")
            if any(p.startswith(f"/{route_id}") for p in self.paths):
                problems.append(f"{route_id} still has resources")
            if stage_variable_name(route_id) in self.variables:
                problems.append(f"{route_id} still has a stage variable")
        return problems


def _converged(stack: LocalStack, expected: dict[str, str], deleted: set[str]) -> bool:
    statuses = stack.statuses()
    variables = stack.stage_variables()
    ready = all(statuses.get(r, {}).get("phase") == "READY"
                and variables.get(stage_variable_name(r)) == h for r, h in expected.items())
    gone = all(statuses.get(r, {}).get("phase", "DELETED") == "DELETED"
               and stage_variable_name(r) not in variables for r in deleted)
    return ready and gone


def _observe(stack: LocalStack, expected: dict[str, str], deleted: set[str],
             started: float) -> Convergence:
    seconds = time.monotonic() - started
    stack.cloud.wait_idle(30)
    return Convergence(
        expected_hosts=expected, deleted=deleted, statuses=stack.statuses(),
        variables=stack.stage_variables(), paths=stack.api_paths(),
        failure_queue_messages=stack.failure_queue_messages(),
        resync_writes=int(stack.resync().get("writes", -1)), seconds=seconds,
        crashes=FAULTS.crashes, refused_calls=FAULTS.refused_calls,
    )


CRASH_POINTS = (2, 9, 23, 41, 70, 104)
CONVERGE_SECONDS = 300.0


def run_crash(aws, *, routes: int = 30, crash_before_writes=CRASH_POINTS) -> Convergence:
    """Routes created, changed and deleted while the reconcile function keeps dying."""
    with local_stack(aws) as stack:
        stack.use_fault_handler()
        FAULTS.crash_before_writes = set(crash_before_writes)
        started = time.monotonic()
        expected = {}
        for i in range(routes):
            stack.put(route(f"crash-{i:02d}", f"c{i}.example.com"))
            expected[f"crash-{i:02d}"] = f"c{i}.example.com"
        time.sleep(1.5)  # a first batch is under way
        for i in range(0, routes // 3):
            stack.put(route(f"crash-{i:02d}", f"c{i}-v2.example.com"))
            expected[f"crash-{i:02d}"] = f"c{i}-v2.example.com"
        deleted = {f"crash-{i:02d}" for i in range(routes - 5, routes)}
        for route_id in deleted:
            stack.delete(route_id)
            expected.pop(route_id)
        stack.wait_until(lambda: _converged(stack, expected, deleted), timeout=CONVERGE_SECONDS)
        FAULTS.crash_before_writes = set()
        return _observe(stack, expected, deleted, started)


def run_state_table_outage(aws, *, routes: int = 20, outage_seconds: float = 10.0
                           ) -> tuple[Convergence, float]:
    """Routes written as the state table becomes unavailable to the reconcile function for
    ``outage_seconds``; also the seconds from the table's return to convergence."""
    with local_stack(aws) as stack:
        stack.use_fault_handler()
        FAULTS.state_table = stack.outputs["StateTableName"]
        started = time.monotonic()
        FAULTS.state_table_down_until = started + outage_seconds
        expected = {}
        for i in range(routes):
            stack.put(route(f"outage-{i:02d}", f"o{i}.example.com"))
            expected[f"outage-{i:02d}"] = f"o{i}.example.com"
        stack.wait_until(lambda: _converged(stack, expected, set()), timeout=CONVERGE_SECONDS)
        after_outage = time.monotonic() - FAULTS.state_table_down_until
        return _observe(stack, expected, set(), started), after_outage


# ---- failover under faults (the failover part of the stack, moto's interpreter) -----------


def failover_route(route_id: str) -> dict:
    return {
        "route_id": route_id, "path": f"/{route_id}/{{proxy+}}", "methods": ["GET"],
        "upstreams": [{"name": "primary", "url": f"https://{route_id}-a.example", "priority": 0},
                      {"name": "backup", "url": f"https://{route_id}-b.example", "priority": 1}],
        "health_check": {"interval_seconds": 1, "timeout_ms": 500, "unhealthy_threshold": 2,
                         "healthy_threshold": 2},
        "failover": {"min_hold_seconds": 0},
    }


def _from_interpreter(request) -> bool:
    return request.url.startswith("http://localhost:")


@dataclass
class FailoverFaultReport:
    route_id: str
    executions: list[dict] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    audit: list[dict] = field(default_factory=list)
    variable: str | None = None
    record: dict | None = None
    notes: dict = field(default_factory=dict)


def _alarm_time(offset_seconds: int) -> str:
    return datetime.fromtimestamp(time.time() + offset_seconds, UTC).isoformat(
        timespec="milliseconds")


def _report(stack: FailoverStack, route_id: str, **notes) -> FailoverFaultReport:
    return FailoverFaultReport(
        route_id=route_id, executions=stack.wait_for_executions(route_id, timeout=120),
        events=[e["detail-type"] for e in stack.events() if e["detail"].get("route_id") == route_id],
        audit=stack.audit(route_id), variable=stack.stage_variables().get(route_id),
        record=stack.item(route_id, "failover"), notes=notes)


def run_failover_outage(aws, tmp_path: Path, *, outage_seconds: float = 15.0
                        ) -> tuple[FailoverFaultReport, FailoverFaultReport]:
    """An alarm while the workflow cannot reach the state table, then one after it is back."""
    refused = {"n": 0}
    until = {"t": 0.0}

    def outage(request, **kwargs):
        if time.monotonic() < until["t"] and _from_interpreter(request) and state_table_down(
                request, table["name"]):
            refused["n"] += 1
            return unavailable(request)
        return None

    table = {"name": ""}
    events = interpreter_events("dynamodb", aws.region)
    with failover_stack(aws, tmp_path) as stack:
        table["name"] = stack.state_table
        stack.serve(failover_route("outage"))
        stack.set_health("outage", "primary", False, failures=2)
        stack.set_health("outage", "backup", True, successes=5)
        events.register("before-send.dynamodb", outage)
        try:
            until["t"] = time.monotonic() + outage_seconds
            stack.alarm("outage", "primary", "ALARM", timestamp=_alarm_time(0))
            during = _report(stack, "outage", refused_calls=0)
            during.notes["refused_calls"] = refused["n"]
            time.sleep(max(0.0, until["t"] - time.monotonic()))
            stack.alarm("outage", "primary", "ALARM", timestamp=_alarm_time(1))
            after = _report(stack, "outage")
        finally:
            events.unregister("before-send.dynamodb", outage)
    return during, after


def run_lock_expiry(aws, tmp_path: Path) -> tuple[FailoverFaultReport, FailoverFaultReport,
                                                   FailoverFaultReport]:
    """A failover execution stopped after it took the lock; an alarm before the lock expires
    and one after it."""
    from control_plane.handlers.failover import LOCK_SECONDS

    held = threading.Event()
    release = threading.Event()
    blocked = {"n": 0}

    def hold_decide(params, **kwargs):
        try:
            event = json.loads(params.get("body") or b"{}")
        except ValueError:
            return
        decides = event.get("task") == "decide" and (event.get("state") or {}).get(
            "route_id") == "locked"
        if decides and blocked["n"] == 0:
            blocked["n"] += 1
            held.set()
            release.wait(60)

    events = interpreter_events("lambda", aws.region)
    with failover_stack(aws, tmp_path) as stack:
        stack.serve(failover_route("locked"))
        stack.set_health("locked", "primary", False, failures=2)
        stack.set_health("locked", "backup", True, successes=5)
        events.register("before-call.lambda.Invoke", hold_decide)
        try:
            stack.alarm("locked", "primary", "ALARM", timestamp=_alarm_time(0))
            assert held.wait(60), "the execution never reached Decide"
            [running] = stack.running("locked")
            stack.sfn.stop_execution(executionArn=running["executionArn"], error="Crashed",
                                     cause="the execution died holding the lock")
        finally:
            release.set()
            events.unregister("before-call.lambda.Invoke", hold_decide)
        crashed = _report(stack, "locked")
        lock_expires_at = float(crashed.record["lock_expires_at"])
        crashed.notes.update(lock_seconds=LOCK_SECONDS, lock_owner=crashed.record.get("lock_owner"),
                             stopped=running["executionArn"])
        stack.alarm("locked", "primary", "ALARM", timestamp=_alarm_time(1))
        before_expiry = _report(stack, "locked")
        before_expiry.notes["seconds_left"] = lock_expires_at - time.time()
        time.sleep(max(0.0, lock_expires_at - time.time() + 1.5))
        started = time.monotonic()
        stack.alarm("locked", "primary", "ALARM", timestamp=_alarm_time(2))
        after_expiry = _report(stack, "locked")
        after_expiry.notes["switch_seconds"] = time.monotonic() - started
    return crashed, before_expiry, after_expiry


def execution_statuses(report: FailoverFaultReport) -> list[str]:
    return [e["status"] for e in sorted(report.executions, key=lambda e: e["startDate"])]
