"""The local gateway enforcing what the reconciler configured, as API Gateway does: the
resource policy's ``aws:SourceIp`` allowlists, API keys from usage plans, and throttling.

Routes are reconciled by the real handler, keys issued and revoked with ``turnout keys``,
the gateway reads the embedded AWS endpoint and forwards to a real upstream on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator

import pytest

from control_plane.cli import main
from data_plane.gateway_config import ConfigSource
from data_plane.local_gateway import LocalGateway
from tests.functional.stack import route
from tests.system.harness import EchoUpstream


@pytest.fixture
def upstream() -> Iterator[EchoUpstream]:
    server = EchoUpstream("up")
    yield server
    server.close()


@pytest.fixture
def world(stack, harness, upstream):
    harness.env["TURNOUT_ALLOW_LOOPBACK_UPSTREAMS"] = "true"
    source = ConfigSource.for_endpoint(stack.aws.url, region="us-east-1",
                                       rest_api_id=stack.rest_api_id, stage_name="live",
                                       refresh_interval_seconds=0.2)
    gateway = LocalGateway(source, port=0, access_log=None)
    gateway.start()
    try:
        yield World(stack, harness, upstream, source, gateway)
    finally:
        gateway.stop()
        source.stop()


class World:
    def __init__(self, stack, harness, upstream, source, gateway) -> None:
        self.stack, self.harness, self.upstream = stack, harness, upstream
        self.source, self.gateway = source, gateway

    def put(self, route_id: str, path: str, *, methods=("GET",), **security) -> None:
        self.stack.put_route(route(route_id, path, self.upstream.url, methods=methods,
                                   security=security))
        self.harness.run()
        assert self.stack.status(route_id)["phase"] == "READY", self.stack.status(route_id)
        self.source.refresh_now()

    def call(self, path: str, headers: dict | None = None, method: str = "GET"):
        conn = http.client.HTTPConnection("127.0.0.1", self.gateway.port, timeout=10)
        try:
            conn.request(method, path, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def keys(self, *args: str, capsys) -> tuple[int, str, str]:
        code = main(["keys", *args, "--endpoint-url", self.stack.aws.url,
                     "--rest-api-id", self.stack.rest_api_id])
        out, err = capsys.readouterr()
        return code, out, err

    def issue_key(self, route_id: str, capsys) -> dict:
        code, out, err = self.keys("create", "--route", route_id, "-o", "json", capsys=capsys)
        assert code == 0, err
        return json.loads(out)


def test_api_key_route_refuses_missing_unknown_and_disabled_keys_and_serves_a_valid_one(
        world, capsys):
    world.put("svc", "/svc", api_key_required=True)
    key = world.issue_key("svc", capsys)
    world.source.refresh_now()

    assert world.call("/svc")[::2] == (403, b'{"message":"Forbidden"}')
    assert world.call("/svc", {"x-api-key": "not-a-key-of-this-stage-0000"})[0] == 403
    status, _, body = world.call("/svc", {"x-api-key": key["value"]})
    assert status == 200 and json.loads(body)["path"] == "/svc"

    api = world.stack.aws.client("apigateway")
    api.update_api_key(apiKey=key["id"], patchOperations=[
        {"op": "replace", "path": "/enabled", "value": "false"}])
    world.source.refresh_now()
    assert world.call("/svc", {"x-api-key": key["value"]})[0] == 403


def test_a_key_outside_the_routes_stage_plans_is_refused(world, capsys):
    world.put("svc", "/svc", api_key_required=True)
    api = world.stack.aws.client("apigateway")
    stray = api.create_api_key(name="stray", enabled=True, value="s" * 40)
    world.source.refresh_now()
    assert world.call("/svc", {"x-api-key": stray["value"]})[0] == 403


def test_a_revoked_key_is_refused_within_the_refresh_interval(world, capsys):
    world.put("svc", "/svc", api_key_required=True)
    key = world.issue_key("svc", capsys)
    world.source.start()  # periodic refresh, as under `turnout up`
    deadline = time.monotonic() + 10
    while world.call("/svc", {"x-api-key": key["value"]})[0] != 200:
        assert time.monotonic() < deadline, "the new key was never accepted"
        time.sleep(0.05)

    code, out, err = world.keys("revoke", key["id"], capsys=capsys)
    assert code == 0, err
    deadline = time.monotonic() + 10
    while world.call("/svc", {"x-api-key": key["value"]})[0] != 403:
        assert time.monotonic() < deadline, "the revoked key was still accepted"
        time.sleep(0.05)


def test_a_client_outside_the_allowlist_is_refused_even_with_a_forged_forwarded_for(world):
    world.put("office", "/office/{proxy+}", allowed_cidrs=["10.0.0.0/8"])
    world.put("local", "/local/{proxy+}", allowed_cidrs=["127.0.0.0/8"])
    world.put("public", "/public")

    status, headers, body = world.call("/office/reports",
                                       {"X-Forwarded-For": "10.1.2.3", "X-Real-IP": "10.1.2.3"})
    assert status == 403
    assert headers["x-amzn-ErrorType"] == "AccessDeniedException"
    assert json.loads(body) == {"Message": (
        "User: anonymous is not authorized to perform: execute-api:Invoke on resource: "
        f"arn:aws:execute-api:us-east-1:********9012:{world.stack.rest_api_id}"
        "/live/GET/office/reports with an explicit deny")}
    assert world.upstream.requests == []

    assert world.call("/local/reports")[0] == 200
    assert world.call("/public", {"X-Forwarded-For": "10.1.2.3"})[0] == 200


def count_allowed(world, path: str, headers: dict, window_seconds: float) -> tuple[int, float]:
    """Requests answered 200 (the rest must be 429) during ``window_seconds`` of calls."""
    conn = http.client.HTTPConnection("127.0.0.1", world.gateway.port, timeout=10)
    allowed = 0
    started = time.monotonic()
    try:
        while time.monotonic() - started < window_seconds:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            if response.status == 200:
                allowed += 1
            else:
                assert (response.status, body) == (429, b'{"message":"Too Many Requests"}')
    finally:
        conn.close()
    return allowed, time.monotonic() - started


def test_keyless_rate_limit_lets_through_burst_plus_rate_per_second(world):
    world.put("limited", "/limited", rate_limit={"requests_per_second": 10, "burst": 5})
    allowed, elapsed = count_allowed(world, "/limited", {}, 1.5)
    expected = 5 + 10 * elapsed
    assert abs(allowed - expected) <= 0.2 * expected, (allowed, expected)


def test_usage_plan_rate_limit_applies_per_api_key(world, capsys):
    world.put("keyed", "/keyed", api_key_required=True,
              rate_limit={"requests_per_second": 10, "burst": 5})
    first, second = world.issue_key("keyed", capsys), world.issue_key("keyed", capsys)
    world.source.refresh_now()
    allowed, elapsed = count_allowed(world, "/keyed", {"x-api-key": first["value"]}, 1.5)
    expected = 5 + 10 * elapsed
    assert abs(allowed - expected) <= 0.2 * expected, (allowed, expected)
    assert world.call("/keyed", {"x-api-key": second["value"]})[0] == 200, \
        "another key has its own bucket"
