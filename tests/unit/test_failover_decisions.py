"""Failover decisions, table-driven: which upstream serves, and when traffic moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control_plane.model.failover import Health, Record
from control_plane.model.route import Route
from control_plane.plan.failover import (
    MAX_CHECKS,
    Action,
    Kind,
    Trigger,
    TriggerType,
    await_reconcile,
    decide,
    next_healthy,
)

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
UP = Health(healthy=True, consecutive_successes=5)
DOWN = Health(healthy=False, consecutive_failures=3, last_change_time="2030-01-01T11:59:50Z")
ALARM = Trigger(TriggerType.ALARM, upstream="a", state="ALARM")
OK = Trigger(TriggerType.ALARM, upstream="a", state="OK")


def make_route(*priorities: int, mode: str = "proxy", **failover) -> Route:
    names = "abcdefg"
    return Route.model_validate({
        "route_id": "pay", "path": "/pay", "mode": mode,
        "upstreams": [{"name": names[i], "url": f"https://{names[i]}.example", "priority": p}
                      for i, p in enumerate(priorities)],
        "health_check": {"healthy_threshold": 3, "interval_seconds": 5, "timeout_ms": 1000},
        "failover": {"min_hold_seconds": 60, **failover},
    })


def health(**states: Health) -> dict[str, Health]:
    return dict(states)


def switched_at(seconds_ago: float) -> Record:
    return Record(last_switch_time=NOW - timedelta(seconds=seconds_ago))


FAILOVER_CASES = [
    # (name, priorities, active, health, expected (action, to, reason))
    ("primary down -> secondary", (0, 1), "a", health(a=DOWN, b=UP),
     (Action.SWITCH, "b", "ActiveUpstreamUnhealthy")),
    ("skips an unhealthy secondary", (0, 1, 2), "a", health(a=DOWN, b=DOWN, c=UP),
     (Action.SWITCH, "c", "ActiveUpstreamUnhealthy")),
    ("by priority, not list order", (0, 2, 1), "a", health(a=DOWN, b=UP, c=UP),
     (Action.SWITCH, "c", "ActiveUpstreamUnhealthy")),
    ("healthy before never probed", (0, 1, 2), "a", health(a=DOWN, c=UP),
     (Action.SWITCH, "c", "ActiveUpstreamUnhealthy")),
    ("never probed when nothing else", (0, 1), "a", health(a=DOWN),
     (Action.SWITCH, "b", "ActiveUpstreamUnhealthy")),
    ("secondary down -> best healthy, even a better priority", (0, 1), "b",
     health(a=UP, b=DOWN), (Action.SWITCH, "a", "ActiveUpstreamUnhealthy")),
    ("every upstream down: fail static", (0, 1), "a", health(a=DOWN, b=DOWN),
     (Action.FAIL_STATIC, None, "AllUpstreamsUnhealthy")),
    ("active healthy: nothing", (0, 1), "a", health(a=UP, b=DOWN),
     (Action.NONE, None, "ActiveUpstreamHealthy")),
    ("active never probed: not confirmed", (0, 1), "a", health(b=UP),
     (Action.NONE, None, "HealthUnknown")),
]


@pytest.mark.parametrize(("priorities", "active", "states", "expected"),
                         [c[1:] for c in FAILOVER_CASES], ids=[c[0] for c in FAILOVER_CASES])
def test_failover_goes_to_the_next_healthy_upstream_by_priority(priorities, active, states,
                                                                expected):
    decision = decide(make_route(*priorities), active, states, Record(), ALARM, NOW)
    assert (decision.action, decision.to_upstream, decision.reason) == expected
    if decision.action is Action.SWITCH:
        assert decision.kind is Kind.FAILOVER and decision.from_upstream == active


FAILBACK_CASES = [
    # (name, record, primary health, failover options, expected (action, reason, wait))
    ("hold time passed and threshold met", switched_at(61), UP, {},
     (Action.SWITCH, "BetterUpstreamHealthy", 0)),
    ("within the hold time: wait the rest", switched_at(45), UP, {},
     (Action.WAIT, "HoldTime", 15)),
    ("never switched: no hold", Record(), UP, {},
     (Action.SWITCH, "BetterUpstreamHealthy", 0)),
    ("too few good probes: wait for them", switched_at(61),
     Health(healthy=True, consecutive_successes=1), {},
     (Action.WAIT, "HealthyThreshold", 10)),
    ("primary still down: stay", switched_at(600), DOWN, {},
     (Action.NONE, "ActiveUpstreamHealthy", 0)),
    ("failback false: stay", switched_at(600), UP, {"failback": False},
     (Action.NONE, "FailbackDisabled", 0)),
    ("automatic false: stay", switched_at(600), UP, {"automatic": False},
     (Action.NONE, "AutomaticFailoverDisabled", 0)),
    ("chosen by hand: stay while healthy",
     Record(last_switch_time=NOW - timedelta(seconds=600), manual_choice="b"), UP, {},
     (Action.NONE, "ManualChoiceKept", 0)),
    ("min_hold_seconds 0", switched_at(0), UP, {"min_hold_seconds": 0},
     (Action.SWITCH, "BetterUpstreamHealthy", 0)),
]


@pytest.mark.parametrize(("record", "primary", "options", "expected"),
                         [c[1:] for c in FAILBACK_CASES], ids=[c[0] for c in FAILBACK_CASES])
def test_failback_needs_the_hold_time_and_healthy_threshold(record, primary, options, expected):
    route = make_route(0, 1, **options)
    decision = decide(route, "b", health(a=primary, b=UP), record, OK, NOW)
    assert (decision.action, decision.reason, decision.wait_seconds) == expected
    if decision.action is Action.SWITCH:
        assert (decision.kind, decision.from_upstream, decision.to_upstream) == (
            Kind.FAILBACK, "b", "a")


def test_failback_from_a_third_upstream_goes_to_the_best_healthy_one():
    route = make_route(0, 1, 2)
    decision = decide(route, "c", health(a=DOWN, b=UP, c=UP), switched_at(600), OK, NOW)
    assert (decision.action, decision.to_upstream) == (Action.SWITCH, "b")


def test_a_failover_never_waits_for_the_hold_time():
    decision = decide(make_route(0, 1), "a", health(a=DOWN, b=UP), switched_at(1), ALARM, NOW)
    assert decision.action is Action.SWITCH


def test_automatic_false_route_does_not_move_on_an_alarm():
    route = make_route(0, 1, automatic=False)
    decision = decide(route, "a", health(a=DOWN, b=UP), Record(), ALARM, NOW)
    assert (decision.action, decision.reason) == (Action.NONE, "AutomaticFailoverDisabled")


MANUAL_CASES = [
    # (name, target, force, health, expected (action, reason))
    ("to a healthy upstream", "b", False, health(a=UP, b=UP), (Action.SWITCH, "ManualSwitch")),
    ("to a never-probed upstream", "b", False, health(a=UP), (Action.SWITCH, "ManualSwitch")),
    ("to an unhealthy upstream", "b", False, health(a=UP, b=DOWN),
     (Action.NONE, "TargetUnhealthy")),
    ("forced to an unhealthy upstream", "b", True, health(a=UP, b=DOWN),
     (Action.SWITCH, "ManualSwitch")),
    ("to the active upstream", "a", False, health(a=UP, b=UP), (Action.NONE, "AlreadyActive")),
    ("to an unknown upstream", "zz", False, health(a=UP, b=UP),
     (Action.NONE, "UnknownUpstream")),
]


@pytest.mark.parametrize(("target", "force", "states", "expected"),
                         [c[1:] for c in MANUAL_CASES], ids=[c[0] for c in MANUAL_CASES])
def test_manual_switch_goes_where_the_person_says(target, force, states, expected):
    route = make_route(0, 1, automatic=False)  # a person moves even such a route
    trigger = Trigger(TriggerType.MANUAL, target=target, force=force)
    decision = decide(route, "a", states, switched_at(1), trigger, NOW)  # no hold time either
    assert (decision.action, decision.reason) == expected
    if decision.action is Action.SWITCH:
        assert (decision.kind, decision.from_upstream, decision.to_upstream) == (
            Kind.MANUAL, "a", target)


def test_all_unhealthy_is_announced_once_per_outage():
    route = make_route(0, 1)
    down = health(a=DOWN, b=DOWN)
    first = decide(route, "a", down, Record(), ALARM, NOW)
    again = decide(route, "a", down, Record(all_unhealthy_since="2030-01-01T11:59:00Z"), ALARM,
                   NOW)
    assert first.action is Action.FAIL_STATIC and first.from_upstream == "a"
    assert (again.action, again.reason) == (Action.NONE, "AllUpstreamsUnhealthy")


def test_a_recovered_upstream_clears_the_outage_so_the_next_one_is_announced():
    record = Record(all_unhealthy_since="2030-01-01T11:59:00Z")
    decision = decide(make_route(0, 1), "a", health(a=UP, b=DOWN), record, OK, NOW)
    assert decision.action is Action.NONE and decision.clear_all_unhealthy


def test_waiting_stops_after_max_checks():
    route = make_route(0, 1)
    decision = decide(route, "b", health(a=UP, b=UP), switched_at(1), OK, NOW, checks=MAX_CHECKS)
    assert (decision.action, decision.reason) == (Action.NONE, "StoppedWaiting")


def test_reconcile_in_progress_is_waited_for_then_given_up():
    assert await_reconcile("pay", 1).action is Action.WAIT
    assert await_reconcile("pay", MAX_CHECKS).action is Action.NONE


def test_next_healthy_excludes_the_active_upstream():
    route = make_route(0, 1)
    assert next_healthy(route, health(a=UP, b=DOWN), exclude="a") is None
    assert next_healthy(route, health(a=UP, b=UP), exclude="a").name == "b"


def test_an_unknown_active_name_means_the_primary():
    decision = decide(make_route(0, 1), "gone", health(a=DOWN, b=UP), Record(), ALARM, NOW)
    assert (decision.from_upstream, decision.to_upstream) == ("a", "b")


def test_messages_say_why_for_people():
    decision = decide(make_route(0, 1), "a", health(a=DOWN, b=UP), Record(), ALARM, NOW)
    assert "'a' is unhealthy (3 consecutive failed probes since 2030-01-01T11:59:50Z)" in (
        decision.message)
    assert "moving to 'b' (priority 1, healthy)" in decision.message
