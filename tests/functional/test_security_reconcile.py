"""``route.security`` reconciled by the real handler on the embedded AWS endpoint, read back
with get calls: usage plans, stage throttling, the resource policy, the web ACL."""

from __future__ import annotations

import json

import pytest

from control_plane.plan.security import parse_policy
from data_plane.resource_policy import Decision, ResourcePolicy, method_arn
from tests.functional.stack import route

READS = ("Get", "List", "Describe", "Query", "Scan", "BatchGet")
OUTSIDE = "198.51.100.7"


def secured(route_id: str, path: str, *, methods=("GET",), **security) -> dict:
    return route(route_id, path, "https://api.example", methods=methods, security=security)


def plans(stack) -> dict[str, dict]:
    items = stack.aws.client("apigateway").get_usage_plans()["items"]
    return {p["name"]: p for p in items}


def method_settings(stack) -> dict:
    return stack.aws.client("apigateway").get_stage(
        restApiId=stack.rest_api_id, stageName=stack.stage).get("methodSettings") or {}


def policy(stack) -> dict | None:
    return parse_policy(stack.aws.client("apigateway").get_rest_api(
        restApiId=stack.rest_api_id).get("policy"))


def writes(harness, services=("apigateway", "wafv2")) -> list[str]:
    return [c for c in harness.calls if c.split(".", 1)[0] in services
            and not c.split(".", 1)[1].startswith(READS)]


def test_api_key_route_gets_a_usage_plan_on_the_stage_with_its_rate_limit(stack, harness):
    stack.put_route(secured("payments", "/payments/{proxy+}", api_key_required=True,
                            rate_limit={"requests_per_second": 50, "burst": 100}))
    harness.run()

    plan = plans(stack)["turnout-payments"]
    assert plan["apiStages"] == [{"apiId": stack.rest_api_id, "stage": "live"}]
    assert plan["throttle"] == {"rateLimit": 50.0, "burstLimit": 100}
    assert plan["tags"] == {"turnout:route": "payments", "turnout:rest-api": stack.rest_api_id}
    assert stack.api_methods()[("/payments/{proxy+}", "GET")]["apiKeyRequired"] is True
    assert stack.status("payments")["phase"] == "READY"


def test_rate_limit_changes_converge_on_the_plan_and_dropping_api_keys_deletes_it(stack, harness):
    stack.put_route(secured("svc", "/svc", api_key_required=True,
                            rate_limit={"requests_per_second": 5, "burst": 10}))
    harness.run()
    stack.put_route(secured("svc", "/svc", api_key_required=True,
                            rate_limit={"requests_per_second": 7, "burst": 3}))
    harness.run()
    assert plans(stack)["turnout-svc"]["throttle"] == {"rateLimit": 7.0, "burstLimit": 3}

    stack.put_route(secured("svc", "/svc", api_key_required=True))
    harness.run()
    assert "throttle" not in plans(stack)["turnout-svc"]

    stack.put_route(secured("svc", "/svc"))
    harness.run()
    assert plans(stack) == {}


def test_keyless_rate_limit_is_stage_throttling_per_method_and_converges(stack, harness):
    stack.put_route(secured("svc", "/svc/{proxy+}", methods=("GET", "POST"),
                            rate_limit={"requests_per_second": 5, "burst": 10}))
    harness.run()
    settings = method_settings(stack)
    for method in ("GET", "POST"):
        throttle = settings[f"~1svc~1{{proxy+}}/{method}"]
        assert (throttle["throttlingRateLimit"], throttle["throttlingBurstLimit"]) == (5.0, 10)
    assert plans(stack) == {}

    stack.put_route(secured("svc", "/svc/{proxy+}", methods=("GET",),
                            rate_limit={"requests_per_second": 2, "burst": 4}))
    harness.run()
    settings = method_settings(stack)
    get, post = settings["~1svc~1{proxy+}/GET"], settings["~1svc~1{proxy+}/POST"]
    assert (get["throttlingRateLimit"], get["throttlingBurstLimit"]) == (2.0, 4)
    assert (post["throttlingRateLimit"], post["throttlingBurstLimit"]) == (-1.0, -1), \
        "a method the route no longer has is no longer throttled"

    stack.put_route(secured("svc", "/svc/{proxy+}", methods=("GET",)))
    harness.run()
    get = method_settings(stack)["~1svc~1{proxy+}/GET"]
    assert (get["throttlingRateLimit"], get["throttlingBurstLimit"]) == (-1.0, -1)


def test_allowlist_becomes_the_routes_deny_statement_and_is_deployed(stack, harness):
    stack.put_route(secured("payments", "/payments/{proxy+}", allowed_cidrs=["203.0.113.0/24"]))
    harness.run()
    statements = {s["Sid"]: s for s in policy(stack)["Statement"]}
    assert statements["TurnoutInvoke"]["Effect"] == "Allow"
    deny = statements["turnoutpayments"]
    assert deny["Resource"] == ["execute-api:/live/GET/payments/*"]
    assert deny["Condition"] == {"NotIpAddress": {"aws:SourceIp": ["203.0.113.0/24"]}}

    stack.put_route(secured("payments", "/payments/{proxy+}",
                            allowed_cidrs=["203.0.113.0/24", "10.0.0.0/8"]))
    harness.run()
    deny = {s["Sid"]: s for s in policy(stack)["Statement"]}["turnoutpayments"]
    assert deny["Condition"]["NotIpAddress"]["aws:SourceIp"] == ["10.0.0.0/8", "203.0.113.0/24"]
    assert writes(harness) == ["apigateway.UpdateRestApi", "apigateway.CreateDeployment",
                               "apigateway.UpdateStage"], "a policy change is redeployed once"


def test_one_routes_allowlist_neither_opens_nor_closes_another_routes_paths(stack, harness):
    api = stack.aws.client("apigateway")
    hand_written = {"Sid": "Ops", "Effect": "Deny", "Principal": "*",
                    "Action": "execute-api:Invoke", "Resource": "execute-api:/live/*/ops",
                    "Condition": {"NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24"]}}}
    allow = {"Sid": "Everyone", "Effect": "Allow", "Principal": "*",
             "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}
    api.update_rest_api(restApiId=stack.rest_api_id, patchOperations=[
        {"op": "replace", "path": "/policy",
         "value": json.dumps({"Version": "2012-10-17", "Statement": [allow, hand_written]})}])
    stack.put_route(secured("pay", "/pay/{proxy+}", allowed_cidrs=["203.0.113.0/24"]))
    stack.put_route(secured("payments", "/payments/{proxy+}"))
    harness.run()
    stack.put_route(secured("pay", "/pay/{proxy+}", allowed_cidrs=["10.0.0.0/8"]))
    harness.run()

    document = policy(stack)
    assert document["Statement"][:2] == [allow, hand_written]
    prefix = f"arn:aws:execute-api:us-east-1:123456789012:{stack.rest_api_id}"
    rules = ResourcePolicy.parse(json.dumps(document), arn_prefix=prefix)

    def decide(path: str, caller: str) -> Decision:
        return rules.decide(method_arn(prefix, "live", "GET", path), caller)

    assert decide("/payments/x", OUTSIDE) is Decision.ALLOW
    assert decide("/pay/x", OUTSIDE) is Decision.EXPLICIT_DENY
    assert decide("/pay/x", "10.1.2.3") is Decision.ALLOW
    assert decide("/payments/x", "10.1.2.3") is Decision.ALLOW


def test_deleting_routes_removes_their_plan_statement_and_throttling(stack, harness):
    stack.put_route(secured("keyed", "/keyed", api_key_required=True,
                            allowed_cidrs=["203.0.113.0/24"]))
    stack.put_route(secured("limited", "/limited",
                            rate_limit={"requests_per_second": 5, "burst": 5}))
    stack.put_route(secured("keep", "/keep", allowed_cidrs=["10.0.0.0/8"]))
    harness.run()
    assert set(plans(stack)) == {"turnout-keyed"}

    stack.delete_route("keyed")
    stack.delete_route("limited")
    harness.run()
    assert plans(stack) == {}
    assert [s["Sid"] for s in policy(stack)["Statement"]] == ["TurnoutInvoke", "turnoutkeep"]
    limited = method_settings(stack)["~1limited/GET"]
    assert (limited["throttlingRateLimit"], limited["throttlingBurstLimit"]) == (-1.0, -1)


def test_an_unchanged_secured_route_makes_no_writes(stack, harness, aws):
    acl = create_web_acl(aws)
    harness.env["WEB_ACL_ARN"] = acl
    doc = secured("payments", "/payments/{proxy+}", api_key_required=True,
                  allowed_cidrs=["203.0.113.0/24"],
                  rate_limit={"requests_per_second": 5, "burst": 10})
    stack.put_route(doc)
    stack.put_route(secured("open", "/open", rate_limit={"requests_per_second": 1, "burst": 1}))
    harness.run()
    assert writes(harness)

    stack.put_route(doc)
    harness.run()
    assert writes(harness) == []
    harness.resync()
    assert writes(harness) == []


def create_web_acl(aws) -> str:
    visibility = {"SampledRequestsEnabled": False, "CloudWatchMetricsEnabled": False,
                  "MetricName": "acl"}
    return aws.client("wafv2").create_web_acl(
        Name="turnout-gateway", Scope="REGIONAL", DefaultAction={"Allow": {}},
        VisibilityConfig=visibility)["Summary"]["ARN"]


def test_the_web_acl_is_associated_with_the_stage_once(stack, harness, aws):
    acl = create_web_acl(aws)
    harness.env["WEB_ACL_ARN"] = acl
    stack.put_route(secured("svc", "/svc"))
    harness.run()
    stage = (f"arn:aws:apigateway:us-east-1::/restapis/{stack.rest_api_id}/stages/live")
    found = aws.client("wafv2").get_web_acl_for_resource(ResourceArn=stage)["WebACL"]["ARN"]
    assert found == acl
    assert "wafv2.AssociateWebACL" in harness.calls

    stack.put_route(secured("other", "/other"))
    harness.run()
    assert "wafv2.AssociateWebACL" not in harness.calls


def test_resync_deletes_usage_plans_of_gone_routes_but_not_other_apis_plans(stack, harness):
    api = stack.aws.client("apigateway")
    stack.put_route(secured("svc", "/svc", api_key_required=True))
    harness.run()
    other_api = api.create_rest_api(name="someone-else")["id"]
    api.create_usage_plan(name="turnout-ghost", tags={"turnout:route": "ghost",
                                                      "turnout:rest-api": stack.rest_api_id})
    api.create_usage_plan(name="turnout-theirs", tags={"turnout:route": "theirs",
                                                       "turnout:rest-api": other_api})
    harness.resync()
    assert set(plans(stack)) == {"turnout-svc", "turnout-theirs"}


@pytest.mark.parametrize("drift", ["plan deleted", "key missing from the plan"])
def test_issued_keys_are_put_back_into_the_routes_plan(stack, harness, drift):
    api = stack.aws.client("apigateway")
    stack.put_route(secured("svc", "/svc", api_key_required=True))
    harness.run()
    plan = plans(stack)["turnout-svc"]
    key = api.create_api_key(name="client", enabled=True, tags={
        "turnout:route": "svc", "turnout:rest-api": stack.rest_api_id})["id"]
    if drift == "plan deleted":
        api.delete_usage_plan(usagePlanId=plan["id"])
    harness.resync()
    plan = plans(stack)["turnout-svc"]
    keys = api.get_usage_plan_keys(usagePlanId=plan["id"])["items"]
    assert [k["id"] for k in keys] == [key]


def security_state(stack, aws) -> dict:
    """Everything the security component owns, read back, ids left out."""
    stage = f"arn:aws:apigateway:us-east-1::/restapis/{stack.rest_api_id}/stages/live"
    acl = aws.client("wafv2").get_web_acl_for_resource(ResourceArn=stage).get("WebACL") or {}
    api = aws.client("apigateway")
    return {
        "plans": {name: (p.get("throttle"), p["apiStages"],
                         [k["name"] for k in api.get_usage_plan_keys(usagePlanId=p["id"])["items"]])
                  for name, p in plans(stack).items()},
        "policy": policy(stack),
        "throttles": {k: (v["throttlingRateLimit"], v["throttlingBurstLimit"])
                      for k, v in method_settings(stack).items()},
        "web_acl": acl.get("ARN"),
        "phases": {r: stack.status(r)["phase"] for r in ("keyed", "limited")},
    }


@pytest.mark.parametrize("crash_before", [
    "apigateway.UpdateRestApi", "apigateway.CreateUsagePlan", "apigateway.CreateUsagePlanKey",
    "apigateway.UpdateStage"])
def test_a_crash_before_any_security_write_converges_on_the_next_run(stack, harness, aws,
                                                                    crash_before):
    api = aws.client("apigateway")
    harness.env["WEB_ACL_ARN"] = create_web_acl(aws)
    api.create_api_key(name="issued-earlier", enabled=True, tags={
        "turnout:route": "keyed", "turnout:rest-api": stack.rest_api_id})
    stack.put_route(secured("keyed", "/keyed", api_key_required=True,
                            allowed_cidrs=["203.0.113.0/24"],
                            rate_limit={"requests_per_second": 5, "burst": 10}))
    stack.put_route(secured("limited", "/limited",
                            rate_limit={"requests_per_second": 2, "burst": 4}))
    event = stack.next_event()
    harness.fail_next[crash_before] = 1
    try:
        harness.run(event)
    except Exception:  # noqa: BLE001 - the invocation fails as a whole; Lambda retries it
        pass
    assert harness.fail_next[crash_before] == 0, "the crash point was reached"
    harness.run(event)  # the batch is delivered again

    state = security_state(stack, aws)
    assert state["plans"] == {"turnout-keyed": ({"rateLimit": 5.0, "burstLimit": 10},
                                                [{"apiId": stack.rest_api_id, "stage": "live"}],
                                                ["issued-earlier"])}
    assert [s["Sid"] for s in state["policy"]["Statement"]] == ["TurnoutInvoke", "turnoutkeyed"]
    assert state["throttles"] == {"~1limited/GET": (2.0, 4)}
    assert state["web_acl"] == harness.env["WEB_ACL_ARN"]
    assert state["phases"] == {"keyed": "READY", "limited": "READY"}
    harness.run(event)
    assert writes(harness) == []
