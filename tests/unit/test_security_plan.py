"""What a route's ``security`` becomes in API Gateway: usage plans, stage throttling and the
merged resource policy, table-driven."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from control_plane.model.route import Route
from control_plane.plan.security import (
    ALLOW_SID,
    PlanSpec,
    Throttle,
    desired_method_throttles,
    desired_plan,
    merge_policy,
    method_arns,
    method_setting_key,
    method_throttle_patch,
    observed_method_throttles,
    parse_method_setting_key,
    parse_policy,
    plan_method_throttles,
    plan_patch,
    route_of_sid,
    route_statement,
    statement_sid,
)

API = "a1b2c3d4e5"
STAGE = "live"


def route(route_id: str = "payments", path: str = "/payments/{proxy+}", *, methods=("GET",),
          **security) -> Route:
    return Route.model_validate({
        "route_id": route_id, "path": path, "methods": list(methods),
        "upstreams": [{"name": "main", "url": "https://api.example", "priority": 0}],
        "security": security,
    })


def test_api_key_route_wants_a_plan_with_its_rate_limit_as_throttle():
    spec = desired_plan(route(api_key_required=True,
                              rate_limit={"requests_per_second": 50, "burst": 100}))
    assert spec == PlanSpec("payments", Throttle(50.0, 100))
    assert spec.name == "turnout-payments"
    assert desired_plan(route(api_key_required=True)).throttle is None
    assert desired_plan(route(rate_limit={"requests_per_second": 5, "burst": 5})) is None


def test_plan_patch_is_empty_when_the_plan_already_matches():
    plan = {"id": "p", "name": "turnout-payments",
            "apiStages": [{"apiId": API, "stage": STAGE}],
            "throttle": {"rateLimit": 50.0, "burstLimit": 100}}
    assert plan_patch(plan, PlanSpec("payments", Throttle(50, 100)), API, STAGE) == []


def test_plan_patch_sets_the_throttle_attaches_the_stage_and_drops_a_throttle_no_longer_wanted():
    bare = {"id": "p", "name": "turnout-payments", "apiStages": []}
    assert plan_patch(bare, PlanSpec("payments", Throttle(5, 10)), API, STAGE) == [
        {"op": "add", "path": "/apiStages", "value": f"{API}:{STAGE}"},
        {"op": "replace", "path": "/throttle/rateLimit", "value": "5"},
        {"op": "replace", "path": "/throttle/burstLimit", "value": "10"},
    ]
    throttled = {"id": "p", "apiStages": [{"apiId": API, "stage": STAGE}],
                 "throttle": {"rateLimit": 5.0, "burstLimit": 10}}
    assert plan_patch(throttled, PlanSpec("payments", None), API, STAGE) == [
        {"op": "remove", "path": "/throttle"}]


def test_method_setting_keys_escape_the_path_and_read_back_either_way():
    assert method_setting_key("/orders/{id}", "GET") == "~1orders~1{id}/GET"
    assert parse_method_setting_key("~1orders~1{id}/GET") == ("/orders/{id}", "GET")
    assert parse_method_setting_key("orders/{id}/GET") == ("/orders/{id}", "GET")
    assert parse_method_setting_key("*/*") is None


def test_keyless_rate_limit_throttles_each_method_and_api_key_routes_leave_it_to_the_plan():
    limited = route(path="/svc", methods=("GET", "POST"),
                    rate_limit={"requests_per_second": 5, "burst": 10})
    assert desired_method_throttles(limited) == {("/svc", "GET"): Throttle(5, 10),
                                                 ("/svc", "POST"): Throttle(5, 10)}
    keyed = route(path="/svc", api_key_required=True,
                  rate_limit={"requests_per_second": 5, "burst": 10})
    assert desired_method_throttles(keyed) == {("/svc", "GET"): None}


def test_disabled_or_absent_method_throttles_are_not_observed():
    settings = {
        "~1a/GET": {"throttlingRateLimit": 5.0, "throttlingBurstLimit": 10},
        "~1b/GET": {"throttlingRateLimit": -1.0, "throttlingBurstLimit": -1},
        "~1c/GET": {"metricsEnabled": True},
        "*/*": {"throttlingRateLimit": 100.0, "throttlingBurstLimit": 200},
    }
    assert observed_method_throttles(settings) == {("/a", "GET"): Throttle(5, 10)}


def test_method_throttle_plan_sets_changes_and_disables_orphans_only():
    observed = {("/a", "GET"): Throttle(5, 10), ("/gone", "GET"): Throttle(1, 1),
                ("/other", "GET"): Throttle(2, 2)}
    desired = {("/a", "GET"): Throttle(5, 10), ("/b", "GET"): Throttle(3, 3),
               ("/c", "GET"): None}
    existing = {("/a", "GET"), ("/b", "GET"), ("/c", "GET"), ("/other", "GET")}
    changes = plan_method_throttles(observed, desired, existing)
    assert changes == {("/b", "GET"): Throttle(3, 3), ("/gone", "GET"): None}
    assert method_throttle_patch({("/gone", "GET"): None}) == [
        {"op": "replace", "path": "/~1gone/GET/throttling/rateLimit", "value": "-1"},
        {"op": "replace", "path": "/~1gone/GET/throttling/burstLimit", "value": "-1"},
    ]


@given(st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True))
def test_every_route_id_has_its_own_statement_id_and_back(route_id):
    sid = statement_sid(route_id)
    assert sid.isalnum()
    assert route_of_sid(sid) == route_id


def test_statement_ids_that_are_not_a_routes_are_not_mistaken_for_one():
    assert route_of_sid(ALLOW_SID) is None
    assert route_of_sid("OfficeOnly") is None
    assert route_of_sid("turnout") is None


def test_method_arns_cover_the_routes_methods_and_parameters():
    assert method_arns(route(path="/orders/{id}/items", methods=("GET", "PUT")), STAGE) == [
        "execute-api:/live/GET/orders/*/items", "execute-api:/live/PUT/orders/*/items"]
    assert method_arns(route(path="/svc/{proxy+}", methods=("ANY",)), STAGE) == [
        "execute-api:/live/*/svc/*"]


def _statement(route_id: str, cidrs: list[str], path: str = "/payments/{proxy+}") -> dict:
    return route_statement(route(route_id, path, allowed_cidrs=cidrs), STAGE)


def test_first_allowlist_creates_the_policy_with_the_allow_and_the_routes_deny():
    change = merge_policy(None, {"payments": _statement("payments", ["203.0.113.0/24"])}, API)
    statements = change.document["Statement"]
    assert [s["Sid"] for s in statements] == [ALLOW_SID, "turnoutpayments"]
    deny = statements[1]
    assert deny["Effect"] == "Deny"
    assert deny["Resource"] == ["execute-api:/live/GET/payments/*"]
    assert deny["Condition"] == {"NotIpAddress": {"aws:SourceIp": ["203.0.113.0/24"]}}


def test_routes_without_allowlists_need_no_policy():
    assert merge_policy(None, {"payments": None, "orders": None}, API).document is None


def test_unchanged_statements_make_no_change_even_as_api_gateway_reserialises_them():
    written = merge_policy(None, {"payments": _statement("payments", ["203.0.113.0/24"])},
                           API).document
    stored = json.loads(json.dumps(written))
    for statement in stored["Statement"]:  # what AWS does to a stored policy
        resources = statement["Resource"]
        expand = f"arn:aws:execute-api:us-east-1:123456789012:{API}"
        statement["Resource"] = ([r.replace("execute-api:", expand) for r in resources]
                                 if isinstance(resources, list)
                                 else resources.replace("execute-api:", expand))
    escaped = json.dumps(stored).replace('"', '\\"')
    again = merge_policy(parse_policy(escaped),
                         {"payments": _statement("payments", ["203.0.113.0/24"])}, API)
    assert again.document is None


def test_changing_one_routes_allowlist_leaves_every_other_statement_as_it_was():
    hand_written = {"Sid": "OfficeOnly", "Effect": "Deny", "Principal": "*",
                    "Action": "execute-api:Invoke", "Resource": "execute-api:/live/*/admin",
                    "Condition": {"NotIpAddress": {"aws:SourceIp": "198.51.100.0/24"}}}
    orders = _statement("orders", ["192.0.2.0/24"], "/orders")
    current = merge_policy({"Version": "2012-10-17", "Statement": [hand_written]},
                           {"payments": _statement("payments", ["203.0.113.0/24"]),
                            "orders": orders}, API).document
    changed = merge_policy(current, {"payments": _statement("payments", ["10.0.0.0/8"])},
                           API).document
    by_sid = {s["Sid"]: s for s in changed["Statement"]}
    assert by_sid["OfficeOnly"] == hand_written
    assert by_sid["turnoutorders"] == orders
    assert by_sid["turnoutpayments"]["Condition"]["NotIpAddress"]["aws:SourceIp"] == [
        "10.0.0.0/8"]
    assert [s["Sid"] for s in changed["Statement"]] == [
        s["Sid"] for s in current["Statement"]], "statements keep their places"


def test_a_deleted_routes_statement_goes_and_a_resync_drops_those_of_routes_not_live():
    current = merge_policy(None, {"a": _statement("a", ["10.0.0.0/8"], "/a"),
                                  "b": _statement("b", ["10.0.0.0/8"], "/b"),
                                  "c": _statement("c", ["10.0.0.0/8"], "/c")}, API).document
    after_delete = merge_policy(current, {"a": None}, API).document
    assert [s["Sid"] for s in after_delete["Statement"]] == [ALLOW_SID, "turnoutb", "turnoutc"]
    after_resync = merge_policy(after_delete, {}, API, live_route_ids={"b"}).document
    assert [s["Sid"] for s in after_resync["Statement"]] == [ALLOW_SID, "turnoutb"]


def test_a_policy_someone_else_wrote_keeps_deciding_what_is_allowed():
    theirs = {"Sid": "PartnersOnly", "Effect": "Allow", "Principal": "*",
              "Action": "execute-api:Invoke", "Resource": "execute-api:/live/*/partners/*"}
    changed = merge_policy({"Version": "2012-10-17", "Statement": [theirs]},
                           {"payments": _statement("payments", ["203.0.113.0/24"])}, API).document
    assert [s["Sid"] for s in changed["Statement"]] == ["PartnersOnly", "turnoutpayments"]
