"""The reconciler converges: after drift, lost events, crashes at any write, and throttling."""

from __future__ import annotations

import json
import random

import pytest
from botocore.awsrequest import AWSResponse

from control_plane.adapters.throttle import is_write
from tests.functional.stack import Harness, Stack, route
from tests.reliability.fault_handlers import RawBody


class Crash(BaseException):
    """The process dies: nothing in the handler can catch this."""


def world(stack: Stack) -> dict:
    """Everything a user could observe of the reconciler's work, ids excluded."""
    methods = {
        f"{m} {p}": {
            "key": body.get("apiKeyRequired"),
            "owner": body.get("operationName"),
            "integration": {k: body.get("methodIntegration", {}).get(k)
                            for k in ("type", "uri", "timeoutInMillis", "requestParameters")},
        }
        for (p, m), body in stack.api_methods().items()
    }
    statuses = {}
    for rid in ("a", "b", "c"):
        s = stack.status(rid)
        if s:
            statuses[rid] = {k: s.get(k) for k in ("phase", "reason", "observed_spec_hash",
                                                  "active_upstream")}
    return {"paths": sorted(stack.api_paths()), "methods": methods,
            "variables": stack.stage_variables(), "statuses": statuses}


def test_resync_repairs_drift_made_by_hand_and_removes_what_no_route_owns(stack, harness):
    stack.put_route(route("a", "/a/{id}", "https://a.example", methods=["GET"]))
    harness.run()
    apigw = stack.aws.client("apigateway")
    resources = {r["path"]: r["id"] for r in apigw.get_resources(restApiId=stack.rest_api_id)["items"]}
    # drift: someone deletes our method, adds their own, and leaves a stray resource
    apigw.delete_method(restApiId=stack.rest_api_id, resourceId=resources["/a/{id}"], httpMethod="GET")
    stray = apigw.create_resource(restApiId=stack.rest_api_id, parentId=resources["/"], pathPart="stray")
    apigw.put_method(restApiId=stack.rest_api_id, resourceId=stray["id"], httpMethod="GET",
                     authorizationType="NONE")
    apigw.put_integration(restApiId=stack.rest_api_id, resourceId=stray["id"], httpMethod="GET",
                          type="HTTP_PROXY", integrationHttpMethod="GET", uri="https://stray.example")
    # ...and deploys it, with the route's stage variable pointed elsewhere
    hand_made = apigw.create_deployment(restApiId=stack.rest_api_id, description="by hand")
    apigw.update_stage(restApiId=stack.rest_api_id, stageName=stack.stage, patchOperations=[
        {"op": "replace", "path": "/deploymentId", "value": hand_made["id"]},
        {"op": "replace", "path": "/variables/a", "value": "evil.example"}])

    summary = harness.resync()

    assert set(stack.api_methods()) == {("/a/{id}", "GET")}
    assert stack.api_paths() == {"/", "/a", "/a/{id}"}
    assert summary["deployments"] == 1  # the hand-made deployment is replaced
    # a stage variable holds the active upstream, which failover owns: resync keeps the route's
    # own choice (the status item), never a value typed into the console
    assert stack.stage_variables() == {"a": "a.example"}
    assert harness.resync()["writes"] == 0


def test_undeployed_drift_is_repaired_without_a_deployment(stack, harness):
    stack.put_route(route("a", "/a", "https://a.example", methods=["GET"]))
    harness.run()
    apigw = stack.aws.client("apigateway")
    resources = {r["path"]: r["id"] for r in apigw.get_resources(restApiId=stack.rest_api_id)["items"]}
    apigw.delete_method(restApiId=stack.rest_api_id, resourceId=resources["/a"], httpMethod="GET")

    summary = harness.resync()

    assert set(stack.api_methods()) == {("/a", "GET")}
    assert summary["deployments"] == 0  # what is deployed never changed


def test_resync_reconciles_a_route_whose_stream_event_was_lost(stack, harness):
    stack.put_route(route("a", "/a", "https://a.example"))
    stack.next_event()  # the event is consumed and dropped
    assert stack.status("a") is None
    harness.resync()
    assert stack.status("a")["phase"] == "READY"
    stack.delete_route("a")
    stack.next_event()
    harness.resync()
    assert stack.api_paths() == {"/"}
    assert stack.status("a")["phase"] == "DELETED"


@pytest.mark.slow
def test_noop_resync_of_200_routes_makes_zero_writes(stack, harness):
    for i in range(200):
        stack.put_route(route(f"r{i}", f"/r{i}", f"https://r{i}.example", methods=["GET"]))
    harness.run()
    assert stack.status("r199")["phase"] == "READY"
    stack.published_events()

    summary = harness.resync()

    writes = [c for c in harness.calls if is_write(c.split(".", 1)[1])]
    assert writes == []
    assert summary["writes"] == 0 and summary["routes"] == 200
    assert stack.published_events() == []


def test_a_rejected_route_converges_when_the_owner_of_its_path_is_deleted(stack, harness):
    stack.put_route(route("first", "/shared", "https://a.example", methods=["GET"]))
    harness.run()
    stack.put_route(route("second", "/shared", "https://b.example", methods=["GET"]))
    harness.run()
    assert stack.status("second")["reason"] == "PathConflict"

    stack.delete_route("first")  # the second route's item is not rewritten
    harness.run()
    assert stack.status("second")["phase"] == "READY"
    assert stack.api_methods()[("/shared", "GET")]["operationName"] == "turnout-second"
    assert stack.stage_variables() == {"second": "b.example"}


def _scenario(stack: Stack) -> None:
    stack.put_route(route("a", "/a/{proxy+}", "https://a.example", "https://a2.example"))
    stack.put_route(route("b", "/b/{id}", "https://b.example", methods=["PUT"]))
    stack.put_route(route("c", "/c", "ftp://bad.example"))


def _writes_of_clean_run(aws, monkeypatch) -> tuple[int, dict]:
    aws.reset()
    stack = Stack(aws).create()
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.url)
    harness = Harness(stack)
    _scenario(stack)
    harness.run()
    return len([c for c in harness.calls if is_write(c.split(".", 1)[1])]), world(stack)


def test_a_crash_before_any_write_converges_to_the_uninterrupted_result(aws, monkeypatch):
    total, expected = _writes_of_clean_run(aws, monkeypatch)
    assert total >= 10
    for k in range(1, total + 1):
        aws.reset()
        stack = Stack(aws).create()
        harness = Harness(stack)
        _scenario(stack)
        event = stack.next_event()
        seen = {"writes": 0}

        def crash_before_kth_write(model, seen=seen, k=k, **kwargs):
            if is_write(model.name):
                seen["writes"] += 1
                if seen["writes"] == k:
                    raise Crash(f"killed before write {k}: {model.name}")

        harness.session_events.register("before-call", crash_before_kth_write)
        with pytest.raises(Crash):
            harness.run(event)
        harness.session_events.unregister("before-call", crash_before_kth_write)

        harness.run(event)  # Lambda delivers the batch again
        assert world(stack) == expected, f"after a crash before write {k}"
        harness.run(event)
        assert [c for c in harness.calls if c.startswith("apigateway.") and is_write(c.split(".")[1])] == []


@pytest.mark.slow
def test_a_batch_of_100_routes_converges_with_30_percent_of_api_gateway_calls_throttled(stack, harness):
    for i in range(100):
        stack.put_route(route(f"t{i}", f"/t{i}", f"https://t{i}.example", methods=["GET"]))
    event = stack.next_event()
    rng = random.Random(7)
    throttled = {"n": 0}

    def throttle_30_percent(request, event_name, **kwargs):
        if event_name.startswith("before-send.api-gateway") and rng.random() < 0.3:
            throttled["n"] += 1
            body = json.dumps({"message": "Too Many Requests"}).encode()
            return AWSResponse(request.url, 429, {"x-amzn-ErrorType": "TooManyRequestsException",
                                                  "Content-Type": "application/json"},
                               RawBody(body))
        return None

    harness.session_events.register("before-send", throttle_30_percent)
    failures_per_attempt = []
    records = event["Records"]
    for _attempt in range(6):  # the mapping's MaximumRetryAttempts is 5
        result = harness.run({"Records": records})
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        failures_per_attempt.append(len(failed))
        if not failed:
            break
        # Lambda retries from the lowest failed sequence number
        first = min(failed, key=int)
        records = [r for r in records if int(r["dynamodb"]["SequenceNumber"]) >= int(first)]
    harness.session_events.unregister("before-send", throttle_30_percent)

    assert failures_per_attempt[-1] == 0, f"still failing after retries: {failures_per_attempt}"
    assert throttled["n"] > 50
    assert all(stack.status(f"t{i}")["phase"] == "READY" for i in range(100))
    assert len(stack.stage_variables()) == 100
    assert len(stack.api_methods()) == 100


def test_a_reconcile_never_undoes_a_failover_that_happened_while_it_ran(stack, harness):
    ddb, apigw = stack.aws.client("dynamodb"), stack.aws.client("apigateway")
    failover = {"armed": False, "done": False}

    def failover_before_the_status_write(params, **kwargs):
        if not failover["armed"] or params.get("Item", {}).get("kind") != {"S": "status"}:
            return
        failover["armed"], failover["done"] = False, True
        # the failover workflow's two writes, in its own order: the status, then the stage
        ddb.update_item(TableName=stack.state_table,
                        Key={"route_id": {"S": "a"}, "kind": {"S": "status"}},
                        UpdateExpression="SET active_upstream = :to, active_url = :u",
                        ExpressionAttributeValues={":to": {"S": "u1"},
                                                   ":u": {"S": "https://b.example"}})
        apigw.update_stage(restApiId=stack.rest_api_id, stageName=stack.stage, patchOperations=[
            {"op": "replace", "path": "/variables/a", "value": "b.example"}])

    harness.session_events.register("before-parameter-build.dynamodb.PutItem",
                                    failover_before_the_status_write)
    stack.put_route(route("a", "/a", "https://a.example", "https://b.example", methods=["GET"]))
    harness.run()
    stack.put_route(route("a", "/a", "https://a.example", "https://b.example",
                          methods=["GET", "DELETE"]))
    failover["armed"] = True
    harness.run()

    assert failover["done"]
    status = stack.status("a")
    assert (status["phase"], status["active_upstream"], status["active_url"]) == (
        "READY", "u1", "https://b.example")
    assert status["message"] == "Serving DELETE, GET /a from upstream 'u1'."
    assert set(stack.api_methods()) == {("/a", "GET"), ("/a", "DELETE")}
    assert stack.stage_variables() == {"a": "b.example"}
    ready = [e for e in stack.published_events() if e["detail-type"] == "Route Ready"]
    assert ready[-1]["detail"]["active_upstream"] == "u1"
