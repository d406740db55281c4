"""In-VPC targets as a user runs them: ``turnout up`` in a subprocess, a `targets` route written
with the real AWS CLI, real HTTP servers on 127.0.0.1 as targets behind the emulated ALB."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from tests.system.harness import EchoUpstream, Turnout

# A second `turnout up` costs about a minute; the default run leaves it to CI's `-m slow`.
pytestmark = [pytest.mark.system, pytest.mark.slow]


@pytest.fixture(scope="module")
def turnout():
    t = Turnout()
    yield t
    assert t.stop() == 0, "turnout up must stop cleanly on Ctrl-C:\n" + "".join(t.output[-20:])


@pytest.fixture
def upstreams():
    a, b = EchoUpstream("a"), EchoUpstream("b")
    yield a, b
    a.close()
    b.close()


def target(upstream: EchoUpstream) -> dict:
    return {"M": {"ip": {"S": "127.0.0.1"}, "port": {"N": str(urlsplit(upstream.url).port)}}}


def targets_item(*pools: tuple[str, int, list[EchoUpstream]]) -> str:
    return json.dumps({
        "route_id": {"S": "shop"},
        "path": {"S": "/shop/{proxy+}"},
        "methods": {"L": [{"S": "GET"}]},
        "upstreams": {"L": [{"M": {"name": {"S": name}, "priority": {"N": str(priority)},
                                   "targets": {"L": [target(u) for u in members]}}}
                            for name, priority, members in pools]},
    })


def upstream_of(turnout: Turnout) -> str | None:
    status, headers, _ = turnout.call("GET", "/shop/item?id=7")
    return headers.get("X-Upstream") if status == 200 else None


def test_targets_route_written_with_the_aws_cli_is_served_through_the_alb(turnout, upstreams):
    a, b = upstreams
    table = turnout.outputs["RoutesTableName"]
    turnout.aws("dynamodb", "put-item", "--table-name", table,
                "--item", targets_item(("blue", 0, [a]), ("green", 1, [b])))
    turnout.wait_for(lambda: turnout.statuses().get("shop", {}).get("phase") == "READY",
                     what="shop READY")
    turnout.wait_for(lambda: upstream_of(turnout) == "a", what="traffic on a")
    seen = a.requests[-1]
    assert seen["path"] == "/shop/item?id=7"
    assert seen["headers"]["x-turnout-route"] == "shop"
    assert seen["headers"]["host"] == turnout.outputs["TargetsLoadBalancerDnsName"].lower()

    # a failover is one change of the rule's weights
    listener = turnout.outputs["TargetsListenerArn"]
    [rule] = [r for r in json.loads(turnout.aws("elbv2", "describe-rules", "--listener-arn",
                                                listener))["Rules"] if not r["IsDefault"]]
    groups = [g["TargetGroupArn"] for g in rule["Actions"][0]["ForwardConfig"]["TargetGroups"]]
    turnout.aws("elbv2", "modify-rule", "--rule-arn", rule["RuleArn"], "--actions", json.dumps([
        {"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": groups[0], "Weight": 0},
            {"TargetGroupArn": groups[1], "Weight": 1}]}}]))
    turnout.wait_for(lambda: upstream_of(turnout) == "b", what="traffic on b")

    # one pool of two targets; the prober's health item takes one out of rotation
    turnout.aws("dynamodb", "put-item", "--table-name", table,
                "--item", targets_item(("pool", 0, [a, b])))
    turnout.wait_for(lambda: {upstream_of(turnout) for _ in range(4)} == {"a", "b"},
                     what="round robin over a and b")
    turnout.aws("dynamodb", "put-item", "--table-name", turnout.outputs["StateTableName"],
                "--item", json.dumps({
                    "route_id": {"S": "shop"}, "kind": {"S": "health#pool"},
                    "targets": {"M": {f"127.0.0.1:{urlsplit(a.url).port}": {"S": "unhealthy"}}}}))
    turnout.wait_for(lambda: {upstream_of(turnout) for _ in range(4)} == {"b"},
                     what="only the healthy target b")

    turnout.aws("dynamodb", "delete-item", "--table-name", table,
                "--key", json.dumps({"route_id": {"S": "shop"}}))
    turnout.wait_for(lambda: turnout.call("GET", "/shop/x")[0] == 403, what="403 after delete")
    rules = json.loads(turnout.aws("elbv2", "describe-rules", "--listener-arn", listener))["Rules"]
    assert [r for r in rules if not r["IsDefault"]] == []
