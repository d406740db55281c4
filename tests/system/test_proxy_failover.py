"""``mode: proxy`` routes on the whole local stack: ``turnout up`` in a subprocess, routes and
secrets written with the real AWS CLI, upstreams in their own processes, traffic through the
local gateway -> Lambda Invoke -> the data-plane function.

Failover inside the request: with two upstreams and a steady stream of GETs, killing the
primary (SIGKILL: connections refused, retried at once on the secondary) and, separately,
freezing it (SIGSTOP: connections accepted, never answered; each waiting GET is hedged on the
secondary after its hedging delay, and the primary is ejected after three such hedges) must fail
no client request. Each run prints the p99 latency during the outage. The rate is
``TURNOUT_PROXY_FAILOVER_RPS`` (default 10, light enough for any machine); the issue's figure is
200 requests/s::

    TURNOUT_PROXY_FAILOVER_RPS=200 .venv/bin/pytest -m slow -s tests/system/test_proxy_failover.py

At 200/s the whole local stack (gateway, Lambda emulation, control plane, moto) shares two cores
with the load generator: it needs them to itself, or requests queue past the route's timeout
whatever the failover does.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


def report(name: str, run: LoadRun, fault_at: float, turnout: Turnout, route_id: str) -> None:
    """Print what the clients saw, and how the data-plane function served the route (from its
    log lines: tries per request and its own latency, without the gateway's and emulator's)."""
    begin = run.outcomes[0].started
    outage = run.between(begin + fault_at, float("inf"))
    before = run.between(0, begin + fault_at)
    print(f"\n{name}: {len(run.outcomes)} GETs at {RATE:.0f}/s, {len(run.failed())} failed; "
          f"p99 before {LoadRun.percentile(before, 0.99) * 1000:.0f} ms, "
          f"p99 during the outage {LoadRun.percentile(outage, 0.99) * 1000:.0f} ms, "
          f"max {max(o.latency_seconds for o in outage) * 1000:.0f} ms")
    lines = [record for line in list(turnout.output)
             if '"service":"turnout-data-plane"' in line and (record := _json_or_none(line))]
    served = [line for line in lines if line.get("route_id") == route_id
              and line.get("message") == "proxied"]
    trouble = Counter(f"{line.get('message')} ({line.get('reason') or line.get('error')})"
                      for line in lines if line.get("message") != "proxied")
    latencies = sorted(line["latency_ms"] for line in served)
    if latencies:
        tries = Counter(" ".join(t.split(":", 1)[1] for t in line["tries"]) for line in served)
        print(f"  the function: p99 {latencies[int(0.99 * len(latencies))]:.0f} ms, "
              f"max {latencies[-1]:.0f} ms; tries: "
              + ", ".join(f"{count} x [{outcomes}]" for outcomes, count in tries.most_common()))
    if trouble:
        print("  the function also said: " + ", ".join(f"{n} x {what}" for what, n in trouble.items()))


def _json_or_none(line: str) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


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


class MirrorUpstream:
    """A real HTTP server answering every request with its body and ``Content-Type``."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", self.headers.get("Content-Type", "text/plain"))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror() -> Iterator[MirrorUpstream]:
    upstream = MirrorUpstream()
    yield upstream
    upstream.close()


def test_binary_body_round_trips_byte_for_byte_through_a_proxy_route(turnout, mirror):
    api = json.loads(turnout.aws("apigateway", "get-rest-api", "--rest-api-id",
                                 turnout.outputs["RestApiId"]))
    assert api["binaryMediaTypes"] == ["*/*"]  # the template's, as on AWS
    item = json.loads(proxy_route_item("mirror", "/mirror/{proxy+}", ("main", mirror.url)))
    item["methods"] = {"L": [{"S": "PUT"}]}
    put_route(turnout, json.dumps(item))
    turnout.wait_for(lambda: turnout.statuses().get("mirror", {}).get("phase") == "READY",
                     what="mirror READY")
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(64 * 1024)

    def put() -> tuple[int, bytes] | None:
        """The answer once the route serves (before that, 403 from the gateway)."""
        status, _, body = turnout.call("PUT", "/mirror/image.png", body=png,
                                       headers={"Content-Type": "image/png", "Accept": "image/png"})
        return (status, body) if status != 403 else None

    status, body = turnout.wait_for(put, what="the mirror route serving")
    assert status == 200
    assert body == png


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
    report("SIGKILL of the primary", run, FAULT_AT_SECONDS, turnout, "ha-kill")
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
    report("SIGSTOP of the primary", run, FAULT_AT_SECONDS, turnout, "ha-stop")
    assert run.failed() == []
    assert {o.upstream for o in run.outcomes[-5:]} == {"secondary"}
