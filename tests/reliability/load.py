"""The load scenario: a fixed request rate through the local gateway across many routes while
one primary upstream is killed and restored.

:func:`run_load` starts ``turnout up`` (a subprocess, as a user runs it), three upstream
processes (:mod:`tests.reliability.upstream_server`): the primary that will die, the primary of
every other route, and the backup of all routes, and writes :attr:`LoadPlan.routes` routes with
the AWS CLI, each with two upstreams, ``proxy_routes`` of them in ``proxy`` mode and the rest
``direct``. ``victim_routes`` routes (half ``direct``, half ``proxy``) have the dying primary;
their health check is fast (``interval_seconds`` 1), the others keep the default. The run
starts from the steady state: once every route serves and the failover workflow is quiet (each
new route's alarms going to OK start executions, :func:`wait_for_quiet_workflows`).

Then an open-loop generator (:func:`generate`: one asyncio loop, an aiohttp client with
kept-alive connections, a fixed-rate schedule that does not wait for answers) sends
``rate_per_second`` GETs for ``duration_seconds``, round-robin over the routes. At
``kill_at`` the victims' primary is SIGKILLed; at ``restore_at`` it is restarted on its port.
``turnout up``'s resident memory is sampled every second.

What is measured (:class:`LoadReport`): the offered and achieved rates and latencies; failed
requests per kind of route; for the victims' ``direct`` routes the failures against the
detection bound (:func:`detection_bound_seconds`: the prober's verdict after
``unhealthy_threshold`` failed probes, each up to ``timeout_ms``, ``interval_seconds`` apart,
then the alarm at the end of its period as the fallback that starts the workflow, plus the
switch itself); when each victim's switch was recorded; which upstream served the victims
after the kill and after the restore; and the memory samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import boto3

from control_plane.model.failover import parse_time
from control_plane.model.item import from_item, to_item
from control_plane.plan.alarms import alarm_period
from tests.reliability.upstreams import Upstream
from tests.system.harness import Turnout

SWITCH_ALLOWANCE_SECONDS = 5.0
"""Workflow start to the gateway serving the new stage variable (lock, decide, switch, refresh)."""


@dataclass(frozen=True)
class LoadPlan:
    rate_per_second: float = 1000.0
    duration_seconds: float = 60.0
    routes: int = 50
    proxy_routes: int = 10
    victim_routes: int = 10
    kill_at: float = 0.2
    """Fraction of the run at which the victims' primary is killed."""
    restore_at: float = 0.65
    """Fraction of the run at which it is restarted."""
    interval_seconds: int = 1
    unhealthy_threshold: int = 2
    healthy_threshold: int = 2
    timeout_ms: int = 500
    min_hold_seconds: int = 5
    connections: int = 256
    capacity_seconds: float = 0.0
    """When above 0: first measure, for this long each, the most requests/s one direct and one
    proxy route serve with 64 clients sending back to back."""

    def mode(self, index: int) -> str:
        return "proxy" if index < self.proxy_routes else "direct"

    def is_victim(self, index: int) -> bool:
        half = self.victim_routes // 2
        if self.mode(index) == "proxy":
            return index < min(self.victim_routes - half, self.proxy_routes)
        return index - self.proxy_routes < half

    @property
    def per_route_rate(self) -> float:
        return self.rate_per_second / self.routes


def detection_bound_seconds(plan: LoadPlan) -> float:
    """Longest a ``direct`` route may serve errors after its primary dies (see module doc)."""
    verdict = plan.unhealthy_threshold * plan.interval_seconds + plan.timeout_ms / 1000
    return verdict + alarm_period(plan.interval_seconds) + SWITCH_ALLOWANCE_SECONDS


@dataclass
class Sample:
    started: float
    """Seconds since the run began (when the request was due)."""
    route: int
    status: int
    """0: no response (connection failure or client timeout)."""
    upstream: str | None
    latency: float


@dataclass
class LoadReport:
    plan: LoadPlan
    samples: list[Sample]
    elapsed_seconds: float
    kill_time: float
    """Seconds into the run when the primary was actually killed (and restarted, below)."""
    restore_time: float
    rss_mib: list[tuple[float, float]]
    ready_seconds: float
    routes_ready_seconds: float
    settle_seconds: float
    capacity: dict[str, float] = field(default_factory=dict)
    timeline: dict[str, float | None] = field(default_factory=dict)
    """Victim route -> seconds from the kill to its failover switch (None: no switch)."""

    # ---- rates and latency --------------------------------------------------------------

    @property
    def achieved_rate(self) -> float:
        """Responses received per second of the run (whatever their status)."""
        return len([s for s in self.samples if s.status]) / self.elapsed_seconds

    @property
    def offered_rate(self) -> float:
        return len(self.samples) / self.plan.duration_seconds

    def latency_ms(self, fraction: float) -> float:
        latencies = sorted(s.latency for s in self.samples if s.status)
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] * 1000

    # ---- failures -----------------------------------------------------------------------

    def of(self, *, mode: str, victim: bool) -> list[Sample]:
        return [s for s in self.samples
                if self.plan.mode(s.route) == mode and self.plan.is_victim(s.route) == victim]

    @staticmethod
    def failed(samples: list[Sample]) -> list[Sample]:
        return [s for s in samples if s.status != 200]

    def failures_by_status(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for s in self.samples:
            if s.status != 200:
                counts[s.status] = counts.get(s.status, 0) + 1
        return counts

    def direct_failure_window(self) -> tuple[float, float] | None:
        """First and last failed victim ``direct`` request, in seconds after the kill."""
        failed = self.failed(self.of(mode="direct", victim=True))
        if not failed:
            return None
        return failed[0].started - self.kill_time, failed[-1].started - self.kill_time

    def direct_failure_bound(self) -> int:
        """Failed victim ``direct`` requests the detection bound allows."""
        victims = len({s.route for s in self.of(mode="direct", victim=True)})
        return int(victims * self.plan.per_route_rate * detection_bound_seconds(self.plan)) + 1

    def served_by(self, *, mode: str, start: float, end: float) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in self.of(mode=mode, victim=True):
            if start <= s.started < end and s.status == 200:
                counts[s.upstream or "?"] = counts.get(s.upstream or "?", 0) + 1
        return counts

    # ---- memory -------------------------------------------------------------------------

    def rss_thirds(self) -> tuple[float, float]:
        """Mean resident memory (MiB) over the first and the last third of the run."""
        values = [v for _, v in self.rss_mib]
        third = max(1, len(values) // 3)
        return statistics.fmean(values[:third]), statistics.fmean(values[-third:])


# ---- the load generator ---------------------------------------------------------------------


async def generate(port: int, paths: list[str], *, rate_per_second: float,
                   duration_seconds: float, connections: int,
                   at: list[tuple[float, object]] = ()
                   ) -> tuple[list[Sample], float, list[tuple[float, float]]]:
    """Send GETs round-robin over ``paths`` at a fixed rate; every outcome, the seconds until
    the last answer, and when each ``at`` action (seconds, blocking callable, run off the
    loop) actually happened (seconds into the run, and wall-clock time)."""
    samples: list[Sample] = []
    timeout = aiohttp.ClientTimeout(total=15)
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    loop = asyncio.get_running_loop()
    pending_actions = sorted(enumerate(at), key=lambda a: a[1][0])
    actions: list[asyncio.Future] = []
    happened = [float("nan")] * len(pending_actions)
    walls = [float("nan")] * len(pending_actions)

    def timed(index: int, action) -> None:
        action()
        happened[index] = time.monotonic() - begin
        walls[index] = time.time()
    base = f"http://127.0.0.1:{port}"

    async def one(index: int, due: float, session: aiohttp.ClientSession) -> None:
        route = index % len(paths)
        try:
            async with session.get(base + paths[route]) as response:
                await response.read()
                sample = Sample(due, route, response.status, response.headers.get("X-Upstream"),
                                time.monotonic() - begin - due)
        except (TimeoutError, aiohttp.ClientError, OSError):
            sample = Sample(due, route, 0, None, time.monotonic() - begin - due)
        samples.append(sample)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     auto_decompress=False) as session:
        tasks: set[asyncio.Task] = set()
        begin = time.monotonic()
        sent = 0
        total = int(rate_per_second * duration_seconds)
        while sent < total:
            elapsed = time.monotonic() - begin
            while pending_actions and pending_actions[0][1][0] <= elapsed:
                index, (_, action) = pending_actions.pop(0)
                actions.append(loop.run_in_executor(None, timed, index, action))
            due_now = min(total, int(elapsed * rate_per_second) + 1)
            while sent < due_now:
                task = asyncio.create_task(one(sent, sent / rate_per_second, session))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(0.002)
        if tasks:
            await asyncio.wait(tasks)
        if actions:
            await asyncio.gather(*actions)
        elapsed = time.monotonic() - begin
    samples.sort(key=lambda s: s.started)
    return samples, elapsed, list(zip(happened, walls, strict=True))


async def closed_loop(port: int, path: str, *, seconds: float, clients: int = 64) -> float:
    """Responses per second (200s only) with ``clients`` sending back to back for ``seconds``."""
    done = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        end = time.monotonic() + seconds

        async def client() -> None:
            nonlocal done
            while time.monotonic() < end:
                try:
                    async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                        await response.read()
                        done += response.status == 200
                except (TimeoutError, aiohttp.ClientError, OSError):
                    pass

        await asyncio.gather(*(client() for _ in range(clients)))
    return done / seconds


class RssSampler:
    """Resident memory of a process, sampled every second in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._begin = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.samples.append((time.monotonic() - self._begin,
                                             int(line.split()[1]) / 1024))
            self._stop.wait(1.0)


# ---- the scenario ---------------------------------------------------------------------------


def _aws(turnout: Turnout, service: str):
    return boto3.client(service, endpoint_url=turnout.env["AWS_ENDPOINT_URL"],
                        region_name="us-east-1", aws_access_key_id="local",
                        aws_secret_access_key="local")


def wait_for_quiet_workflows(turnout: Turnout, route_ids: list[str], *,
                             quiet_seconds: float = 6.0, timeout: float = 400.0) -> float:
    """Wait until the failover workflow is quiet: every route has had its executions, none is
    running and none started for ``quiet_seconds``. Every new route's alarms go to OK once
    probed, and each change starts an execution (one at a time, locally); the scenario starts
    from the steady state after them. Seconds waited."""
    sfn = _aws(turnout, "stepfunctions")
    arn = turnout.outputs["FailoverStateMachineArn"]
    started = time.monotonic()
    last_count, quiet_since = -1, time.monotonic()
    while time.monotonic() - started < timeout:
        executions = []
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
            executions.extend(page["executions"])
        running = any(e["status"] == "RUNNING" for e in executions)
        seen = {r for r in route_ids if any(e["name"].startswith(f"{r}-") for e in executions)}
        if running or len(executions) != last_count or len(seen) < len(route_ids):
            last_count, quiet_since = len(executions), time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_seconds:
            break
        time.sleep(1.0)
    return time.monotonic() - started


def failover_timeline(turnout: Turnout, route_ids: list[str], killed_at: float
                      ) -> dict[str, float | None]:
    """Seconds from ``killed_at`` to each route's first failover switch (its audit item)."""
    ddb = _aws(turnout, "dynamodb")
    out: dict[str, float | None] = {}
    for route_id in route_ids:
        items = [from_item(i) for i in ddb.query(
            TableName=turnout.outputs["StateTableName"], ConsistentRead=True,
            KeyConditionExpression="route_id = :r",
            ExpressionAttributeValues={":r": {"S": route_id}})["Items"]]
        switches = [when.timestamp() - killed_at for item in items
                    if item["kind"].startswith("failover#") and item.get("switch_kind") == "failover"
                    and (when := parse_time(item.get("time"))) is not None
                    and when.timestamp() >= killed_at]
        out[route_id] = min(switches, default=None)
    return out


def route_doc(plan: LoadPlan, index: int, primary: Upstream, backup: Upstream) -> dict:
    victim = plan.is_victim(index)
    doc = {
        "route_id": f"load-{index:02d}", "path": f"/load{index:02d}/{{proxy+}}",
        "methods": ["GET"], "mode": plan.mode(index),
        "upstreams": [
            {"name": "primary", "url": primary.url, "priority": 0, "allow_insecure": True},
            {"name": "backup", "url": backup.url, "priority": 1, "allow_insecure": True},
        ],
        "health_check": {"path": "/health"},
        "failover": {"automatic": True, "failback": True,
                     "min_hold_seconds": plan.min_hold_seconds},
    }
    if victim:
        doc["health_check"].update(interval_seconds=plan.interval_seconds,
                                   timeout_ms=plan.timeout_ms,
                                   unhealthy_threshold=plan.unhealthy_threshold,
                                   healthy_threshold=plan.healthy_threshold)
    if plan.mode(index) == "proxy":
        doc["retries"] = {"attempts": 1, "on": ["connect-failure", "5xx", "timeout"]}
        doc["timeout_ms"] = 5000
    return doc


def write_routes(turnout: Turnout, docs: list[dict]) -> None:
    table = turnout.outputs["RoutesTableName"]
    for start in range(0, len(docs), 25):
        request = {table: [{"PutRequest": {"Item": to_item(d)}} for d in docs[start:start + 25]]}
        turnout.aws("dynamodb", "batch-write-item", "--request-items", json.dumps(request))


def run_load(plan: LoadPlan, *, progress=print) -> LoadReport:
    """The whole scenario (see the module docstring)."""
    started = time.monotonic()
    turnout = Turnout("--apigateway-rate", "200")
    ready_seconds = time.monotonic() - started
    victim, steady, backup = Upstream("victim"), Upstream("steady"), Upstream("backup")
    try:
        docs = [route_doc(plan, i, victim if plan.is_victim(i) else steady, backup)
                for i in range(plan.routes)]
        routes_at = time.monotonic()
        write_routes(turnout, docs)
        paths = [f"/load{i:02d}/x" for i in range(plan.routes)]
        turnout.wait_for(lambda: all(turnout.call("GET", p)[1].get("X-Upstream") == "victim"
                                     for i, p in enumerate(paths) if plan.is_victim(i)),
                         timeout=300, what="every route serving from its primary")
        turnout.wait_for(lambda: all(turnout.call("GET", p)[0] == 200 for p in paths),
                         timeout=300, what="every route serving")
        routes_ready = time.monotonic() - routes_at
        settle_seconds = wait_for_quiet_workflows(turnout, [d["route_id"] for d in docs])
        progress(f"failover workflow quiet after {settle_seconds:.0f} s (the new routes' alarms)")
        capacity = {}
        if plan.capacity_seconds > 0:
            direct = next(i for i in range(plan.routes) if plan.mode(i) == "direct"
                          and not plan.is_victim(i))
            proxy = next((i for i in range(plan.routes) if plan.mode(i) == "proxy"
                          and not plan.is_victim(i)), None)
            for mode, index in (("direct", direct), ("proxy", proxy)):
                if index is not None:
                    capacity[mode] = asyncio.run(closed_loop(
                        turnout.gateway_port, paths[index], seconds=plan.capacity_seconds))
            progress("capacity: " + ", ".join(f"{k} route {v:.0f}/s" for k, v in capacity.items()))
        progress(f"{plan.routes} routes serving after {routes_ready:.1f} s; "
                 f"offering {plan.rate_per_second:.0f} requests/s for {plan.duration_seconds:.0f} s")
        with RssSampler(turnout.proc.pid) as rss:
            samples, elapsed, ((kill_time, killed_at), (restore_time, _)) = asyncio.run(generate(
                turnout.gateway_port, paths, rate_per_second=plan.rate_per_second,
                duration_seconds=plan.duration_seconds, connections=plan.connections,
                at=[(plan.kill_at * plan.duration_seconds, victim.kill),
                    (plan.restore_at * plan.duration_seconds, victim.start)]))
        return LoadReport(plan=plan, samples=samples, elapsed_seconds=elapsed,
                          kill_time=kill_time, restore_time=restore_time, rss_mib=rss.samples,
                          ready_seconds=ready_seconds, routes_ready_seconds=routes_ready,
                          settle_seconds=settle_seconds, capacity=capacity,
                          timeline=failover_timeline(turnout, [d["route_id"] for i, d in enumerate(docs)
                                                               if plan.is_victim(i)], killed_at))
    finally:
        for upstream in (victim, steady, backup):
            upstream.close()
        turnout.stop()


def summary_lines(report: LoadReport) -> list[str]:
    """The figures of one run, for people."""
    plan = report.plan
    proxy = report.of(mode="proxy", victim=True) + report.of(mode="proxy", victim=False)
    direct_victims = report.of(mode="direct", victim=True)
    direct_others = report.of(mode="direct", victim=False)
    window = report.direct_failure_window()
    first, last = report.rss_thirds() if report.rss_mib else (float("nan"), float("nan"))
    after_kill = report.served_by(mode="direct", start=report.kill_time + detection_bound_seconds(plan),
                                  end=report.restore_time)
    end = report.served_by(mode="direct", start=plan.duration_seconds - 5,
                           end=plan.duration_seconds)
    lines = []
    if report.capacity:
        lines.append("most the gateway served, 64 clients back to back on one route: "
                     + ", ".join(f"{mode} {rate:.0f} requests/s"
                                 for mode, rate in report.capacity.items()))
    return lines + [
        f"set-up: turnout up ready in {report.ready_seconds:.0f} s, {plan.routes} routes serving "
        f"{report.routes_ready_seconds:.0f} s after the write, the failover workflow quiet "
        f"{report.settle_seconds:.0f} s later (each new route's alarms start an execution)",
        f"routes: {plan.routes} ({plan.proxy_routes} proxy, {plan.routes - plan.proxy_routes} "
        f"direct), 2 upstreams each; {plan.victim_routes} share the primary that is killed at "
        f"{report.kill_time:.1f} s and restored at {report.restore_time:.1f} s",
        f"offered {report.offered_rate:.0f} requests/s for {plan.duration_seconds:.0f} s "
        f"({len(report.samples)} requests); achieved {report.achieved_rate:.0f} responses/s "
        f"(run took {report.elapsed_seconds:.1f} s); latency p50 {report.latency_ms(0.5):.0f} ms, "
        f"p99 {report.latency_ms(0.99):.0f} ms",
        f"failed: proxy routes {len(report.failed(proxy))} of {len(proxy)}; direct routes on the "
        f"killed primary {len(report.failed(direct_victims))} of {len(direct_victims)} (bound "
        f"{report.direct_failure_bound()}: {detection_bound_seconds(plan):.1f} s of detection at "
        f"{plan.per_route_rate:.0f} requests/s per route); other direct routes "
        f"{len(report.failed(direct_others))} of {len(direct_others)}",
        "failed requests by answer: " + (", ".join(
            f"{'no answer within 15 s' if status == 0 else status}: {count}"
            for status, count in sorted(report.failures_by_status().items())) or "none"),
        "direct failures on the killed primary: "
        + (f"from {window[0]:.1f} s to {window[1]:.1f} s after the kill" if window else "none"),
        f"victims' direct traffic after detection: {after_kill}; in the last 5 s: {end}",
        "seconds from the kill to each victim's switch: " + ", ".join(
            f"{r} {_s(v)}" for r, v in sorted(report.timeline.items())),
        f"turnout up resident memory: first third {first:.0f} MiB, last third {last:.0f} MiB "
        f"({len(report.rss_mib)} samples)",
    ]


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
