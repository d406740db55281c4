"""API keys end to end as a user runs them: ``turnout up``, a route written with the AWS CLI,
keys issued and revoked with ``turnout keys``, calls through the local gateway. The key's
value must appear nowhere but in the one ``keys create`` output."""

from __future__ import annotations

import json

import pytest

from tests.system.harness import EchoUpstream, Turnout

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def turnout():
    t = Turnout()
    yield t
    assert t.stop() == 0, "turnout up must stop cleanly:\n" + "".join(t.output[-20:])


@pytest.fixture
def upstream():
    server = EchoUpstream("keyed")
    yield server
    server.close()


def secure_item(route_id: str, path: str, url: str) -> str:
    return json.dumps({
        "route_id": {"S": route_id},
        "path": {"S": path},
        "methods": {"L": [{"S": "GET"}]},
        "upstreams": {"L": [{"M": {"name": {"S": "main"}, "url": {"S": url},
                                   "priority": {"N": "0"}}}]},
        "security": {"M": {"api_key_required": {"BOOL": True}}},
    })


def capture_events(turnout: Turnout) -> str:
    """An SQS queue receiving every event turnout publishes on its bus."""
    queue_url = json.loads(turnout.aws("sqs", "create-queue", "--queue-name",
                                       "turnout-events-capture"))["QueueUrl"]
    arn = json.loads(turnout.aws("sqs", "get-queue-attributes", "--queue-url", queue_url,
                                 "--attribute-names", "QueueArn"))["Attributes"]["QueueArn"]
    bus = turnout.outputs["EventBusName"]
    turnout.aws("events", "put-rule", "--name", "capture-all", "--event-bus-name", bus,
                "--event-pattern", json.dumps({"source": ["turnout"]}))
    turnout.aws("events", "put-targets", "--rule", "capture-all", "--event-bus-name", bus,
                "--targets", json.dumps([{"Id": "q", "Arn": arn}]))
    return queue_url


def drain(turnout: Turnout, queue_url: str) -> list[str]:
    bodies = []
    while True:
        messages = json.loads(turnout.aws("sqs", "receive-message", "--queue-url", queue_url,
                                          "--max-number-of-messages", "10") or "{}"
                              ).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            turnout.aws("sqs", "delete-message", "--queue-url", queue_url,
                        "--receipt-handle", message["ReceiptHandle"])


def test_key_opens_an_api_key_route_until_it_is_revoked_and_its_value_leaks_nowhere(
        turnout, upstream):
    events = capture_events(turnout)
    turnout.aws("dynamodb", "put-item", "--table-name", turnout.outputs["RoutesTableName"],
                "--item", secure_item("secure", "/secure/{proxy+}", upstream.url))
    turnout.wait_for(lambda: turnout.statuses().get("secure", {}).get("phase") == "READY",
                     what="secure READY")
    turnout.wait_for(lambda: turnout.call("GET", "/secure/x")[0] == 403, what="403 without key")
    status, _, body = turnout.call("GET", "/secure/x")
    assert (status, body) == (403, b'{"message":"Forbidden"}')

    created = turnout.wait_for(
        lambda: (r := turnout.turnout("keys", "create", "--route", "secure")).returncode == 0
        and r, what="keys create")
    fields = dict(line.split(":", 1) for line in created.stdout.splitlines() if ":" in line)
    key_id, value = fields["id"].strip(), fields["value"].strip()
    turnout.wait_for(lambda: turnout.call("GET", "/secure/x", headers={"x-api-key": value})[0]
                     == 200, what="200 with the key")
    assert upstream.requests[-1]["path"] == "/secure/x"

    listed = turnout.turnout("keys", "list", "--route", "secure")
    assert key_id in listed.stdout and value not in listed.stdout

    revoked = turnout.turnout("keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    turnout.wait_for(lambda: turnout.call("GET", "/secure/x", headers={"x-api-key": value})[0]
                     == 403, what="403 after revoke")

    published = drain(turnout, events)
    assert any('"Route Ready"' in body for body in published)
    assert all(value not in body for body in published)
    assert value not in "".join(turnout.output)
