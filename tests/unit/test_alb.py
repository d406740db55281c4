"""The local gateway's ALB decisions, without sockets: rule matching, weighted group choice,
fail-open target choice, integration header mapping and the prober's health items."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from control_plane.model.health import TargetState, UpstreamHealth, health_kind, target_key
from data_plane.alb import choose_group, condition_holds, eligible_targets, match_rule
from data_plane.alb_config import (
    AlbListener,
    AlbRule,
    AlbTarget,
    AlbTargetGroup,
    Condition,
    FixedResponse,
    Forward,
)
from data_plane.integration_headers import mapped_headers, with_mapped_headers

NOT_FOUND = FixedResponse(404, "application/json", "{}")


def header(name: str, *values: str) -> Condition:
    return Condition("http-header", values, name)


def rule(priority: int, *conditions: Condition) -> AlbRule:
    return AlbRule(priority, conditions, FixedResponse(200, body=str(priority)))


def matched(listener: AlbListener, *, method="GET", path="/", host="alb.example",
            headers=()) -> int | None:
    found = match_rule(listener, method=method, path=path, host=host, headers=list(headers))
    return None if found is None else found.priority


def test_rules_are_tried_by_priority_and_no_match_leaves_the_default_action():
    listener = AlbListener(80, (rule(1, header("X-Turnout-Route", "a")),
                                rule(2, header("X-Turnout-Route", "*"))), NOT_FOUND)
    assert matched(listener, headers=[("X-Turnout-Route", "a")]) == 1
    assert matched(listener, headers=[("X-Turnout-Route", "b")]) == 2
    assert matched(listener) is None


@pytest.mark.parametrize(("condition", "request_", "holds"), [
    (header("x-turnout-route", "Orders"), {"headers": [("X-TURNOUT-ROUTE", "orders")]}, True),
    (header("X-Turnout-Route", "ord?rs"), {"headers": [("X-Turnout-Route", "orders")]}, True),
    (header("X-Turnout-Route", "ord"), {"headers": [("X-Turnout-Route", "orders")]}, False),
    (header("X-Turnout-Route", "a.b"), {"headers": [("X-Turnout-Route", "axb")]}, False),
    (Condition("path-pattern", ("/api/*",)), {"path": "/api/v1/x"}, True),
    (Condition("path-pattern", ("/API/*",)), {"path": "/api/v1/x"}, False),
    (Condition("host-header", ("*.example",)), {"host": "ALB.example:8080"}, True),
    (Condition("http-request-method", ("POST",)), {"method": "GET"}, False),
    (Condition("query-string", ("a",)), {}, False),
])
def test_alb_conditions_match_as_the_alb_documents(condition, request_, holds):
    base = {"method": "GET", "path": "/", "host": "alb.example", "headers": []}
    assert condition_holds(condition, **{**base, **request_}) is holds


def test_every_condition_of_a_rule_must_hold():
    listener = AlbListener(80, (rule(5, header("X-Turnout-Route", "a"),
                                     Condition("path-pattern", ("/a/*",))),), NOT_FOUND)
    assert matched(listener, path="/a/1", headers=[("X-Turnout-Route", "a")]) == 5
    assert matched(listener, path="/b/1", headers=[("X-Turnout-Route", "a")]) is None


def group(name: str, *healthy: bool) -> AlbTargetGroup:
    return AlbTargetGroup(name, tuple(AlbTarget("10.0.0.1", 8000 + i, ok)
                                      for i, ok in enumerate(healthy)))


def test_groups_are_drawn_by_weight_and_weight_zero_gets_nothing():
    one, two, three = group("one", True), group("two", True), group("three", True)
    forward = Forward(((one, 3), (two, 1), (three, 0)))
    rng = random.Random(7)
    drawn = Counter(choose_group(forward, rng).arn for _ in range(4000))
    assert set(drawn) == {"one", "two"}
    assert 2.5 < drawn["one"] / drawn["two"] < 3.5
    assert choose_group(Forward(((one, 0), (two, 0))), rng) is None


def test_only_healthy_targets_are_eligible_unless_none_is():
    mixed = group("g", True, False, True)
    assert [t.port for t in eligible_targets(mixed)] == [8000, 8002]
    failing = group("g", False, False)
    assert [t.port for t in eligible_targets(failing)] == [8000, 8001]
    assert eligible_targets(group("empty")) == ()


def test_integration_headers_come_from_static_values_and_request_sources_and_replace_the_clients():
    mapped = mapped_headers(
        {"integration.request.header.X-Turnout-Route": "'orders'",
         "integration.request.header.X-Tenant": "method.request.header.tenant",
         "integration.request.header.X-Id": "method.request.path.id",
         "integration.request.header.X-Missing": "method.request.querystring.nope",
         "integration.request.path.id": "method.request.path.id"},
        headers={"tenant": "acme"}, path_parameters={"id": "42"}, query={}, stage_variables={})
    assert sorted(mapped) == [("X-Id", "42"), ("X-Tenant", "acme"), ("X-Turnout-Route", "orders")]
    assert with_mapped_headers([("x-turnout-route", "evil"), ("Accept", "*/*")],
                               [("X-Turnout-Route", "orders")]) == [
        ("Accept", "*/*"), ("X-Turnout-Route", "orders")]


def test_a_health_item_round_trips_and_unknown_targets_count_as_healthy():
    health = UpstreamHealth("orders", "blue", {target_key("10.0.1.5", 80): TargetState.UNHEALTHY,
                                               target_key("fd00::5", 80): TargetState.HEALTHY},
                            updated_at="2026-01-01T00:00:00Z")
    item = health.to_item()
    assert item["kind"] == health_kind("blue") == "health#blue"
    assert item["targets"] == {"10.0.1.5:80": "unhealthy", "[fd00::5]:80": "healthy"}
    back = UpstreamHealth.from_item(item)
    assert back is not None and not back.is_healthy("10.0.1.5", 80)
    assert back.is_healthy("fd00:0::5", 80) and back.is_healthy("10.0.1.9", 80)
    assert UpstreamHealth.from_item({"route_id": "orders", "kind": "status"}) is None
    odd = UpstreamHealth.from_item({"route_id": "o", "kind": "health#b",
                                    "targets": {"10.0.0.1:1": "maybe"}})
    assert odd is not None and odd.is_healthy("10.0.0.1", 1)
