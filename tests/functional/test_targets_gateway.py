"""A `targets` route called through the local gateway, which plays API Gateway and the internal
ALB: the route is reconciled by the real handler on the embedded AWS endpoint, its targets are
real HTTP servers on 127.0.0.1, and health comes from the state table as the prober writes it."""

from __future__ import annotations

import http.client
import json
from collections import Counter
from collections.abc import Iterator

import pytest
from aiohttp import web

from control_plane.model.health import TargetState, UpstreamHealth
from control_plane.model.item import to_item
from data_plane.gateway_config import ConfigSource, apigateway_client
from data_plane.local_gateway import LocalGateway
from data_plane.server_thread import ServerThread
from tests.conftest import free_port
from tests.functional.stack import Harness
from tests.functional.targets_stack import NOT_FOUND_BODY, TargetsStack


def named_upstream(name: str) -> web.Application:
    async def describe(request: web.Request) -> web.Response:
        return web.json_response({
            "upstream": name, "path": request.rel_url.raw_path,
            "query": request.rel_url.raw_query_string,
            "headers": {k: v for k, v in request.headers.items()},
        })

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", describe)
    return app


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, ServerThread]]:
    servers = {name: ServerThread(lambda n=name: named_upstream(n), name=f"target-{name}",
                                  shutdown_timeout_seconds=0.5) for name in ("one", "two")}
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def stack(aws) -> TargetsStack:
    return TargetsStack(aws).create()


@pytest.fixture
def harness(stack, monkeypatch) -> Harness:
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack.aws.url)
    return Harness(stack)


class Served:
    """The stage served by a local gateway; ``refresh()`` re-reads the configuration."""

    def __init__(self, stack: TargetsStack) -> None:
        self.source = ConfigSource(apigateway_client(stack.aws.url, region=stack.aws.region),
                                   rest_api_id=stack.rest_api_id, stage_name=stack.stage,
                                   refresh_interval_seconds=60)
        self.source.start()
        self.gateway = LocalGateway(self.source, port=0, access_log=None)
        self.gateway.start()

    def refresh(self) -> None:
        assert self.source.refresh_now()

    def call(self, target: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.gateway.port, timeout=10)
        try:
            conn.request("GET", target, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def upstreams_seen(self, count: int, target: str = "/shop/x") -> Counter:
        seen: Counter = Counter()
        for _ in range(count):
            status, _, body = self.call(target)
            assert status == 200, body
            seen[json.loads(body)["upstream"]] += 1
        return seen

    def stop(self) -> None:
        self.gateway.stop()
        self.source.stop()


@pytest.fixture
def served(stack) -> Iterator[Served]:
    served = Served(stack)
    yield served
    served.stop()


def shop(*upstreams: dict) -> dict:
    return {"route_id": "shop", "path": "/shop/{proxy+}", "methods": ["GET"],
            "upstreams": list(upstreams)}


def targets(name: str, priority: int, *servers: ServerThread) -> dict:
    return {"name": name, "priority": priority,
            "targets": [{"ip": "127.0.0.1", "port": s.port} for s in servers]}


def write_health(stack: TargetsStack, upstream: str, states: dict[ServerThread, TargetState]):
    item = UpstreamHealth("shop", upstream, {f"127.0.0.1:{s.port}": state
                                             for s, state in states.items()}).to_item()
    stack.aws.client("dynamodb").put_item(TableName=stack.state_table, Item=to_item(item))


def test_a_targets_route_reaches_the_active_upstream_through_the_alb(
        stack, harness, served, upstreams):
    stack.put_route(shop(targets("one", 0, upstreams["one"]), targets("two", 1, upstreams["two"])))
    harness.run()
    served.refresh()

    status, _, body = served.call("/shop/a/b?x=1&x=2", headers={"X-Turnout-Route": "other"})
    assert status == 200, body
    seen = json.loads(body)
    assert seen["upstream"] == "one"
    assert (seen["path"], seen["query"]) == ("/shop/a/b", "x=1&x=2")
    assert seen["headers"]["Host"] == stack.load_balancer_dns
    assert seen["headers"]["X-Turnout-Route"] == "shop"
    assert served.upstreams_seen(10) == Counter({"one": 10})


def test_rule_weights_decide_which_upstream_serves(stack, harness, served, upstreams):
    stack.put_route(shop(targets("one", 0, upstreams["one"]), targets("two", 1, upstreams["two"])))
    harness.run()
    groups = stack.target_groups()
    [rule] = stack.rules()
    stack.aws.client("elbv2").modify_rule(RuleArn=rule["RuleArn"], Actions=[{
        "Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": groups["shop/one"]["TargetGroupArn"], "Weight": 0},
            {"TargetGroupArn": groups["shop/two"]["TargetGroupArn"], "Weight": 1}]}}])
    served.refresh()
    assert served.upstreams_seen(10) == Counter({"two": 10})

    stack.put_route(shop(targets("one", 0, upstreams["one"]), targets("two", 0, upstreams["two"])))
    harness.run()
    served.refresh()
    assert set(served.upstreams_seen(40)) == {"one", "two"}


def test_unhealthy_targets_get_no_traffic_until_all_are_unhealthy(
        stack, harness, served, upstreams):
    one, two = upstreams["one"], upstreams["two"]
    stack.put_route(shop(targets("pool", 0, one, two)))
    harness.run()
    served.refresh()
    assert served.upstreams_seen(10) == Counter({"one": 5, "two": 5})

    write_health(stack, "pool", {one: TargetState.UNHEALTHY, two: TargetState.HEALTHY})
    served.refresh()
    assert served.upstreams_seen(10) == Counter({"two": 10})

    write_health(stack, "pool", {one: TargetState.UNHEALTHY, two: TargetState.UNHEALTHY})
    served.refresh()
    assert served.upstreams_seen(10) == Counter({"one": 5, "two": 5})


def test_a_dead_target_is_a_bad_gateway_and_no_matching_rule_is_the_listeners_404(
        stack, harness, served):
    closed = free_port()
    stack.put_route(shop({"name": "gone", "priority": 0,
                          "targets": [{"ip": "127.0.0.1", "port": closed}]}))
    harness.run()
    served.refresh()
    status, headers, body = served.call("/shop/x")
    assert status == 502
    assert b"502 Bad Gateway" in body
    assert headers.get("x-amzn-Remapped-Server") == "awselb/2.0"

    [rule] = stack.rules()
    stack.aws.client("elbv2").delete_rule(RuleArn=rule["RuleArn"])
    served.refresh()
    status, _, body = served.call("/shop/x")
    assert (status, body.decode()) == (404, NOT_FOUND_BODY)
