"""Lambda tasks of the failover workflow (``cloudformation/failover.asl.json``).

The state machine calls this one function with ``{"task": ..., ...}``:

- ``begin``: turn the input (a manual trigger from ``turnout failover``, or a later pass after
  a wait) into the workflow's state document, with the clock read for the lock. The trigger
  function starts alarm executions with that document already made (:func:`initial_state`).
- ``decide``: read the route, its status, health and failover record, and return what
  :func:`control_plane.plan.failover.decide` says, with the event details to publish.
- ``switch``: record the switch (status + failover record, one transaction fenced on the
  lock), move the traffic (stage variable / listener weights; ``proxy`` routes read the
  status), and return the audit item and the completion event.

The lock, the audit item and the events are native Step Functions tasks; only what needs code
is here. Errors: :class:`~control_plane.errors.TransientError` (retried by the state machine)
and :class:`~control_plane.errors.PermanentError` (the workflow announces ``Failover Failed``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config

from control_plane.adapters.elb import ElbAdapter
from control_plane.adapters.failover_store import FailoverStore, RouteState, Switch
from control_plane.adapters.traffic_switch import ListenerWeights, StageVariables
from control_plane.errors import GatewayError, InvalidRouteError, PermanentError, TransientError
from control_plane.handlers.warm import Warm
from control_plane.model.failover import AuditEntry, completed_event, iso
from control_plane.model.item import to_item
from control_plane.model.route import NAME_PATTERN, Route
from control_plane.model.status import Phase
from control_plane.model.validation import validate_route
from control_plane.plan import failover as plan
from control_plane.plan.apigateway import split_upstream_url, stage_variable_name, upstream_active_url
from control_plane.settings import Settings

logger = Logger(service="turnout-failover")

LOCK_SECONDS = 120
_RETRIES = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5,
                  read_timeout=20)
_ROUTE_ID = re.compile(NAME_PATTERN)
TRIGGER_FIELDS = ("type", "upstream", "state", "alarm_name", "time", "target", "force",
                  "requested_by", "note")


@dataclass
class Tasks:
    settings: Settings
    store: FailoverStore
    stage: StageVariables
    weights: ListenerWeights
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    # ---- begin -----------------------------------------------------------------------

    def begin(self, event: dict) -> dict:
        raw = event.get("input") or {}
        route_id = raw.get("route_id")
        if not isinstance(route_id, str) or not _ROUTE_ID.match(route_id):
            raise PermanentError(f"the workflow's input names no valid route_id: {route_id!r}",
                                 reason="InvalidInput")
        state = initial_state(route_id, raw.get("trigger"), str(event.get("execution_arn") or ""),
                              self.clock())
        if raw.get("decision"):  # a later pass: keep what was decided and counted so far
            state["decision"] = raw["decision"]
            state["attempts"] = {"n": int((raw.get("attempts") or {}).get("n", 0))}
        return state

    # ---- decide ----------------------------------------------------------------------

    def decide(self, state: dict) -> dict:
        route_id = state["route_id"]
        trigger = state["trigger"]
        checks = int(state.get("decision", {}).get("checks", 0)) + 1
        now = self.clock()
        doc = self.store.route_document(route_id)
        observed = self.store.route_state(route_id)
        route: Route | None = None
        if doc is None:
            decision = plan.Decision(plan.Action.NONE, "RouteDeleted",
                                     f"route '{route_id}' no longer exists")
        else:
            try:
                route = validate_route(doc, allow_loopback=self.settings.allow_loopback_upstreams)
            except InvalidRouteError as exc:
                decision = plan.Decision(plan.Action.NONE, "RouteInvalid",
                                         f"route '{route_id}' is invalid ({exc.reason}); "
                                         "only a valid route is switched")
            else:
                decision = self._decide(route, observed, trigger, now, checks)
        out = decision_output(decision, checks=checks, time=iso(now))
        if route is not None:
            out["spec_hash"] = route.spec_hash()
            out["mode"] = mode_of(route)
        out["who"] = who(trigger)
        out["detail"] = self._detail(state, out, route, observed)
        logger.info("decided", extra={"route_id": route_id, "action": out["action"],
                                      "reason": out["reason"], "checks": checks})
        return out

    def _decide(self, route: Route, observed: RouteState, trigger: dict, now: datetime,
                checks: int) -> plan.Decision:
        status = observed.status
        if status is not None and status.phase not in (Phase.READY, Phase.PENDING):
            return plan.Decision(plan.Action.NONE, "RouteNotReady",
                                 f"route '{route.route_id}' is {status.phase.value}; only a "
                                 "READY route is switched")
        if status is None or status.observed_spec_hash != route.spec_hash():
            return plan.await_reconcile(route.route_id, checks)
        return plan.decide(route, status.active_upstream, observed.health, observed.record,
                           trigger_of(trigger), now, checks=checks)

    def _detail(self, state: dict, out: dict, route: Route | None,
                observed: RouteState) -> dict | None:
        common = {
            "route_id": state["route_id"], "spec_hash": out["spec_hash"],
            "reason": out["reason"], "message": out["message"],
            "trigger": state["trigger"], "execution_arn": state["execution_arn"],
            "time": out["time"],
        }
        if out["action"] == plan.Action.SWITCH:
            return {**common, "kind": out["kind"], "from_upstream": out["from"],
                    "to_upstream": out["to"]}
        if out["action"] == plan.Action.FAIL_STATIC and route is not None:
            upstreams = []
            for upstream in route.upstreams_by_priority():
                health = plan.health_of(observed.health, upstream.name)
                upstreams.append({"name": upstream.name, "priority": upstream.priority,
                                  "healthy": health.healthy,
                                  "consecutive_failures": health.consecutive_failures,
                                  "last_probe_time": health.last_probe_time})
            return {**common, "active_upstream": out["from"], "upstreams": upstreams}
        return None

    # ---- switch ----------------------------------------------------------------------

    def switch(self, state: dict) -> dict:
        decision = state["decision"]
        route_id = state["route_id"]
        execution_arn = state["execution_arn"]
        doc = self.store.route_document(route_id)
        route = self._same_route(route_id, doc, decision["spec_hash"])
        target = next(u for u in route.upstreams if u.name == decision["to"])
        observed = self.store.route_state(route_id)
        record = observed.record_item
        status = observed.status
        changed = ["status.active_upstream"]
        if (record.get("last_execution_arn") == execution_arn and status is not None
                and status.active_upstream == target.name):
            time = str(record.get("last_switch_time"))  # a retry: the switch is recorded
        else:
            time = iso(self.clock())
            self.store.record_switch(Switch(
                route_id=route_id, owner=state["lock"]["owner"], spec_hash=decision["spec_hash"],
                from_upstream=decision["from"],
                expected_active=status.active_upstream if status else None,
                to_upstream=target.name, active_url=upstream_active_url(target),
                message=moved_message(status.message if status else None, decision["from"],
                                      target.name),
                time=time, kind=decision["kind"], execution_arn=execution_arn,
            ))
        mode = mode_of(route)
        if mode == "direct":
            variable = stage_variable_name(route_id)
            if self.stage.set(variable, split_upstream_url(target.url)[1]):
                changed.append(f"stage variable {variable}")
        elif mode == "targets":
            if self.weights.set_active(route, target.priority):
                changed.append("listener rule weights")
        trigger = state["trigger"]
        audit = AuditEntry(
            route_id=route_id, time=time, kind=decision["kind"],
            from_upstream=decision["from"], to_upstream=target.name,
            reason=decision["reason"], why=decision["message"], who=decision["who"],
            execution_arn=execution_arn, spec_hash=decision["spec_hash"], mode=mode,
            trigger_alarm=trigger.get("alarm_name"), changed=tuple(changed),
        )
        logger.info("switched", extra={"route_id": route_id, "from": decision["from"],
                                       "to": target.name, "changed": changed})
        return {
            "time": time,
            "audit_item": to_item(audit.to_item()),
            "completed_event": completed_event(decision["kind"]),
            "detail": {
                "route_id": route_id, "spec_hash": decision["spec_hash"],
                "kind": decision["kind"], "from_upstream": decision["from"],
                "to_upstream": target.name, "mode": mode, "reason": decision["reason"],
                "message": decision["message"], "trigger": trigger,
                "execution_arn": execution_arn, "time": time,
            },
        }

    def _same_route(self, route_id: str, doc: dict | None, spec_hash: str) -> Route:
        route = None
        if doc is not None:
            try:
                route = validate_route(doc, allow_loopback=self.settings.allow_loopback_upstreams)
            except InvalidRouteError:
                route = None
        if route is None or route.spec_hash() != spec_hash:
            raise PermanentError(f"route '{route_id}' changed after the decision; nothing was "
                                 "switched (the next alarm or health change decides again)",
                                 reason="RouteChanged")
        return route


# ---- pure helpers ------------------------------------------------------------------------


def initial_state(route_id: str, trigger: object, execution_arn: str, now: datetime) -> dict:
    """The state document the workflow carries from step to step (all paths present)."""
    epoch = int(now.timestamp())
    return {
        "route_id": route_id,
        "execution_arn": execution_arn,
        "trigger": normalise_trigger(trigger),
        "lock": {"owner": execution_arn, "now": str(epoch),
                 "expires_at": str(epoch + LOCK_SECONDS)},
        "decision": initial_decision(),
        "attempts": {"n": 0},
    }


def normalise_trigger(raw: object) -> dict:
    """Every trigger field present (null when unknown), so the state machine's paths resolve."""
    trigger = {name: None for name in TRIGGER_FIELDS}
    if isinstance(raw, dict):
        trigger.update({k: raw[k] for k in TRIGGER_FIELDS if k in raw})
    if trigger["type"] not in ("alarm", "health", "manual"):
        trigger["type"] = "alarm"
    trigger["force"] = bool(trigger["force"])
    return trigger


def trigger_of(trigger: dict) -> plan.Trigger:
    return plan.Trigger(type=plan.TriggerType(trigger["type"]), upstream=trigger.get("upstream"),
                        state=trigger.get("state"), target=trigger.get("target"),
                        force=bool(trigger.get("force")))


def initial_decision() -> dict:
    return decision_output(plan.Decision(plan.Action.NONE, "NotDecided", "not decided yet"),
                           checks=0, time=None) | {"who": None, "detail": None}


def decision_output(decision: plan.Decision, *, checks: int, time: str | None) -> dict:
    return {
        "action": decision.action.value, "reason": decision.reason,
        "message": decision.message,
        "kind": decision.kind.value if decision.kind else None,
        "from": decision.from_upstream, "to": decision.to_upstream,
        "wait_seconds": decision.wait_seconds,
        "clear_all_unhealthy": decision.clear_all_unhealthy,
        "spec_hash": None, "mode": None, "checks": checks, "time": time,
    }


def who(trigger: dict) -> str:
    if trigger.get("type") == "manual":
        return str(trigger.get("requested_by") or "unknown person")
    if trigger.get("type") == "health":
        return (f"prober: upstream '{trigger.get('upstream')}' "
                f"{str(trigger.get('state') or '').lower()}")
    return f"alarm {trigger.get('alarm_name') or '(unnamed)'}"


def mode_of(route: Route) -> str:
    if route.mode == "proxy":
        return "proxy"
    return "direct" if route.primary().url is not None else "targets"


def moved_message(message: str | None, from_upstream: str, to_upstream: str) -> str | None:
    """The status message with the upstream it names moved (None: leave it as it is)."""
    suffix = f"from upstream '{from_upstream}'."
    if message and message.endswith(suffix):
        return message[: -len(suffix)] + f"from upstream '{to_upstream}'."
    return None


# ---- the Lambda entry point ---------------------------------------------------------------


def default_tasks() -> Tasks:
    settings = Settings.from_env()
    session = boto3.Session()
    return Tasks(
        settings=settings,
        store=FailoverStore(session.client("dynamodb", config=_RETRIES), settings.routes_table,
                            settings.state_table),
        stage=StageVariables(session.client("apigateway", config=_RETRIES),
                             settings.rest_api_id, settings.stage_name),
        weights=ListenerWeights(
            ElbAdapter(session.client("elbv2", config=_RETRIES),
                       listener_arn=settings.listener_arn, vpc_id=settings.vpc_id)
            if settings.listener_arn and settings.vpc_id else None),
    )


def make_handler(tasks: Callable[[], Tasks]) -> Callable[[dict, Any], dict]:
    current = Warm(tasks, key=lambda: tuple(sorted(Settings.from_env().model_dump().items()))).get

    def handler(event: dict, context: Any) -> dict:
        task = event.get("task")
        runner = current()
        try:
            if task == "begin":
                return runner.begin(event)
            if task == "decide":
                return runner.decide(event["state"])
            if task == "switch":
                return runner.switch(event["state"])
            raise PermanentError(f"unknown failover task {task!r}", reason="InvalidInput")
        except TransientError:
            raise
        except GatewayError as exc:
            logger.warning("task failed", extra={"task": task, "reason": exc.reason,
                                                 "error": str(exc)})
            raise task_error(exc.reason)(str(exc)) from None

    return handler


_ERROR_TYPES: dict[str, type[Exception]] = {}


def task_error(reason: str) -> type[Exception]:
    """An exception class named ``reason``: the state machine sees it as the error name."""
    name = reason if reason.isidentifier() else "PermanentError"
    if name not in _ERROR_TYPES:
        _ERROR_TYPES[name] = type(name, (Exception,), {"__module__": __name__})
    return _ERROR_TYPES[name]


handler = make_handler(default_tasks)
