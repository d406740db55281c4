"""Time from an upstream's death to its alarm's ``ALARM`` event, on ``turnout up``.

Starts ``turnout up`` in a subprocess (as a user would), subscribes an SQS queue to the
default bus's ``CloudWatch Alarm State Change`` events (a rule, as a user would), writes a
route whose primary is a real HTTP server on 127.0.0.1 (probe interval 1 s,
``unhealthy_threshold`` 2, ``healthy_threshold`` 2), waits until its alarm is ``OK``, then
kills the primary (connections refused) and measures:

- death -> the prober's verdict (the health item says ``healthy: false``),
- death -> the ``ALARM`` state-change event received from the queue.

The primary is restarted on the same port between trials (its alarm must be ``OK`` again).
Prints every trial and the median, with the configuration beside the figures.

    .venv/bin/python -m bench.health_detection [--trials 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

from tests.conftest import free_port
from tests.system.harness import EchoUpstream, Turnout

INTERVAL_SECONDS = 1
TIMEOUT_MS = 500
UNHEALTHY_THRESHOLD = 2
HEALTHY_THRESHOLD = 2


class Upstream:
    """A health endpoint on a fixed 127.0.0.1 port that can be killed and restarted."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kill(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        self.server = None


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()

    turnout = Turnout()
    primary = Upstream(free_port())
    primary.start()
    secondary = EchoUpstream("secondary")
    endpoint = turnout.env["AWS_ENDPOINT_URL"]
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="local",
                            aws_secret_access_key="local")
    sqs = session.client("sqs", endpoint_url=endpoint)
    events = session.client("events", endpoint_url=endpoint)
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    cloudwatch = session.client("cloudwatch", endpoint_url=endpoint)
    try:
        queue = sqs.create_queue(QueueName="alarm-changes")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        events.put_rule(Name="alarm-changes", EventPattern=json.dumps({
            "source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]}))
        events.put_targets(Rule="alarm-changes", Targets=[{"Id": "q", "Arn": queue_arn}])
        route = {
            "route_id": "bench", "path": "/bench", "methods": ["GET"],
            "upstreams": [
                {"name": "primary", "url": f"http://127.0.0.1:{primary.port}", "priority": 0},
                {"name": "secondary", "url": secondary.url, "priority": 1}],
            "health_check": {"path": "/health", "interval_seconds": INTERVAL_SECONDS,
                             "timeout_ms": TIMEOUT_MS,
                             "unhealthy_threshold": UNHEALTHY_THRESHOLD,
                             "healthy_threshold": HEALTHY_THRESHOLD},
            "failover": {"automatic": False},
        }
        from control_plane.model.item import to_item
        dynamodb.put_item(TableName=turnout.outputs["RoutesTableName"], Item=to_item(route))
        alarm = "turnout-bench.primary"
        state_table = turnout.outputs["StateTableName"]

        def alarm_state() -> str | None:
            found = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
            return found[0]["StateValue"] if found else None

        def verdict() -> bool | None:
            item = dynamodb.get_item(TableName=state_table, Key={
                "route_id": {"S": "bench"}, "kind": {"S": "health#primary"}}).get("Item")
            return None if item is None else item["healthy"]["BOOL"]

        def alarm_event() -> dict | None:
            for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=0).get("Messages", []):
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
                body = json.loads(message["Body"])
                if (body["detail"]["alarmName"] == alarm
                        and body["detail"]["state"]["value"] == "ALARM"):
                    return body
            return None

        period = None
        trials: list[tuple[float, float]] = []
        for trial in range(1, args.trials + 1):
            wait(lambda: alarm_state() == "OK" and verdict() is True, 120, "the alarm to be OK")
            period = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["Period"]
            while alarm_event():
                pass
            time.sleep(trial * 1.7 % 10)  # spread the deaths over the alarm period
            primary.kill()
            died = time.monotonic()
            wait(lambda: verdict() is False, 60, "the prober's verdict")
            judged = time.monotonic() - died
            wait(alarm_event, 60, "the ALARM event")
            alarmed = time.monotonic() - died
            trials.append((judged, alarmed))
            print(f"trial {trial}: death -> unhealthy verdict {judged:5.2f} s, "
                  f"death -> ALARM event {alarmed:5.2f} s", flush=True)
            primary.start()

        print(f"probe interval {INTERVAL_SECONDS} s, timeout {TIMEOUT_MS} ms, "
              f"unhealthy_threshold {UNHEALTHY_THRESHOLD}, alarm period {period} s "
              "(Minimum < 1, 1 of 1, missing data = missing)")
        print(f"median over {len(trials)} trials: death -> verdict "
              f"{statistics.median(t[0] for t in trials):.2f} s, death -> ALARM event "
              f"{statistics.median(t[1] for t in trials):.2f} s; max ALARM "
              f"{max(t[1] for t in trials):.2f} s")
        bound = INTERVAL_SECONDS * UNHEALTHY_THRESHOLD + period + 1
        print(f"configured bound: interval x threshold + one period + evaluation "
              f"(~{bound} s)")
    finally:
        if primary.server is not None:
            primary.kill()
        secondary.close()
        turnout.stop()


if __name__ == "__main__":
    main()
