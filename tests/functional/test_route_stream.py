"""The real route-stream handler on the embedded AWS endpoint, fed real stream records."""

from __future__ import annotations

import pytest

from tests.functional.stack import route


def test_valid_route_is_served_through_a_stage_variable_and_reported_ready(stack, harness):
    stack.put_route(route("payments", "/payments/{proxy+}", "https://api.payments.example",
                          "https://backup.payments.example/v2"))
    result = harness.run()

    assert result == {"batchItemFailures": []}
    methods = stack.api_methods()
    assert set(methods) == {("/payments/{proxy+}", "GET"), ("/payments/{proxy+}", "POST")}
    integration = methods[("/payments/{proxy+}", "GET")]["methodIntegration"]
    assert integration["type"] == "HTTP_PROXY"
    assert integration["uri"] == "https://${stageVariables.payments}/payments/{proxy}"
    assert stack.stage_variables() == {"payments": "api.payments.example"}
    status = stack.status("payments")
    assert status["phase"] == "READY"
    assert status["active_upstream"] == "u0"
    events = stack.published_events()
    assert [(e["detail-type"], e["detail"]["route_id"]) for e in events] == [("Route Ready", "payments")]


def test_bad_items_are_rejected_with_reasons_while_good_ones_in_the_batch_become_ready(stack, harness):
    stack.put_route(route("metadata", "/meta", "http://169.254.169.254", methods=["GET"]))
    stack.put_route({"route_id": "no-upstreams", "path": "/nothing"})
    stack.put_route(route("orders", "/orders", "https://orders.example"))
    result = harness.run()

    assert result == {"batchItemFailures": []}
    meta = stack.status("metadata")
    assert meta["phase"] == "REJECTED"
    assert meta["reason"] in {"UpstreamAddressNotAllowed", "UpstreamSchemeNotAllowed"}
    assert "upstreams[0].url" in meta["message"]
    missing = stack.status("no-upstreams")
    assert missing["phase"] == "REJECTED" and missing["reason"] == "MissingField"
    assert "upstreams" in missing["message"]
    assert stack.status("orders")["phase"] == "READY"
    assert {p for p, _ in stack.api_methods()} == {"/orders"}
    kinds = sorted((e["detail-type"], e["detail"]["route_id"]) for e in stack.published_events())
    assert kinds == [("Route Ready", "orders"), ("Route Rejected", "metadata"),
                     ("Route Rejected", "no-upstreams")]


def test_second_reconcile_of_an_unchanged_route_makes_no_api_gateway_writes(stack, harness):
    doc = route("payments", "/payments/{proxy+}", "https://api.payments.example")
    stack.put_route(doc)
    harness.run()
    assert harness.apigateway_writes(), "the first run must have created the route"
    assert [e["detail-type"] for e in stack.published_events()] == ["Route Ready"]

    stack.put_route(doc)  # an identical put still emits a MODIFY record
    harness.run()
    assert harness.apigateway_writes() == []
    assert stack.published_events() == []  # nothing changed, nothing to announce


def test_one_deployment_for_a_batch_of_many_routes(stack, harness):
    for i in range(8):
        stack.put_route(route(f"svc-{i}", f"/svc{i}", f"https://svc{i}.example"))
    harness.run()
    assert harness.calls.count("apigateway.CreateDeployment") == 1
    assert len(stack.stage_variables()) == 8


def test_changing_the_upstream_url_only_updates_the_stage_variable(stack, harness):
    stack.put_route(route("payments", "/payments", "https://a.example"))
    harness.run()
    stack.put_route(route("payments", "/payments", "https://b.example:8443/base"))
    harness.run()
    assert stack.stage_variables() == {"payments": "b.example:8443/base"}
    assert harness.apigateway_writes() == ["apigateway.UpdateStage"]


def test_changing_path_and_methods_moves_the_route_and_cleans_up(stack, harness):
    stack.put_route(route("svc", "/old/deep/path", "https://a.example", methods=["GET"]))
    harness.run()
    stack.put_route(route("svc", "/new/{id}", "https://a.example", methods=["PUT", "DELETE"]))
    harness.run()
    assert set(stack.api_methods()) == {("/new/{id}", "PUT"), ("/new/{id}", "DELETE")}
    assert stack.api_paths() == {"/", "/new", "/new/{id}"}
    integ = stack.api_methods()[("/new/{id}", "PUT")]["methodIntegration"]
    assert integ["requestParameters"] == {"integration.request.path.id": "method.request.path.id"}


def test_deleting_a_route_removes_everything_it_owned(stack, harness):
    stack.put_route(route("keep", "/keep", "https://k.example"))
    stack.put_route(route("gone", "/gone/{proxy+}", "https://g.example"))
    harness.run()
    stack.delete_route("gone")
    harness.run()
    assert stack.api_paths() == {"/", "/keep"}
    assert stack.stage_variables() == {"keep": "k.example"}
    assert stack.status("gone")["phase"] == "DELETED"
    assert stack.published_events()[-1]["detail-type"] == "Route Deleted"

    stack.delete_route("keep")
    harness.run()
    assert stack.api_paths() == {"/"}
    assert stack.stage_variables() is None  # no method left: the stage goes too


def test_second_route_claiming_the_same_path_and_method_is_rejected_naming_the_owner(stack, harness):
    stack.put_route(route("first", "/shared", "https://a.example", methods=["GET"]))
    harness.run()
    stack.put_route(route("second", "/shared", "https://b.example", methods=["GET", "POST"]))
    harness.run()
    status = stack.status("second")
    assert status["phase"] == "REJECTED" and status["reason"] == "PathConflict"
    assert "'first'" in status["message"]
    assert set(stack.api_methods()) == {("/shared", "GET")}


def test_an_invalid_update_keeps_the_previous_version_serving(stack, harness):
    stack.put_route(route("svc", "/svc", "https://a.example"))
    harness.run()
    stack.put_route(route("svc", "/svc", "http://10.0.0.1"))
    harness.run()
    status = stack.status("svc")
    assert status["phase"] == "REJECTED"
    assert "previous valid version keeps serving" in status["message"]
    assert stack.stage_variables() == {"svc": "a.example"}


def test_throttled_record_is_reported_failed_and_converges_on_retry(stack, harness):
    stack.put_route(route("a", "/a", "https://a.example"))
    stack.put_route(route("b", "/b", "https://b.example"))
    event = stack.next_event()
    harness.fail_next["apigateway.PutMethod"] = 1  # answered TooManyRequests once
    result = harness.run(event)
    failed = result["batchItemFailures"]
    first_sequence = event["Records"][0]["dynamodb"]["SequenceNumber"]
    assert len(failed) == 1 and failed[0]["itemIdentifier"] == first_sequence
    assert stack.status("b")["phase"] == "READY"

    harness.run(event)  # Lambda redelivers the batch
    assert stack.status("a")["phase"] == "READY"
    assert set(stack.api_methods()) == {("/a", "GET"), ("/a", "POST"), ("/b", "GET"), ("/b", "POST")}


def test_a_crash_before_the_deployment_is_repaired_by_the_next_run(stack, harness):
    stack.put_route(route("a", "/a", "https://a.example"))
    event = stack.next_event()
    harness.fail_next["apigateway.CreateDeployment"] = 1
    with pytest.raises(Exception):  # noqa: B017 - the invocation fails as a whole
        harness.run(event)
    harness.run(event)
    assert stack.stage_variables() == {"a": "a.example"}
    assert stack.status("a")["phase"] == "READY"
    harness.run(event)
    assert harness.apigateway_writes() == []


def test_every_published_event_matches_its_schema(stack, harness):
    import json
    from pathlib import Path

    import jsonschema

    schemas = {}
    for path in (Path(__file__).parents[2] / "schemas/events").glob("*.schema.json"):
        doc = json.loads(path.read_text())
        schemas[doc["properties"]["detail-type"]["const"]] = doc
    stack.put_route(route("ok", "/ok", "https://ok.example"))
    stack.put_route(route("bad", "/bad", "ftp://bad.example"))
    harness.run()
    stack.delete_route("ok")
    harness.run()
    events = stack.published_events()
    assert {e["detail-type"] for e in events} == {"Route Ready", "Route Rejected", "Route Deleted"}
    for event in events:
        jsonschema.validate(event, schemas[event["detail-type"]],
                            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
