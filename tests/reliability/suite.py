"""The stack the hostile-input, smuggling and secrets scenarios share, and what they record.

:class:`Suite` starts ``turnout up --allow-loopback-upstreams`` (a subprocess, as a user runs
it) and sets up, with the real AWS CLI and ``turnout`` commands:

- routes that serve throughout (:attr:`Suite.serving`): a ``direct`` route, a ``proxy`` route
  whose upstream credential is a canary secret (Secrets Manager, injected by the data plane),
  and an API-key route called with a canary key (issued by ``turnout keys create``);
- an SQS queue subscribed to every event turnout publishes on its bus.

Everything returned to a client through :meth:`Suite.call` (and the raw bytes the smuggling
attempts read back) is kept, so the secrets scan can look at all that was logged, published
and returned while the suite ran.
"""

from __future__ import annotations

import http.client
import json
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass, field

import boto3

from control_plane.model.item import to_item
from tests.reliability.upstreams import Upstream
from tests.system.harness import BIN, Turnout

CANARY_AUTH_HEADER = "X-Canary-Auth"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)


def aws_cli(turnout: Turnout, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real AWS CLI against the stack's endpoint; the result, whatever the exit code."""
    return subprocess.run([str(BIN / "aws"), *args, "--output", "json",
                           "--endpoint-url", turnout.env["AWS_ENDPOINT_URL"]],
                          env=turnout.env, capture_output=True, text=True, timeout=timeout)


def capture_events(turnout: Turnout, name: str = "reliability-events") -> str:
    """An SQS queue receiving every event turnout publishes on its bus (a rule, as a user
    would set it up)."""
    queue_url = json.loads(turnout.aws("sqs", "create-queue", "--queue-name", name))["QueueUrl"]
    arn = json.loads(turnout.aws("sqs", "get-queue-attributes", "--queue-url", queue_url,
                                 "--attribute-names", "QueueArn"))["Attributes"]["QueueArn"]
    bus = turnout.outputs["EventBusName"]
    turnout.aws("events", "put-rule", "--name", f"{name}-all", "--event-bus-name", bus,
                "--event-pattern", json.dumps({"source": ["turnout"]}))
    turnout.aws("events", "put-targets", "--rule", f"{name}-all", "--event-bus-name", bus,
                "--targets", json.dumps([{"Id": "q", "Arn": arn}]))
    return queue_url


def put_route(turnout: Turnout, doc: dict, *, wait: bool = True) -> None:
    """Write a route item with the AWS CLI; wait until it is READY."""
    turnout.aws("dynamodb", "put-item", "--table-name", turnout.outputs["RoutesTableName"],
                "--item", json.dumps(to_item(doc)))
    if wait:
        turnout.wait_for(lambda: turnout.statuses().get(doc["route_id"], {}).get("phase")
                         == "READY", timeout=60, what=f"{doc['route_id']} READY")


def loopback_route(route_id: str, *upstreams: Upstream, mode: str = "direct", **extra) -> dict:
    """A route to upstreams on 127.0.0.1 (prefix ``/<route_id>/``), probed at ``/health``."""
    return {
        "route_id": route_id, "path": f"/{route_id}/{{proxy+}}", "methods": ["GET", "POST"],
        "mode": mode,
        "upstreams": [{"name": u.name, "url": u.url, "priority": i, "allow_insecure": True}
                      for i, u in enumerate(upstreams)],
        "health_check": {"path": "/health", "interval_seconds": 5},
        **extra,
    }


class Suite:
    """``turnout up`` with serving routes, canaries and an event capture (see the module doc)."""

    def __init__(self) -> None:
        self.canary_secret = "canary-secret-" + secrets.token_hex(16)
        self.turnout = Turnout()
        self.upstreams: list[Upstream] = []
        self.returned: list[bytes] = []
        self.events: list[str] = []
        self._lock = threading.Lock()
        try:
            self._set_up()
        except BaseException:
            self.stop()
            raise

    def _set_up(self) -> None:
        t = self.turnout
        self.events_queue_url = capture_events(t)
        self.steady = self.upstream("steady")
        self.canary_a, self.canary_b = self.upstream("canary-a"), self.upstream("canary-b")
        self.secret_arn = json.loads(t.aws(
            "secretsmanager", "create-secret", "--name", "turnout/reliability-canary",
            "--secret-string", self.canary_secret))["ARN"]
        put_route(t, loopback_route("steady", self.steady))
        put_route(t, loopback_route(
            "canary", self.canary_a, self.canary_b, mode="proxy", methods=["GET"],
            upstream_auth={"header": CANARY_AUTH_HEADER, "secret_arn": self.secret_arn,
                           "format": "Bearer {secret}"},
            retries={"attempts": 1, "on": ["connect-failure", "5xx", "timeout"]}))
        put_route(t, loopback_route("keyed", self.steady, methods=["GET"],
                                    security={"api_key_required": True}))
        created = t.wait_for(
            lambda: (r := t.turnout("keys", "create", "--route", "keyed")).returncode == 0 and r,
            what="keys create")
        fields = dict(line.split(":", 1) for line in created.stdout.splitlines() if ":" in line)
        self.api_key = fields["value"].strip()
        self.serving = [Request("GET", "/steady/serving"), Request("GET", "/canary/serving"),
                        Request("GET", "/keyed/serving", {"x-api-key": self.api_key})]
        for request in self.serving:
            t.wait_for(lambda r=request: self.call(r.method, r.path, headers=r.headers)[0] == 200,
                       timeout=60, what=f"{request.path} serving")

    def upstream(self, name: str) -> Upstream:
        upstream = Upstream(name)
        self.upstreams.append(upstream)
        return upstream

    # ---- what the suite sends and gets back -------------------------------------------

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: dict | None = None) -> tuple[int, dict, bytes]:
        """One request through the gateway; the response is kept for the secrets scan."""
        conn = http.client.HTTPConnection("127.0.0.1", self.turnout.gateway_port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            answer = response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()
        self.keep(answer[2] + json.dumps(answer[1]).encode())
        return answer

    def keep(self, returned: bytes) -> None:
        """Something returned to a client (for the secrets scan)."""
        with self._lock:
            self.returned.append(returned)

    def drain_events(self) -> list[str]:
        """Every event published since the last drain (also kept for the scan)."""
        sqs = boto3.client("sqs", endpoint_url=self.turnout.env["AWS_ENDPOINT_URL"],
                           region_name="us-east-1", aws_access_key_id="local",
                           aws_secret_access_key="local")
        bodies = []
        while True:
            received = sqs.receive_message(QueueUrl=self.events_queue_url,
                                           MaxNumberOfMessages=10).get("Messages", [])
            if not received:
                break
            bodies.extend(m["Body"] for m in received)
            sqs.delete_message_batch(QueueUrl=self.events_queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)])
        self.events.extend(bodies)
        return bodies

    def stop(self) -> int:
        code = self.turnout.stop()
        for upstream in self.upstreams:
            upstream.close()
        return code


@dataclass
class Traffic:
    """Requests sent round-robin to ``requests`` at a steady rate until stopped."""

    suite: Suite
    requests: list[Request]
    rate_per_second: float = 20.0
    statuses: list[tuple[str, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        gap = 1.0 / self.rate_per_second
        next_at = time.monotonic()
        sent = 0
        while not self._stop.is_set():
            request = self.requests[sent % len(self.requests)]
            sent += 1
            try:
                status = self.suite.call(request.method, request.path, headers=request.headers)[0]
            except OSError:
                status = 0
            self.statuses.append((request.path, status))
            next_at += gap
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def failed(self) -> list[tuple[str, int]]:
        return [(path, status) for path, status in self.statuses if status != 200]
