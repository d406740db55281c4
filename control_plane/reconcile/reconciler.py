"""Reconcile routes into API Gateway: read desired, observe, plan, apply, report.

The event only names *which* route to look at; what happens is decided by comparing the
route item (read strongly consistent) with what API Gateway holds, never by the event type.
A batch of routes shares one observation and at most one ``CreateDeployment``:

    session = ReconcileSession(...)
    for route_id in distinct(batch): session.reconcile(route_id)    # per-route changes
    outcomes = session.finish()      # stage variables, one deployment, status, events

Both steps are idempotent: a crash anywhere is repaired by running again, because every
decision is re-derived from the observed state (the deployment carries a fingerprint of the
API it snapshots, so an interrupted deploy is noticed and redone).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from control_plane.errors import InvalidRouteError, PermanentError, Problem, TransientError
from control_plane.model.events import (
    ROUTE_DELETED,
    ROUTE_FAILED,
    ROUTE_READY,
    ROUTE_REJECTED,
    Event,
    route_event,
)
from control_plane.model.status import Phase, RouteStatus
from control_plane.model.validation import validate_route
from control_plane.plan.apigateway import (
    DeleteMethod,
    ObservedApi,
    desired_methods,
    plan_route,
    plan_sweep,
    route_id_of_variable,
    split_upstream_url,
    stage_variable_name,
    upstream_active_url,
)
from control_plane.reconcile.components import BatchContext, Component

MESSAGE_LIMIT = 1000
DELETED_STATUS_TTL_SECONDS = 7 * 24 * 3600
EVENT_FOR_PHASE = {
    Phase.READY: ROUTE_READY,
    Phase.REJECTED: ROUTE_REJECTED,
    Phase.FAILED: ROUTE_FAILED,
    Phase.DELETED: ROUTE_DELETED,
}


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def document_hash(doc: object) -> str:
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


STATUS_WRITE_ATTEMPTS = 3


@dataclass(frozen=True)
class Outcome:
    route_id: str
    phase: Phase
    spec_hash: str | None
    reason: str | None = None
    message: str | None = None
    active_upstream: str | None = None
    active_url: str | None = None
    path: str | None = None
    methods: tuple[str, ...] | None = None
    problems: tuple[Problem, ...] = ()
    upstream_urls: tuple[tuple[str, str | None], ...] = ()  # every upstream: its active_url


@dataclass
class _Pending:
    outcome: Outcome
    previous: RouteStatus | None
    doc_hash: str | None  # the route item as read; None when it did not exist


@dataclass
class ReconcileSession:
    """One batch of reconciles against one API. Not thread-safe; one per invocation."""

    store: object
    gateway: object
    publisher: object
    clock: Clock = field(default_factory=SystemClock)
    allow_loopback: bool = False
    resolver: object = None
    components: list[Component] = field(default_factory=list)
    method_options: dict = field(default_factory=dict)
    region: str = "us-east-1"
    account_id: str = ""
    observed: ObservedApi | None = None
    _ctx: BatchContext | None = None
    _pending: dict[str, _Pending] = field(default_factory=dict)
    _set_vars: dict[str, str] = field(default_factory=dict)
    _freed: bool = False
    _remove_vars: set[str] = field(default_factory=set)
    _finish_observed: ObservedApi | None = None

    def _observe(self) -> ObservedApi:
        if self.observed is None:
            self.observed = self.gateway.observe()
        return self.observed

    def context(self) -> BatchContext:
        if self._ctx is None:
            self._ctx = BatchContext(observed=self._observe(), rest_api_id=self.gateway.rest_api_id,
                                     stage_name=self.gateway.stage_name, region=self.region,
                                     account_id=self.account_id)
        return self._ctx

    def done(self, route_id: str) -> bool:
        return route_id in self._pending

    # ---- per route ------------------------------------------------------------------

    def reconcile(self, route_id: str) -> Outcome:
        doc = self.store.get_desired(route_id)
        previous = self.store.get_status(route_id)
        observed = self._observe()
        if doc is None:
            outcome = self._teardown(route_id, observed)
        else:
            outcome = self._converge(route_id, doc, previous, observed)
        self._pending[route_id] = _Pending(outcome, previous,
                                           None if doc is None else document_hash(doc))
        return outcome

    def _teardown(self, route_id: str, observed: ObservedApi) -> Outcome:
        plan = plan_route(route_id, [], observed)
        self.gateway.apply(plan.actions, observed)
        self._freed = self._freed or any(isinstance(a, DeleteMethod) for a in plan.actions)
        for component in self.components:
            component.teardown(route_id, self.context())
        self._remove_vars.add(stage_variable_name(route_id))
        return Outcome(route_id, Phase.DELETED, None, reason="RouteDeleted",
                       message="The route item was deleted; its API Gateway resources were removed.")

    def _converge(self, route_id: str, doc: dict, previous: RouteStatus | None,
                  observed: ObservedApi) -> Outcome:
        try:
            route = validate_route(doc, resolver=self.resolver, allow_loopback=self.allow_loopback)
        except InvalidRouteError as exc:
            return self._rejected(route_id, document_hash(doc), exc.problems, observed)
        spec_hash = route.spec_hash()
        try:
            desired = desired_methods(route, **self.method_options)
        except InvalidRouteError as exc:
            return self._rejected(route_id, spec_hash, exc.problems, observed)
        plan = plan_route(route_id, desired, observed)
        if plan.conflicts:
            c = plan.conflicts[0]
            problem = Problem("path", "PathConflict",
                              f"{c.http_method} {c.path} is already served by route '{c.owner}'")
            return self._rejected(route_id, spec_hash, [problem], observed)
        active = self._active_upstream(route, previous)
        active_url = upstream_active_url(active)
        if active_url is not None:
            self._set_vars[stage_variable_name(route_id)] = split_upstream_url(active_url)[1]
        try:
            self.gateway.apply(plan.actions, observed)
            self._freed = self._freed or any(isinstance(a, DeleteMethod) for a in plan.actions)
            for component in self.components:
                component.converge(route, self.context())
        except InvalidRouteError as exc:
            return self._rejected(route_id, spec_hash, exc.problems, observed)
        except PermanentError as exc:
            return Outcome(route_id, Phase.FAILED, spec_hash, reason=exc.reason,
                           message=str(exc)[:MESSAGE_LIMIT], path=route.path,
                           methods=tuple(route.methods))
        return Outcome(route_id, Phase.READY, spec_hash, reason="Reconciled",
                       message=serving_message(route.methods, route.path, active.name),
                       active_upstream=active.name, active_url=active_url,
                       path=route.path, methods=tuple(sorted(route.methods)),
                       upstream_urls=tuple((u.name, upstream_active_url(u))
                                           for u in route.upstreams))

    @staticmethod
    def _active_upstream(route, previous: RouteStatus | None):
        if previous is not None and previous.active_upstream:
            for upstream in route.upstreams:
                if upstream.name == previous.active_upstream:
                    return upstream
        return route.primary()

    def _rejected(self, route_id: str, spec_hash: str, problems: list[Problem],
                  observed: ObservedApi) -> Outcome:
        serving = bool(observed.owned_by(route_id))
        text = "; ".join(p.render() for p in problems)
        if serving:
            text += " (the previous valid version keeps serving)"
        return Outcome(route_id, Phase.REJECTED, spec_hash, reason=problems[0].reason,
                       message=text[:MESSAGE_LIMIT], problems=tuple(problems))

    # ---- per batch ------------------------------------------------------------------

    def retry_blocked(self) -> None:
        """Routes rejected for a path another route held get another look once methods were
        freed in this batch (the owner was deleted or moved), without being rewritten."""
        if not self._freed:
            return
        self._freed = False
        for status in self.store.list_statuses():
            if (status.phase is Phase.REJECTED and status.reason == "PathConflict"
                    and status.route_id not in self._pending):
                self.reconcile(status.route_id)

    def resync(self) -> list[Outcome]:
        """Reconcile every route there is or was, and remove what no route owns."""
        live = set(self.store.list_route_ids())
        observed = self._observe()
        known = {s.route_id for s in self.store.list_statuses() if s.phase is not Phase.DELETED}
        variables = set(observed.stage.variables) if observed.stage else set()
        candidates = live | known | observed.owners() | {route_id_of_variable(v) for v in variables}
        for route_id in sorted(candidates):
            if not self.done(route_id):
                self.reconcile(route_id)
        live = set(self.store.list_route_ids())
        self.gateway.apply(plan_sweep(observed, live).actions, observed)
        for component in self.components:
            component.sweep(live, self.context())
        if observed.stage is not None:
            live_vars = {stage_variable_name(r) for r in live}
            self._remove_vars.update(v for v in observed.stage.variables if v not in live_vars)
        return self.finish()

    def finish(self) -> list[Outcome]:
        """Stage variables, at most one deployment, then status and events."""
        self.retry_blocked()
        if self._pending:
            observed = self._observe()
            self._finish_observed = observed
            for component in self.components:
                component.finish(self.context())
            self.gateway.update_stage_variables(dict(self._set_vars), observed)
            if observed.method_count() == 0:
                self.gateway.delete_stage(observed)
            elif self.gateway.needs_deployment(observed) or self.context().deployment_reasons:
                variables = dict(observed.stage.variables) if observed.stage else {}
                variables.update(self._set_vars)
                self.gateway.deploy(observed, variables)
            if observed.stage is not None:
                for component in self.components:
                    component.after_deploy(self.context())
            owners = observed.owners()
            removals = {v: None for v in self._remove_vars
                        if observed.stage and v in observed.stage.variables
                        and not any(stage_variable_name(o) == v for o in owners)}
            self.gateway.update_stage_variables(removals, observed)
        return self._report()

    def _report(self) -> list[Outcome]:
        now = iso(self.clock.now())
        events: list[Event] = []
        outcomes = []
        for route_id, pending in self._pending.items():
            outcome, previous = pending.outcome, pending.previous
            outcomes.append(outcome)
            if _unchanged(outcome, previous):
                continue
            if self._superseded(route_id, pending.doc_hash):
                continue
            transition = (now if previous is None or previous.phase != outcome.phase
                          else previous.last_transition_time or now)
            status = RouteStatus(
                route_id=route_id, phase=outcome.phase, reason=outcome.reason,
                message=outcome.message, observed_spec_hash=outcome.spec_hash,
                active_upstream=outcome.active_upstream, active_url=outcome.active_url,
                last_transition_time=transition, updated_at=now,
            )
            expires = (int(time.time()) + DELETED_STATUS_TTL_SECONDS
                       if outcome.phase is Phase.DELETED else None)
            status = self._write_status(status, previous, outcome, expires)
            events.append(route_event(
                EVENT_FOR_PHASE[outcome.phase], route_id=route_id, spec_hash=outcome.spec_hash,
                phase=outcome.phase.value, reason=outcome.reason, message=outcome.message,
                time=now, active_upstream=status.active_upstream, path=outcome.path,
                methods=list(outcome.methods) if outcome.methods is not None else None,
                problems=[{"field": p.field, "reason": p.reason, "message": p.message}
                          for p in outcome.problems] or None,
            ))
        if events:
            self.publisher.publish(events)
        return outcomes

    def _write_status(self, status: RouteStatus, previous: RouteStatus | None,
                      outcome: Outcome, expires: int | None) -> RouteStatus:
        """Write the status unless a failover moved the route since it was read.

        The failover workflow owns ``active_upstream`` once a route serves: when it switched the
        route meanwhile to an upstream the route still has, the status keeps that choice and the
        stage variable is pointed back at it.
        """
        expected = previous.active_upstream if previous is not None else None
        for _ in range(STATUS_WRITE_ATTEMPTS):
            if self.store.put_status(status, expires_at=expires, expected_active=expected):
                return status
            current = self.store.get_status(status.route_id)
            expected = current.active_upstream if current is not None else None
            urls = dict(outcome.upstream_urls)
            if outcome.phase is Phase.READY and expected in urls:
                status = status.model_copy(update={
                    "active_upstream": expected, "active_url": urls[expected],
                    "message": serving_message(outcome.methods or (), outcome.path or "",
                                               expected),
                })
                self._repoint_stage(status)
        raise TransientError(f"the status of route '{status.route_id}' kept changing while it "
                             "was written; the reconcile is retried")

    def _repoint_stage(self, status: RouteStatus) -> None:
        observed = self._finish_observed
        if status.active_url is None or observed is None:
            return
        value = split_upstream_url(status.active_url)[1]
        self.gateway.update_stage_variables({stage_variable_name(status.route_id): value},
                                            observed)

    def _superseded(self, route_id: str, doc_hash: str | None) -> bool:
        """A newer version of the route was written meanwhile: its own record will report."""
        doc = self.store.get_desired(route_id)
        return (None if doc is None else document_hash(doc)) != doc_hash


def serving_message(methods, path: str, upstream: str) -> str:
    return f"Serving {', '.join(sorted(methods))} {path} from upstream '{upstream}'."


def _unchanged(outcome: Outcome, previous: RouteStatus | None) -> bool:
    if previous is None:
        return outcome.phase is Phase.DELETED  # nothing was ever reported; nothing to say
    return (
        previous.phase == outcome.phase
        and previous.observed_spec_hash == outcome.spec_hash
        and previous.reason == outcome.reason
        and previous.message == outcome.message
        and previous.active_upstream == outcome.active_upstream
        and previous.active_url == outcome.active_url
    )
