"""The whole stack as a new user runs it: ``turnout up`` in a subprocess, routes written with the
real AWS CLI, real HTTP upstreams, calls through the local gateway."""

from __future__ import annotations

import json

import pytest

from tests.system.harness import EchoUpstream, Turnout, route_item

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def turnout():
    t = Turnout()
    yield t
    code = t.stop()
    assert code == 0, "turnout up must stop cleanly on Ctrl-C:\n" + "".join(t.output[-20:])
    assert "stopped" in "".join(t.output[-5:])


@pytest.fixture
def upstreams():
    a, b = EchoUpstream("a"), EchoUpstream("b")
    yield a, b
    a.close()
    b.close()


def test_route_written_with_the_aws_cli_serves_moves_and_disappears(turnout, upstreams):
    a, b = upstreams
    table = turnout.outputs["RoutesTableName"]

    assert turnout.call("GET", "/echo/x")[0] == 403
    turnout.aws("dynamodb", "put-item", "--table-name", table,
                "--item", route_item("echo", "/echo/{proxy+}", a.url))
    turnout.wait_for(lambda: turnout.statuses().get("echo", {}).get("phase") == "READY",
                     what="echo READY")

    status, headers, body = turnout.call(
        "POST", "/echo/deep/path?x=1&x=2&y=%C3%A9", body=b'{"hello": "world"}',
        headers={"Content-Type": "application/json", "X-Client-Trace": "t-123",
                 "Connection": "keep-alive, X-Drop-Me", "X-Drop-Me": "hop"})
    assert status == 200
    assert headers["X-Upstream"] == "a"
    seen = json.loads(body)
    assert seen["method"] == "POST"
    assert seen["path"] == "/echo/deep/path?x=1&x=2&y=%C3%A9"
    assert seen["body"] == '{"hello": "world"}'
    assert seen["headers"]["x-client-trace"] == "t-123"
    assert seen["headers"]["content-type"] == "application/json"
    assert "x-drop-me" not in seen["headers"]
    assert seen["headers"]["x-forwarded-for"].endswith("127.0.0.1")

    # the item rewritten with another upstream moves the traffic
    turnout.aws("dynamodb", "put-item", "--table-name", table,
                "--item", route_item("echo", "/echo/{proxy+}", b.url))
    turnout.wait_for(lambda: turnout.call("GET", "/echo/ping")[1].get("X-Upstream") == "b",
                     what="traffic on upstream b")
    assert b.requests[-1]["path"] == "/echo/ping"

    # deleting the item makes the path answer 403 again
    turnout.aws("dynamodb", "delete-item", "--table-name", table,
                "--key", json.dumps({"route_id": {"S": "echo"}}))
    turnout.wait_for(lambda: turnout.call("GET", "/echo/ping")[0] == 403, what="403 after delete")
    turnout.wait_for(lambda: turnout.statuses().get("echo", {}).get("phase") == "DELETED",
                     what="status DELETED")


def test_malformed_items_are_rejected_visibly_while_a_valid_one_in_the_batch_is_served(turnout, upstreams):
    a, _ = upstreams
    table = turnout.outputs["RoutesTableName"]
    batch = {table: [
        {"PutRequest": {"Item": json.loads(route_item("metadata", "/meta", "https://169.254.169.254"))}},
        {"PutRequest": {"Item": {"route_id": {"S": "no-upstreams"}, "path": {"S": "/none"}}}},
        {"PutRequest": {"Item": json.loads(route_item("good", "/good", a.url))}},
    ]}
    turnout.aws("dynamodb", "batch-write-item", "--request-items", json.dumps(batch))
    def settled() -> bool:
        phases = {rid: s.get("phase") for rid, s in turnout.statuses().items()}
        return all(phases.get(rid) not in (None, "PENDING")
                   for rid in ("metadata", "no-upstreams", "good"))

    turnout.wait_for(settled, what="three settled statuses")

    statuses = turnout.statuses()
    assert statuses["good"]["phase"] == "READY"
    assert statuses["metadata"]["phase"] == "REJECTED"
    assert statuses["metadata"]["reason"] == "UpstreamAddressNotAllowed"
    assert statuses["no-upstreams"]["phase"] == "REJECTED"
    assert statuses["no-upstreams"]["reason"] == "MissingField"
    assert turnout.call("GET", "/good")[0] == 200

    table_view = turnout.turnout("routes", "status", "--wide").stdout
    assert "UpstreamAddressNotAllowed" in table_view and "upstreams[0].url" in table_view

    attrs = json.loads(turnout.aws("sqs", "get-queue-attributes", "--queue-url",
                                   turnout.outputs["ReconcileFailureQueueUrl"],
                                   "--attribute-names", "All"))["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
