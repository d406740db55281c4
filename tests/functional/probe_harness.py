"""Runs the real prober handler the way Lambda would: its environment, a context whose
remaining time runs out, boto3 on the embedded AWS endpoint; and reads back what it left."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3

from control_plane.handlers.probe import ProbeDependencies, make_handler
from control_plane.health.metrics import metrics_mode
from control_plane.settings import Settings, function_environment

SCHEMA = Path(__file__).resolve().parents[2] / "schemas/events/upstream-health-changed.schema.json"
SCHEDULED_EVENT = {"version": "0", "id": "probe-test", "detail-type": "Scheduled Event",
                   "source": "aws.events", "account": "123456789012", "region": "us-east-1",
                   "resources": ["arn:aws:events:us-east-1:123456789012:rule/turnout-probe"],
                   "detail": {}}


class FakeContext:
    """A Lambda context whose remaining time runs out ``seconds`` after it is made."""

    function_name = "turnout-probe"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:turnout-probe"
    aws_request_id = "probe-test"

    def __init__(self, seconds: float) -> None:
        self._deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class ProbeHarness:
    def __init__(self, stack, *, metrics: str = "api", loopback: bool = True) -> None:
        self.stack = stack
        self.calls: list[str] = []
        session = boto3.Session(region_name=stack.aws.region)
        session.events.register("before-call", self._on_call)
        self.env = {
            "ROUTES_TABLE": stack.routes_table, "STATE_TABLE": stack.state_table,
            "EVENT_BUS_NAME": stack.bus, "AWS_ENDPOINT_URL": stack.aws.url,
            "TURNOUT_ALLOW_LOOPBACK_UPSTREAMS": "true" if loopback else "false",
            "POWERTOOLS_SERVICE_NAME": "turnout-probe",
        }
        if metrics == "api":
            self.env["TURNOUT_METRICS_MODE"] = "api"
        # Built before the first invocation, as a warm function has them: the fake context's
        # seconds are then all probing time.
        dependencies = ProbeDependencies.from_session(session, Settings.from_env(self.env),
                                                      metrics_mode(self.env))
        self.handler = make_handler(lambda: dependencies)

    def _on_call(self, model, **kwargs) -> None:
        self.calls.append(f"{model.service_model.service_name}.{model.name}")

    def run(self, seconds: float) -> dict:
        """One invocation with ``seconds`` of remaining time."""
        token = function_environment.set(self.env)
        try:
            self.calls.clear()
            return self.handler(dict(SCHEDULED_EVENT), FakeContext(seconds))
        finally:
            function_environment.reset(token)

    # ---- reading the world back ------------------------------------------------------

    def health(self, route_id: str, upstream: str) -> dict | None:
        item = self.stack.aws.client("dynamodb").get_item(
            TableName=self.stack.state_table,
            Key={"route_id": {"S": route_id}, "kind": {"S": f"health#{upstream}"}}).get("Item")
        if item is None:
            return None
        return boto3.dynamodb.types.TypeDeserializer().deserialize({"M": item})

    def metric_stats(self, route_id: str, upstream: str) -> dict[str, float]:
        """``SampleCount``, ``Sum``, ``Minimum`` and ``Maximum`` of every ``UpstreamHealthy``
        datapoint of the last ten minutes ({} when there is none)."""
        now = datetime.now(UTC)
        response = self.stack.aws.client("cloudwatch").get_metric_statistics(
            Namespace="Turnout", MetricName="UpstreamHealthy",
            Dimensions=[{"Name": "Route", "Value": route_id},
                        {"Name": "Upstream", "Value": upstream}],
            StartTime=now - timedelta(minutes=10), EndTime=now + timedelta(minutes=1),
            Period=3600, Statistics=["SampleCount", "Sum", "Minimum", "Maximum"])
        [point] = response["Datapoints"] or [{}]
        return {k: v for k, v in point.items() if k in ("SampleCount", "Sum", "Minimum", "Maximum")}

    def health_events(self) -> list[dict]:
        return [e for e in self.stack.published_events()
                if e["detail-type"] == "Upstream Health Changed"]

    @staticmethod
    def schema() -> dict:
        return json.loads(SCHEMA.read_text())


def route_doc(route_id: str, upstreams: list[tuple[str, str]], *, interval: int = 1,
              timeout_ms: int = 500, fall: int = 2, rise: int = 2, path: str = "/health",
              http_path: str | None = None) -> dict:
    """A direct route over ``(name, url)`` upstreams in priority order."""
    return {
        "route_id": route_id,
        "path": http_path or f"/{route_id}",
        "methods": ["GET"],
        "upstreams": [{"name": name, "url": url, "priority": i, "allow_insecure": True}
                      for i, (name, url) in enumerate(upstreams)],
        "health_check": {"path": path, "interval_seconds": interval, "timeout_ms": timeout_ms,
                         "unhealthy_threshold": fall, "healthy_threshold": rise},
    }

