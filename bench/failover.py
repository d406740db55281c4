"""Failover and failback times on ``turnout up``, for a ``direct`` and a ``proxy`` route.

Starts ``turnout up`` in a subprocess (a fresh one per route), two upstream processes and a
steady stream of GETs through the local gateway. Then SIGKILLs the primary and measures, from that instant:

- when the prober's verdict flipped (the health item), the workflow started (the alarm fired),
  the switch was recorded (the audit item), and
- the first and the last request not served by the secondary, and the failed requests between;

then restarts the primary and measures the time until all traffic is back on it (failback,
which waits for ``healthy_threshold`` good probes and ``min_hold_seconds`` since the switch).
The configuration (probe interval, thresholds, alarm period, hold time) is printed beside the
figures, with the detection bound it implies.

    .venv/bin/python -m bench.failover [--rate 40] [--hold 10] [--modes direct,proxy]
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from control_plane.model.failover import parse_time
from control_plane.plan.alarms import alarm_period
from tests.system.harness import Turnout
from tests.system.test_failover_up import UpstreamProcess, failover_route, put_route, switches


@dataclass
class Sample:
    at: float  # time.time()
    status: int
    upstream: str | None


@dataclass
class Load:
    """GETs at a steady rate through the gateway, each on a new connection, all recorded."""

    port: int
    path: str
    rate: float
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Load:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        gap = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.samples.append(self._one())
            next_at += gap
            time.sleep(max(0.0, next_at - time.monotonic()))

    def _one(self) -> Sample:
        at = time.time()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            conn.request("GET", self.path)
            response = conn.getresponse()
            response.read()
            conn.close()
            return Sample(at, response.status, response.getheader("X-Upstream"))
        except OSError:
            return Sample(at, 0, None)

    def since(self, t: float) -> list[Sample]:
        return [s for s in list(self.samples) if s.at >= t]


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def settled_on(load: Load, since: float, upstream: str, quiet_seconds: float = 3.0) -> bool:
    """Every request of the last ``quiet_seconds`` (and at least a few) served by ``upstream``."""
    recent = load.since(max(since, time.time() - quiet_seconds))
    return len(recent) >= 5 and all(s.upstream == upstream for s in recent) and (
        time.time() - since > quiet_seconds)


def transition(load: Load, since: float, target: str,
               until: float = 0.0) -> tuple[float, float, int, int]:
    """(first request on ``target``, last request not on it, failed requests, all requests)
    after ``since``, counting requests up to the later of the last one not on ``target`` and
    ``until``; times in seconds from ``since``."""
    after = load.since(since)
    first = next(s.at for s in after if s.upstream == target)
    last_other = max((s.at for s in after if s.upstream != target), default=since)
    window = [s for s in after if s.at <= max(last_other, until)]
    failed = sum(1 for s in window if s.status != 200)
    return first - since, max(first, last_other) - since, failed, len(window)


def execution_start(turnout: Turnout, arn: str) -> float:
    described = json.loads(turnout.aws("stepfunctions", "describe-execution",
                                       "--execution-arn", arn))
    start = described["startDate"]
    return start if isinstance(start, float | int) else datetime.fromisoformat(start).timestamp()


def measure(turnout: Turnout, mode: str, args) -> dict:
    primary, backup = UpstreamProcess("primary"), UpstreamProcess("backup")
    route_id = f"bench-{mode}"
    doc = failover_route(route_id, primary, backup, min_hold_seconds=args.hold,
                         healthy_threshold=args.healthy)
    doc["health_check"]["unhealthy_threshold"] = args.unhealthy
    doc["health_check"]["interval_seconds"] = args.interval
    doc["mode"] = mode
    if mode == "proxy":
        doc["retries"] = {"attempts": 1, "on": ["connect-failure", "5xx", "timeout"]}
    load = None
    try:
        put_route(turnout, doc)
        load = Load(turnout.gateway_port, f"/{route_id}/x", args.rate).start()
        wait(lambda: settled_on(load, time.time() - 3, "primary"), 60, "steady on the primary")
        time.sleep(args.interval * 3)  # a few probes: the prober knows the primary is fine

        killed = time.time()
        primary.kill()
        wait(lambda: settled_on(load, killed, "backup"), 120, "all traffic on the backup")
        # A proxy route's traffic moves by in-request retry before the switch: wait for it too.
        [switch] = wait(lambda: switches(turnout, route_id), 180, "the audit item")
        first, last, failed, total = transition(load, killed, "backup",
                                                parse_time(switch["time"]).timestamp())
        health = wait(lambda: _health(turnout, route_id, "primary", healthy=False), 30,
                      "the primary's unhealthy verdict")
        out = {
            "mode": mode,
            "verdict": parse_time(health["last_change_time"]).timestamp() - killed,
            "workflow": execution_start(turnout, switch["execution_arn"]) - killed,
            "switched": parse_time(switch["time"]).timestamp() - killed,
            "first": first, "all": last, "failed": failed, "requests": total,
        }

        restarted = time.time()
        primary.start()
        wait(lambda: settled_on(load, restarted, "primary"), 180, "all traffic back on the primary")
        first_back, last_back, failed_back, _ = transition(load, restarted, "primary")
        failback = switches(turnout, route_id)[-1]
        out.update({
            "since_switch": restarted - parse_time(switch["time"]).timestamp(),
            "failback_switched": parse_time(failback["time"]).timestamp() - restarted,
            "failback_first": first_back, "failback_all": last_back,
            "failback_failed": failed_back,
        })
        return out
    finally:
        if load is not None:
            load.stop()
        primary.close()
        backup.close()


def _health(turnout: Turnout, route_id: str, upstream: str, *, healthy: bool) -> dict | None:
    raw = json.loads(turnout.aws(
        "dynamodb", "get-item", "--table-name", turnout.outputs["StateTableName"],
        "--key", json.dumps({"route_id": {"S": route_id}, "kind": {"S": f"health#{upstream}"}}),
        "--consistent-read"))
    item = {k: next(iter(v.values())) for k, v in raw.get("Item", {}).items()}
    return item if item and item.get("healthy") is healthy else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second")
    parser.add_argument("--hold", type=int, default=10, help="min_hold_seconds")
    parser.add_argument("--interval", type=int, default=1, help="probe interval_seconds")
    parser.add_argument("--unhealthy", type=int, default=2, help="unhealthy_threshold")
    parser.add_argument("--healthy", type=int, default=2, help="healthy_threshold")
    parser.add_argument("--modes", default="direct,proxy")
    args = parser.parse_args()

    period = alarm_period(args.interval)
    verdict = args.unhealthy * args.interval
    print(f"configuration: probe interval {args.interval} s, unhealthy_threshold {args.unhealthy}, "
          f"healthy_threshold {args.healthy}, alarm period {period} s (1 of 1 datapoints), "
          f"min_hold_seconds {args.hold}, load {args.rate:.0f} requests/s", flush=True)
    print(f"detection bound: the prober's verdict after {args.unhealthy} failed probes "
          f"{args.interval} s apart (~{verdict} s) starts the workflow; the alarm, at the end of "
          f"its {period} s period (~{verdict + period} s), is the fallback", flush=True)
    for mode in args.modes.split(","):
        turnout = Turnout()  # one fresh stack per route: nothing left over from the other
        try:
            report(measure(turnout, mode, args))
        finally:
            turnout.stop()


def report(r: dict) -> None:
    print(f"\n{r['mode']} route, primary SIGKILLed at t=0:")
    print(f"  prober verdict unhealthy   {r['verdict']:6.2f} s")
    print(f"  workflow started           {r['workflow']:6.2f} s")
    print(f"  switch recorded            {r['switched']:6.2f} s")
    print(f"  first request on backup    {r['first']:6.2f} s")
    print(f"  all requests on backup     {r['all']:6.2f} s")
    print(f"  failed requests            {r['failed']} of {r['requests']} sent until the switch "
          f"and the last request elsewhere")
    print(f"  failback: primary restarted {r['since_switch']:.1f} s after the switch; switched "
          f"back {r['failback_switched']:.2f} s after the restart; first request on it "
          f"{r['failback_first']:.2f} s, all {r['failback_all']:.2f} s; "
          f"failed {r['failback_failed']}", flush=True)


if __name__ == "__main__":
    main()
