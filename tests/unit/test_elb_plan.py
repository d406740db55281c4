"""What a `targets` route becomes on the ALB, planned without any I/O."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_plane.errors import InvalidRouteError, PermanentError
from control_plane.model.validation import validate_route
from control_plane.plan.elb import (
    MAX_PRIORITY,
    CreateRule,
    CreateTargetGroup,
    DeleteRule,
    DeleteTargetGroup,
    DeregisterTargets,
    ModifyHealthCheck,
    ModifyRule,
    ObservedAlb,
    ObservedRule,
    ObservedTargetGroup,
    RegisterTargets,
    TagRule,
    active_priority,
    allocate_priority,
    desired_alb,
    forward_weights,
    health_check_of,
    plan_route_alb,
    route_condition,
    target_group_name,
)

VPC = "vpc-1"


def route(*upstreams: dict, **extra):
    doc = {"route_id": "orders", "path": "/orders", "upstreams": list(upstreams), **extra}
    return validate_route(doc)


def up(name: str, priority: int, *targets: tuple[str, int], weight: int = 1) -> dict:
    return {"name": name, "priority": priority, "weight": weight,
            "targets": [{"ip": ip, "port": port} for ip, port in targets]}


BLUE = up("blue", 0, ("10.0.1.1", 80), ("10.0.2.1", 80))
GREEN = up("green", 1, ("10.0.1.2", 8080))


def observed_as(spec, *, weights: dict[str, int] | None = None, rule: bool = True) -> ObservedAlb:
    """An ALB that holds exactly ``spec`` (with these rule weights, by upstream)."""
    groups = {g.name: ObservedTargetGroup(arn=f"arn:{g.name}", name=g.name, route_id=g.route_id,
                                          upstream=g.upstream, health=g.health,
                                          targets=g.targets)
              for g in spec.target_groups}
    forward = {f"arn:{name}": weight for name, weight in spec.rule.forward}
    if weights is not None:
        forward = {f"arn:{g.name}": weights[g.upstream] for g in spec.target_groups}
    rules = [ObservedRule(arn="arn:rule", priority=7, conditions=route_condition(spec.route_id),
                          forward=forward, tagged_route=spec.route_id)] if rule else []
    return ObservedAlb(target_groups=groups, rules=rules)


@given(st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True),
       st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True))
def test_target_group_names_fit_elb_rules_and_are_stable(route_id, upstream):
    name = target_group_name(route_id, upstream, VPC)
    assert len(name) <= 32
    assert re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?", name)
    assert name == target_group_name(route_id, upstream, VPC)
    assert name != target_group_name(route_id, upstream, "vpc-2")


def test_upstream_names_that_concatenate_alike_get_different_groups():
    assert target_group_name("a-b", "c", VPC) != target_group_name("a", "b-c", VPC)


def test_a_new_rule_priority_is_stable_and_skips_used_ones():
    first = allocate_priority("orders", [])
    assert 1 <= first <= MAX_PRIORITY
    assert allocate_priority("orders", []) == first
    assert allocate_priority("orders", [first]) == first % MAX_PRIORITY + 1


def test_rule_priorities_wrap_around_and_a_full_listener_is_a_permanent_failure():
    start = allocate_priority("orders", [])
    taken = set(range(start, MAX_PRIORITY + 1))
    assert allocate_priority("orders", taken) == 1
    with pytest.raises(PermanentError) as raised:
        allocate_priority("orders", range(1, MAX_PRIORITY + 1))
    assert raised.value.reason == "ListenerFull"


def test_only_the_active_priority_group_gets_weight():
    r = route(up("a", 0, ("10.0.0.1", 80), weight=3), up("b", 0, ("10.0.0.2", 80)),
              up("c", 1, ("10.0.0.3", 80), weight=5))
    assert forward_weights(r.upstreams, 0) == {"a": 3, "b": 1, "c": 0}
    assert forward_weights(r.upstreams, 1) == {"a": 0, "b": 0, "c": 5}


def test_the_active_priority_is_read_from_the_rule_and_defaults_to_the_primary():
    r = route(BLUE, GREEN)
    assert active_priority(r.upstreams, {}) == 0
    assert active_priority(r.upstreams, {"blue": 0, "green": 1}) == 1
    assert active_priority(r.upstreams, {"blue": 0, "green": 0}) == 0
    assert active_priority(r.upstreams, {"gone": 4}) == 0


def test_health_check_maps_to_alb_settings():
    r = route(BLUE, health_check={"path": "/ready", "interval_seconds": 15, "timeout_ms": 5000,
                                  "healthy_threshold": 3, "unhealthy_threshold": 5,
                                  "expected_statuses": [204, 200, 301]})
    health = health_check_of(r)
    assert (health.path, health.interval_seconds, health.timeout_seconds,
            health.healthy_threshold, health.unhealthy_threshold, health.matcher) == (
        "/ready", 15, 5, 3, 5, "200,204,301")


def test_url_routes_need_nothing_on_the_alb():
    r = validate_route({"route_id": "x", "path": "/x",
                        "upstreams": [{"name": "a", "priority": 0, "url": "https://a.example"}]})
    assert desired_alb(r, vpc_id=VPC) is None


def test_six_targets_upstreams_are_more_than_one_rule_can_forward_to():
    r = route(*[up(f"u{i}", i, (f"10.0.0.{i + 1}", 80)) for i in range(6)])
    with pytest.raises(InvalidRouteError) as raised:
        desired_alb(r, vpc_id=VPC)
    assert raised.value.reason == "TooManyTargetUpstreams"


def test_a_new_route_creates_groups_and_targets_before_the_rule():
    spec = desired_alb(route(BLUE, GREEN), vpc_id=VPC)
    actions = plan_route_alb("orders", spec, ObservedAlb())
    kinds = [type(a) for a in actions]
    assert kinds == [CreateTargetGroup, RegisterTargets, CreateTargetGroup, RegisterTargets,
                     CreateRule]
    assert actions[-1].forward == ((target_group_name("orders", "blue", VPC), 1),
                                   (target_group_name("orders", "green", VPC), 0))


def test_an_alb_that_matches_needs_no_action():
    spec = desired_alb(route(BLUE, GREEN), vpc_id=VPC)
    assert plan_route_alb("orders", spec, observed_as(spec)) == ()


def test_the_observed_rule_weights_decide_the_active_group():
    r = route(BLUE, GREEN)
    failed_over = observed_as(desired_alb(r, vpc_id=VPC), weights={"blue": 0, "green": 1})
    spec = desired_alb(r, vpc_id=VPC, observed=failed_over)
    assert dict(spec.rule.forward) == {target_group_name("orders", "blue", VPC): 0,
                                       target_group_name("orders", "green", VPC): 1}
    assert plan_route_alb("orders", spec, failed_over) == ()


def test_changed_targets_register_first_and_deregister_after_the_rule():
    spec = desired_alb(route(BLUE, GREEN), vpc_id=VPC)
    observed = observed_as(spec)
    blue = observed.target_groups[target_group_name("orders", "blue", VPC)]
    blue.targets = frozenset({("10.0.1.1", 80), ("10.0.9.9", 80)})
    actions = plan_route_alb("orders", spec, observed)
    assert actions == (RegisterTargets(blue.name, (("10.0.2.1", 80),)),
                       DeregisterTargets(blue.name, (("10.0.9.9", 80),)))


def test_a_changed_health_check_modifies_the_groups_in_place():
    spec = desired_alb(route(BLUE, GREEN), vpc_id=VPC)
    observed = observed_as(spec)
    new = desired_alb(route(BLUE, GREEN, health_check={"path": "/other"}), vpc_id=VPC)
    actions = plan_route_alb("orders", new, observed)
    assert [type(a) for a in actions] == [ModifyHealthCheck, ModifyHealthCheck]


def test_a_removed_upstream_is_deleted_after_the_rule_stops_pointing_at_it():
    observed = observed_as(desired_alb(route(BLUE, GREEN), vpc_id=VPC))
    spec = desired_alb(route(BLUE), vpc_id=VPC)
    actions = plan_route_alb("orders", spec, observed)
    assert [type(a) for a in actions] == [ModifyRule, DeleteTargetGroup]
    assert actions[-1] == DeleteTargetGroup(target_group_name("orders", "green", VPC))


def test_a_rule_edited_by_hand_gets_its_condition_and_tag_back():
    spec = desired_alb(route(BLUE, GREEN), vpc_id=VPC)
    observed = observed_as(spec)
    rule = observed.rules[0]
    rule.conditions = route_condition("orders") + [
        {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/x"]}}]
    rule.tagged_route = None
    actions = plan_route_alb("orders", spec, observed)
    assert actions == (ModifyRule("arn:rule", "orders", None, True), TagRule("arn:rule", "orders"))


def test_a_duplicate_rule_for_the_route_is_removed():
    spec = desired_alb(route(BLUE, GREEN), vpc_id=VPC)
    observed = observed_as(spec)
    twin = ObservedRule(arn="arn:twin", priority=3, conditions=[], forward={},
                        tagged_route="orders")
    observed.rules.append(twin)
    assert plan_route_alb("orders", spec, observed) == (DeleteRule("arn:twin"),)


def test_removing_a_route_deletes_its_rule_then_its_groups_and_nothing_of_others():
    spec = desired_alb(route(BLUE, GREEN), vpc_id=VPC)
    observed = observed_as(spec)
    other = ObservedTargetGroup(arn="arn:o", name="tt-other", route_id="billing",
                                upstream="main", health=health_check_of(route(BLUE)))
    observed.target_groups[other.name] = other
    actions = plan_route_alb("orders", None, observed)
    assert [type(a) for a in actions] == [DeleteRule, DeleteTargetGroup, DeleteTargetGroup]
    assert DeleteTargetGroup("tt-other") not in actions
    assert observed.owners() == {"orders", "billing"}
