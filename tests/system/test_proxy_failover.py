"""``mode: proxy`` routes on the whole local stack: ``turnout up`` in a subprocess, routes and
secrets written with the real AWS CLI, upstreams in their own processes, traffic through the
local gateway -> Lambda Invoke -> the data-plane function.

Failover inside the request: with two upstreams and a steady stream of GETs, killing the
primary (SIGKILL) and, separately, freezing it (SIGSTOP) must fail no client request. The rate
is ``TURNOUT_PROXY_FAILOVER_RPS`` (default 10: the local Lambda emulation serves about 20 proxy
requests/s on two cores; ``bench/proxy_latency.py`` measures it).
"""

from __future__ import annotations

import json
import os

import pytest

from tests.system.harness import EchoUpstream, Turnout
from tests.system.test_proxy_support import LoadRun, UpstreamProcess, open_loop, proxy_route_item

pytestmark = pytest.mark.system

RATE = float(os.environ.get("TURNOUT_PROXY_FAILOVER_RPS", "10"))
DURATION_SECONDS = 9.0
FAULT_AT_SECONDS = 3.0
# The route's timeout, which is also the gateway's integration timeout. Locally the whole stack
# shares one process: while the control plane reacts to the failure (prober, alarms, the failover
# workflow) the emulated Invoke path can stall for a second or two, so the budget leaves room.
TIMEOUT_MS = 5000


@pytest.fixture(scope="module")
def turnout():
    t = Turnout()
    yield t
    assert t.stop() == 0, "turnout up must stop cleanly:\n" + "".join(t.output[-20:])


@pytest.fixture
def pair():
    primary, secondary = UpstreamProcess("primary"), UpstreamProcess("secondary")
    yield primary, secondary
    primary.close()
    secondary.close()


def put_route(turnout: Turnout, item: str) -> None:
    turnout.aws("dynamodb", "put-item", "--table-name", turnout.outputs["RoutesTableName"],
                "--item", item)


def serving(turnout: Turnout, path: str, upstream: str) -> None:
    turnout.wait_for(lambda: turnout.call("GET", path)[1].get("X-Upstream") == upstream,
                     timeout=60, what=f"{path} served by {upstream}")


def report(name: str, run: LoadRun, fault_at: float) -> None:
    begin = run.outcomes[0].started
    outage = run.between(begin + fault_at, float("inf"))
    before = run.between(0, begin + fault_at)
    print(f"\n{name}: {len(run.outcomes)} GETs at {RATE:.0f}/s, {len(run.failed())} failed; "
          f"p99 before {LoadRun.percentile(before, 0.99) * 1000:.0f} ms, "
          f"p99 during the outage {LoadRun.percentile(outage, 0.99) * 1000:.0f} ms, "
          f"max {max(o.latency_seconds for o in outage) * 1000:.0f} ms")


def test_proxy_route_written_with_the_aws_cli_injects_the_secret_and_serves(turnout):
    upstream = EchoUpstream("echo")
    try:
        arn = json.loads(turnout.aws("secretsmanager", "create-secret", "--name", "turnout/echo-token",
                                     "--secret-string", "tok-123-abc"))["ARN"]
        item = json.loads(proxy_route_item("echo-px", "/echo-px/{proxy+}", ("main", upstream.url)))
        item["upstream_auth"] = {"M": {"header": {"S": "X-Upstream-Token"},
                                       "secret_arn": {"S": arn}}}
        item["methods"] = {"L": [{"S": "GET"}, {"S": "POST"}]}
        put_route(turnout, json.dumps(item))
        turnout.wait_for(lambda: turnout.statuses().get("echo-px", {}).get("phase") == "READY",
                         what="echo-px READY")
        serving(turnout, "/echo-px/ping", "echo")

        status, headers, body = turnout.call(
            "POST", "/echo-px/deep/path?x=1&x=2", body=b'{"n": 1}',
            headers={"Content-Type": "application/json", "x-api-key": "client-key",
                     "X-Upstream-Token": "forged"})
        assert status == 200
        seen = json.loads(body)
        assert seen["method"] == "POST"
        assert seen["path"] == "/echo-px/deep/path?x=1&x=2"
        assert seen["body"] == '{"n": 1}'
        assert seen["headers"]["x-upstream-token"] == "tok-123-abc"
        assert "x-api-key" not in seen["headers"]
        assert seen["headers"]["x-forwarded-for"].endswith("127.0.0.1")
        assert "tok-123-abc" not in "".join(turnout.output)
    finally:
        upstream.close()


@pytest.mark.slow
def test_killing_the_primary_fails_no_request(turnout, pair):
    primary, secondary = pair
    put_route(turnout, proxy_route_item("ha-kill", "/ha-kill/{proxy+}", ("primary", primary.url),
                                        ("secondary", secondary.url), timeout_ms=TIMEOUT_MS))
    serving(turnout, "/ha-kill/warm", "primary")

    def fault(elapsed: float) -> None:
        if elapsed >= FAULT_AT_SECONDS and primary.proc.poll() is None:
            primary.kill()

    run = open_loop(turnout.gateway_port, "/ha-kill/x", rate_per_second=RATE,
                    duration_seconds=DURATION_SECONDS, during=fault)
    report("SIGKILL of the primary", run, FAULT_AT_SECONDS)
    assert run.failed() == []
    assert {o.upstream for o in run.outcomes[-5:]} == {"secondary"}


@pytest.mark.slow
def test_freezing_the_primary_fails_no_request(turnout, pair):
    primary, secondary = pair
    put_route(turnout, proxy_route_item("ha-stop", "/ha-stop/{proxy+}", ("primary", primary.url),
                                        ("secondary", secondary.url), timeout_ms=TIMEOUT_MS))
    serving(turnout, "/ha-stop/warm", "primary")
    frozen = []

    def fault(elapsed: float) -> None:
        if elapsed >= FAULT_AT_SECONDS and not frozen:
            primary.freeze()
            frozen.append(elapsed)

    run = open_loop(turnout.gateway_port, "/ha-stop/x", rate_per_second=RATE,
                    duration_seconds=DURATION_SECONDS, during=fault)
    report("SIGSTOP of the primary", run, FAULT_AT_SECONDS)
    assert run.failed() == []
    assert {o.upstream for o in run.outcomes[-5:]} == {"secondary"}
