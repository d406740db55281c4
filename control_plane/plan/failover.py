"""Failover decisions: which upstream a route should serve from, and when to move it.

Pure: no I/O, no clock (``now`` is an argument). The failover workflow's ``decide`` task
calls :func:`decide` with what it read from the state table, and does what it returns:

- ``switch``      move traffic ``from_upstream`` -> ``to_upstream`` (a failover, a failback
                  or a manual switch);
- ``fail_static`` every upstream is unhealthy: traffic stays where it is and
                  ``All Upstreams Unhealthy`` is announced (once: the record remembers it);
- ``wait``        look again after ``wait_seconds`` (the hold time since the last switch,
                  or the healthy threshold, has not been reached yet);
- ``none``        nothing to do (``reason`` says why).

The rules, in order:

1. A manual switch goes to the named upstream, whatever ``failover.automatic`` says and
   without a hold time; it is refused only for an unknown upstream, or a known-unhealthy one
   unless forced.
2. ``failover.automatic: false``: nothing moves without a person.
3. The active upstream is confirmed unhealthy by its health record (an alarm alone is not
   proof: a stale alarm must not move traffic). Then the best-priority other upstream that is
   healthy is chosen (one never probed counts only when no probed one is healthy, as Route 53
   uses a secondary without a health check). None: fail static.
4. The active upstream is healthy: fail back to a better priority only with
   ``failover.failback``, once ``min_hold_seconds`` have passed since the last switch and the
   better upstream has ``healthy_threshold`` consecutive good probes; until then, wait. An
   upstream a person chose stays while it is healthy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from control_plane.model.failover import UNKNOWN, Health, Record
from control_plane.model.route import Route, Upstream

MAX_CHECKS = 30
RECONCILE_WAIT_SECONDS = 2


class Action(StrEnum):
    SWITCH = "switch"
    FAIL_STATIC = "fail_static"
    WAIT = "wait"
    NONE = "none"


class Kind(StrEnum):
    """Why traffic moves: off an unhealthy upstream, back to a better one, or by hand."""

    FAILOVER = "failover"
    FAILBACK = "failback"
    MANUAL = "manual"


class TriggerType(StrEnum):
    ALARM = "alarm"  # the upstream's CloudWatch alarm changed state
    HEALTH = "health"  # the prober's verdict flipped (Upstream Health Changed)
    MANUAL = "manual"


@dataclass(frozen=True)
class Trigger:
    """What started the workflow: an upstream's alarm, the prober, or a person."""

    type: TriggerType
    upstream: str | None = None
    state: str | None = None
    target: str | None = None
    force: bool = False


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    message: str
    kind: Kind | None = None
    from_upstream: str | None = None
    to_upstream: str | None = None
    wait_seconds: int = 0
    clear_all_unhealthy: bool = False


def health_of(health: Mapping[str, Health], name: str) -> Health:
    return health.get(name, UNKNOWN)


def is_unhealthy(health: Mapping[str, Health], name: str) -> bool:
    return health_of(health, name).healthy is False


def next_healthy(route: Route, health: Mapping[str, Health], *, exclude: str) -> Upstream | None:
    """The best-priority upstream other than ``exclude`` that can take traffic.

    Known-healthy upstreams come first (by priority, then list order); upstreams never probed
    are used only when no probed one is healthy.
    """
    others = [u for u in route.upstreams_by_priority() if u.name != exclude]
    for upstream in others:
        if health_of(health, upstream.name).healthy is True:
            return upstream
    for upstream in others:
        if health_of(health, upstream.name).healthy is None:
            return upstream
    return None


def failback_target(route: Route, active: Upstream, health: Mapping[str, Health]) -> Upstream | None:
    """The best upstream of a better priority than ``active`` that is healthy now."""
    for upstream in route.upstreams_by_priority():
        if upstream.priority >= active.priority:
            return None
        if health_of(health, upstream.name).healthy is True:
            return upstream
    return None


def hold_remaining_seconds(route: Route, record: Record, now: datetime) -> float:
    """Seconds until ``min_hold_seconds`` have passed since the last switch (0: passed)."""
    if record.last_switch_time is None:
        return 0.0
    elapsed = (now - record.last_switch_time).total_seconds()
    return max(0.0, route.failover.min_hold_seconds - elapsed)


def active_upstream(route: Route, name: str | None) -> Upstream:
    """The upstream serving now: the one the status names, else the primary."""
    for upstream in route.upstreams:
        if upstream.name == name:
            return upstream
    return route.primary()


def decide(route: Route, active_name: str | None, health: Mapping[str, Health], record: Record,
           trigger: Trigger, now: datetime, *, checks: int = 0) -> Decision:
    """What to do for ``route`` now (see the module docstring for the rules)."""
    active = active_upstream(route, active_name)
    clear = bool(record.all_unhealthy_since) and any(
        health_of(health, u.name).healthy is not False for u in route.upstreams)
    if trigger.type is TriggerType.MANUAL:
        return _manual(route, active, health, trigger, clear)
    decision = _automatic(route, active, health, record, now)
    if decision.action is Action.WAIT and checks >= MAX_CHECKS:
        decision = Decision(Action.NONE, "StoppedWaiting",
                            f"{decision.message} Stopped after {checks} checks; the next "
                            "alarm or health change looks again.")
    if decision.action is Action.FAIL_STATIC and record.all_unhealthy_since:
        decision = Decision(Action.NONE, "AllUpstreamsUnhealthy",
                            f"{decision.message} (announced at {record.all_unhealthy_since})")
    if decision.action in (Action.NONE, Action.WAIT) and clear:
        decision = _with_clear(decision)
    return decision


def await_reconcile(route_id: str, checks: int) -> Decision:
    """The status does not describe the route's current spec yet: look again shortly."""
    if checks >= MAX_CHECKS:
        return Decision(Action.NONE, "ReconcilePending",
                        f"route '{route_id}' is still being reconciled after {checks} checks; "
                        "the next alarm or health change looks again")
    return Decision(Action.WAIT, "ReconcilePending",
                    f"route '{route_id}' is being reconciled; looking again in "
                    f"{RECONCILE_WAIT_SECONDS} s", wait_seconds=RECONCILE_WAIT_SECONDS)


def _with_clear(decision: Decision) -> Decision:
    return Decision(decision.action, decision.reason, decision.message, decision.kind,
                    decision.from_upstream, decision.to_upstream, decision.wait_seconds,
                    clear_all_unhealthy=True)


def _manual(route: Route, active: Upstream, health: Mapping[str, Health], trigger: Trigger,
            clear: bool) -> Decision:
    target = next((u for u in route.upstreams if u.name == trigger.target), None)
    if target is None:
        names = ", ".join(u.name for u in route.upstreams)
        return Decision(Action.NONE, "UnknownUpstream",
                        f"route '{route.route_id}' has no upstream '{trigger.target}' "
                        f"(it has: {names})")
    if target.name == active.name:
        decision = Decision(Action.NONE, "AlreadyActive",
                            f"upstream '{target.name}' already serves route '{route.route_id}'")
        return _with_clear(decision) if clear else decision
    if is_unhealthy(health, target.name) and not trigger.force:
        return Decision(Action.NONE, "TargetUnhealthy",
                        f"upstream '{target.name}' is unhealthy "
                        f"({_failures(health, target.name)}); only a forced switch moves to it")
    return Decision(Action.SWITCH, "ManualSwitch",
                    f"switched by hand from '{active.name}' to '{target.name}'",
                    kind=Kind.MANUAL, from_upstream=active.name, to_upstream=target.name)


def _automatic(route: Route, active: Upstream, health: Mapping[str, Health], record: Record,
               now: datetime) -> Decision:
    everyone_down = all(is_unhealthy(health, u.name) for u in route.upstreams)
    if everyone_down:
        return Decision(Action.FAIL_STATIC, "AllUpstreamsUnhealthy",
                        f"every upstream of route '{route.route_id}' is unhealthy; traffic "
                        f"stays on '{active.name}'", from_upstream=active.name)
    if not route.failover.automatic:
        return Decision(Action.NONE, "AutomaticFailoverDisabled",
                        f"route '{route.route_id}' has failover.automatic false: only a "
                        "manual switch moves it")
    if is_unhealthy(health, active.name):
        target = next_healthy(route, health, exclude=active.name)
        if target is None:  # unreachable while not everyone is down; kept for safety
            return Decision(Action.FAIL_STATIC, "AllUpstreamsUnhealthy",
                            f"no other upstream can take traffic; it stays on '{active.name}'",
                            from_upstream=active.name)
        why = "healthy" if health_of(health, target.name).healthy else "not probed yet"
        return Decision(Action.SWITCH, "ActiveUpstreamUnhealthy",
                        f"upstream '{active.name}' is unhealthy "
                        f"({_failures(health, active.name)}); moving to '{target.name}' "
                        f"(priority {target.priority}, {why})",
                        kind=Kind.FAILOVER, from_upstream=active.name, to_upstream=target.name)
    return _failback(route, active, health, record, now)


def _failback(route: Route, active: Upstream, health: Mapping[str, Health], record: Record,
              now: datetime) -> Decision:
    if health_of(health, active.name).healthy is None:
        quiet = Decision(Action.NONE, "HealthUnknown",
                         f"upstream '{active.name}' has not been probed yet; no switch")
    else:
        quiet = Decision(Action.NONE, "ActiveUpstreamHealthy",
                         f"upstream '{active.name}' is healthy; no switch")
    better = failback_target(route, active, health)
    if better is None:
        return quiet
    if not route.failover.failback:
        return Decision(Action.NONE, "FailbackDisabled",
                        f"'{better.name}' is healthy again but route '{route.route_id}' has "
                        f"failover.failback false; traffic stays on '{active.name}'")
    if record.manual_choice == active.name:
        return Decision(Action.NONE, "ManualChoiceKept",
                        f"'{active.name}' was chosen by hand and is healthy; no failback to "
                        f"'{better.name}' until a person switches or '{active.name}' fails")
    threshold = route.health_check.healthy_threshold
    successes = health_of(health, better.name).consecutive_successes
    hold = hold_remaining_seconds(route, record, now)
    if hold > 0:
        return Decision(Action.WAIT, "HoldTime",
                        f"'{better.name}' is healthy again; failback waits "
                        f"{math.ceil(hold)} s more (min_hold_seconds "
                        f"{route.failover.min_hold_seconds} since the last switch)",
                        wait_seconds=max(1, math.ceil(hold)))
    if successes < threshold:
        probes = threshold - successes
        return Decision(Action.WAIT, "HealthyThreshold",
                        f"'{better.name}' has {successes} of {threshold} good probes; "
                        f"looking again in {probes * route.health_check.interval_seconds} s",
                        wait_seconds=max(1, probes * route.health_check.interval_seconds))
    return Decision(Action.SWITCH, "BetterUpstreamHealthy",
                    f"'{better.name}' (priority {better.priority}) is healthy with "
                    f"{successes} consecutive good probes and "
                    f"{route.failover.min_hold_seconds} s have passed since the last switch; "
                    f"moving back from '{active.name}'",
                    kind=Kind.FAILBACK, from_upstream=active.name, to_upstream=better.name)


def _failures(health: Mapping[str, Health], name: str) -> str:
    h = health_of(health, name)
    if h.consecutive_failures:
        since = f" since {h.last_change_time}" if h.last_change_time else ""
        return f"{h.consecutive_failures} consecutive failed probes{since}"
    return f"unhealthy since {h.last_change_time}" if h.last_change_time else "reported unhealthy"
