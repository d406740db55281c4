"""Failover and failback on the whole stack: ``turnout up``, real upstreams, the real AWS CLI.

The upstreams are separate processes, so "the primary dies" is a SIGKILL: its port refuses
connections, as a crashed server's does. The prober finds it (interval 1 s, unhealthy after 2
failed probes), the alarm fires, the workflow switches, the gateway follows the stage variable.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from control_plane.model.failover import parse_time
from tests.conftest import free_port
from tests.system.harness import Turnout

pytestmark = pytest.mark.system

UPSTREAM_SCRIPT = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME, PORT = sys.argv[1], int(sys.argv[2])

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps({"upstream": NAME, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Upstream", NAME)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

ThreadingHTTPServer.allow_reuse_address = True
server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("serving", flush=True)
server.serve_forever()
"""


class UpstreamProcess:
    """An HTTP upstream in its own process, on a fixed 127.0.0.1 port: killed and restarted."""

    def __init__(self, name: str, port: int | None = None) -> None:
        self.name = name
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            self.proc = subprocess.Popen([sys.executable, "-c", UPSTREAM_SCRIPT, self.name,
                                          str(self.port)], stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True)
            if self.proc.stdout.readline().strip() == "serving":
                return
            self.proc.wait()
            assert time.monotonic() < deadline, f"upstream {self.name} cannot bind {self.port}"
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def close(self) -> None:
        self.kill()


def failover_route(route_id: str, primary: UpstreamProcess, backup: UpstreamProcess, *,
                   min_hold_seconds: int, healthy_threshold: int = 2) -> dict:
    return {
        "route_id": route_id, "path": f"/{route_id}/{{proxy+}}", "methods": ["GET"],
        "upstreams": [
            {"name": "primary", "url": primary.url, "priority": 0, "allow_insecure": True},
            {"name": "backup", "url": backup.url, "priority": 1, "allow_insecure": True},
        ],
        "health_check": {"path": "/health", "interval_seconds": 1, "timeout_ms": 500,
                         "unhealthy_threshold": 2, "healthy_threshold": healthy_threshold},
        "failover": {"automatic": True, "failback": True, "min_hold_seconds": min_hold_seconds},
    }


def put_route(turnout: Turnout, doc: dict) -> None:
    from control_plane.model.item import to_item

    turnout.aws("dynamodb", "put-item", "--table-name", turnout.outputs["RoutesTableName"],
                "--item", json.dumps(to_item(doc)))
    turnout.wait_for(lambda: turnout.statuses().get(doc["route_id"], {}).get("phase") == "READY",
                     timeout=60, what=f"{doc['route_id']} READY")


def served_by(turnout: Turnout, path: str) -> str | None:
    try:
        status, headers, _ = turnout.call("GET", path)
    except OSError:
        return None
    return headers.get("X-Upstream") if status == 200 else None


def subscribe_queue(turnout: Turnout, name: str, detail_types: list[str]) -> str:
    """An SQS queue that receives turnout's events, set up with the AWS CLI as a user would."""
    url = json.loads(turnout.aws("sqs", "create-queue", "--queue-name", name))["QueueUrl"]
    arn = json.loads(turnout.aws("sqs", "get-queue-attributes", "--queue-url", url,
                                 "--attribute-names", "QueueArn"))["Attributes"]["QueueArn"]
    bus = turnout.outputs["EventBusName"]
    turnout.aws("events", "put-rule", "--name", name, "--event-bus-name", bus,
                "--event-pattern", json.dumps({"source": ["turnout"],
                                               "detail-type": detail_types}))
    turnout.aws("events", "put-targets", "--rule", name, "--event-bus-name", bus,
                "--targets", json.dumps([{"Id": "queue", "Arn": arn}]))
    return url


def receive(turnout: Turnout, queue_url: str) -> list[dict]:
    raw = json.loads(turnout.aws("sqs", "receive-message", "--queue-url", queue_url,
                                 "--max-number-of-messages", "10") or "{}")
    events = []
    for message in raw.get("Messages", []):
        events.append(json.loads(message["Body"]))
        turnout.aws("sqs", "delete-message", "--queue-url", queue_url, "--receipt-handle",
                    message["ReceiptHandle"])
    return events


def status_report(turnout: Turnout, route_id: str) -> dict:
    result = turnout.turnout("status", route_id, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def switches(turnout: Turnout, route_id: str) -> list[dict]:
    """Every audit item of the route, oldest first (read with the AWS CLI)."""
    raw = json.loads(turnout.aws(
        "dynamodb", "query", "--table-name", turnout.outputs["StateTableName"],
        "--key-condition-expression", "route_id = :r AND begins_with(kind, :f)",
        "--expression-attribute-values",
        json.dumps({":r": {"S": route_id}, ":f": {"S": "failover#"}})))
    return [{k: next(iter(v.values())) for k, v in item.items()} for item in raw["Items"]]


@pytest.fixture(scope="module")
def turnout() -> Iterator[Turnout]:
    t = Turnout()
    yield t
    t.stop()  # a clean stop is test_turnout_up's subject


@pytest.fixture
def upstreams() -> Iterator[tuple[UpstreamProcess, UpstreamProcess]]:
    primary, backup = UpstreamProcess("primary"), UpstreamProcess("backup")
    yield primary, backup
    primary.close()
    backup.close()


def test_primary_dies_traffic_moves_to_the_secondary_and_returns_after_the_hold_time(
        turnout, upstreams):
    primary, backup = upstreams
    hold = 8
    queue = subscribe_queue(turnout, "failover-watch", ["Failover Completed", "Failback Completed"])
    put_route(turnout, failover_route("orders", primary, backup, min_hold_seconds=hold))
    turnout.wait_for(lambda: served_by(turnout, "/orders/x") == "primary", what="primary serving")

    primary.kill()
    turnout.wait_for(lambda: served_by(turnout, "/orders/x") == "backup", timeout=60,
                     what="traffic on the backup")

    machine = turnout.outputs["FailoverStateMachineArn"]
    [failover] = turnout.wait_for(lambda: switches(turnout, "orders"), what="the audit item")
    assert (failover["from_upstream"], failover["to_upstream"]) == ("primary", "backup")
    executions = json.loads(turnout.aws("stepfunctions", "list-executions",
                                        "--state-machine-arn", machine))["executions"]
    by_arn = {e["executionArn"]: e for e in executions}
    turnout.wait_for(lambda: json.loads(turnout.aws(
        "stepfunctions", "describe-execution", "--execution-arn", failover["execution_arn"]))[
        "status"] == "SUCCEEDED", what="the execution SUCCEEDED")
    assert failover["execution_arn"] in by_arn
    received: list[dict] = []
    turnout.wait_for(lambda: received.extend(receive(turnout, queue)) or any(
        e["detail-type"] == "Failover Completed" for e in received), what="Failover Completed")
    completed = next(e for e in received if e["detail-type"] == "Failover Completed")
    assert completed["detail"]["route_id"] == "orders"
    assert completed["detail"]["to_upstream"] == "backup"

    primary.start()
    turnout.wait_for(lambda: served_by(turnout, "/orders/x") == "primary", timeout=90,
                     what="traffic back on the primary")
    turnout.wait_for(lambda: received.extend(receive(turnout, queue)) or any(
        e["detail-type"] == "Failback Completed" for e in received), what="Failback Completed")
    failback = next(e for e in received if e["detail-type"] == "Failback Completed")["detail"]
    assert (failback["from_upstream"], failback["to_upstream"]) == ("backup", "primary")
    first, second = switches(turnout, "orders")
    held = (parse_time(second["time"]) - parse_time(first["time"])).total_seconds()
    assert held >= hold, f"failback {held} s after the failover, before min_hold_seconds {hold}"
    report = status_report(turnout, "orders")
    assert report["active_upstream"] == "primary"
    assert report["last_failover"]["kind"] == "failback"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_flapping_upstream_moves_traffic_no_more_often_than_the_hold_time_allows(
        turnout, upstreams):
    primary, backup = upstreams
    hold, flap_seconds, half_period = 10, 60, 2.0
    put_route(turnout, failover_route("flappy", primary, backup, min_hold_seconds=hold,
                                      healthy_threshold=2))
    turnout.wait_for(lambda: served_by(turnout, "/flappy/x") == "primary", what="primary serving")

    started = time.monotonic()
    while time.monotonic() - started < flap_seconds:
        primary.kill()
        time.sleep(half_period)
        primary.start()
        time.sleep(half_period)
    time.sleep(hold + 5)  # let a pending failback finish

    count = len(switches(turnout, "flappy"))
    allowed = 1 + 2 * (flap_seconds // hold)
    print(f"\nflapping every {half_period:.0f} s for {flap_seconds} s with min_hold_seconds "
          f"{hold}: {count} switches (at most {allowed} allowed)")
    assert 1 <= count <= allowed
