"""The prober's loop: every upstream of every valid route, probed concurrently for the length
of one invocation.

    prober = Prober(routes=..., store=..., reporter=..., settings=ProberSettings(...))
    summary = prober.run(deadline=time.monotonic() + 55)

Each upstream is a :class:`~control_plane.health.jobs.ProbeJob`, probed every
``interval_seconds`` (:class:`~control_plane.health.schedule.ProbeSchedule`). A probe round
sends every endpoint of the job (one URL, or every target) to a thread pool at once and ends
when all answered or when the job's timeout has passed, whichever is first: an endpoint that has
not answered by then has failed ("timed out"), and a probe still stuck in its thread keeps the
next probe of that endpoint from starting (that one fails too) instead of piling up threads.
So a slow or hanging upstream costs one thread and never delays another upstream's probes.

After each round, fall/rise (:mod:`~control_plane.health.fall_rise`) decides the verdict; a
``targets`` upstream is healthy while any of its targets is, and its streaks are its best
target's. The :class:`~control_plane.health.reporter.Reporter` then gets:

- a metric datapoint (every round);
- the health item, when the verdict, the error or a target's verdict changed, when the route's
  version changed, or after ``heartbeat_seconds`` of rounds without a write (so
  ``last_probe_time`` stays fresh without a write per probe), and once more at the end of the
  invocation when anything changed since the last write, so the next invocation continues the
  streaks where this one stopped;
- the ``Upstream Health Changed`` event when the verdict flipped.

Routes are re-read every ``routes_refresh_seconds``: a new route is probed within that time,
a deleted one stops being probed. The invocation keeps running without routes, to pick new
ones up. Rounds still open at the deadline are dropped without a verdict.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

from control_plane.errors import GatewayError, InvalidRouteError
from control_plane.health import http_probe
from control_plane.health.fall_rise import INITIAL, HealthState, observe
from control_plane.health.jobs import Endpoint, ProbeJob, jobs_for
from control_plane.health.reporter import Datapoint, Report, Reporter
from control_plane.health.schedule import ProbeSchedule
from control_plane.model.health import TargetProbeState, UpstreamProbeRecord
from control_plane.model.health_signals import upstream_health_changed
from control_plane.model.validation import validate_route

Key = tuple[str, str]
ProbeFunction = Callable[..., http_probe.ProbeResult]


@dataclass(frozen=True)
class ProberSettings:
    allow_loopback: bool = False
    routes_refresh_seconds: float = 10.0
    heartbeat_seconds: float = 30.0
    max_workers: int = 128


@dataclass
class ProbeSummary:
    routes: int = 0
    skipped_routes: int = 0
    upstreams: int = 0
    rounds: int = 0
    probes: int = 0
    changes: int = 0
    dropped_rounds: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _Tracker:
    job: ProbeJob
    state: HealthState = INITIAL
    targets: dict[str, TargetProbeState] = field(default_factory=dict)
    record: UpstreamProbeRecord | None = None
    stored: UpstreamProbeRecord | None = None
    rounds_since_write: int = 0
    running: dict[str, Future] = field(default_factory=dict)


@dataclass
class _Round:
    key: Key
    deadline: float
    pending: dict[Future, str] = field(default_factory=dict)
    results: dict[str, http_probe.ProbeResult] = field(default_factory=dict)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class Prober:
    """Probes every route's upstreams until a deadline (see the module docstring)."""

    def __init__(self, *, routes: Callable[[], list[dict]], store, reporter: Reporter,
                 settings: ProberSettings = ProberSettings(),
                 probe: ProbeFunction = http_probe.probe,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] = lambda: datetime.now(UTC),
                 logger=None) -> None:
        self._routes = routes
        self._store = store
        self._reporter = reporter
        self._settings = settings
        self._probe = probe
        self._clock = clock
        self._wall = wall
        self._logger = logger
        self._trackers: dict[Key, _Tracker] = {}
        self._rounds: dict[Key, _Round] = {}
        self.summary = ProbeSummary()

    # ---- the loop ------------------------------------------------------------------------

    def run(self, deadline: float) -> ProbeSummary:
        """Probe until ``deadline`` (on the ``clock``), then write what is left."""
        start = self._clock()
        schedule = ProbeSchedule(start=start, deadline=deadline)
        pool = ThreadPoolExecutor(max_workers=self._settings.max_workers,
                                  thread_name_prefix="turnout-probe")
        try:
            self._refresh(schedule, start)
            next_refresh = start + self._settings.routes_refresh_seconds
            while True:
                now = self._clock()
                if now >= deadline:
                    break
                if now >= next_refresh:
                    self._refresh_or_keep(schedule, now)
                    next_refresh = now + self._settings.routes_refresh_seconds
                self._expire_rounds(now)
                for key in schedule.due(now):
                    self._start_round(pool, key, now)
                wake = schedule.next_wake(now)
                if wake is None and not self._rounds and next_refresh >= deadline:
                    break
                self._wait(min(t for t in (wake, next_refresh, deadline,
                                           *(r.deadline for r in self._rounds.values()))
                               if t is not None))
            self.summary.dropped_rounds += len(self._rounds)
            self._rounds.clear()
            self._flush()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return self.summary

    def _wait(self, until: float) -> None:
        timeout = max(0.0, until - self._clock())
        futures = [f for r in self._rounds.values() for f in r.pending]
        if not futures:
            time.sleep(timeout)
            return
        done, _ = wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            self._collect(future)

    # ---- routes -> jobs ------------------------------------------------------------------

    def _refresh_or_keep(self, schedule: ProbeSchedule, now: float) -> None:
        """Re-read the routes; on an AWS failure keep probing what was read before."""
        try:
            self._refresh(schedule, now)
        except GatewayError as exc:
            if self._logger is not None:
                self._logger.warning("could not re-read the routes; probing the known ones",
                                     extra={"reason": exc.reason, "error": str(exc)[:300]})

    def _refresh(self, schedule: ProbeSchedule, now: float) -> None:
        jobs = self._read_jobs()
        wanted = {job.key: job for job in jobs}
        for key in list(self._trackers):
            if key not in wanted:
                self._trackers.pop(key)
                self._rounds.pop(key, None)
                schedule.remove(key)
        fresh = [k for k, job in wanted.items()
                 if k not in self._trackers or self._trackers[k].job.fingerprint != job.fingerprint]
        stored = self._store.get_records(fresh) if fresh else {}
        for key, job in wanted.items():
            tracker = self._trackers.get(key)
            if key in fresh:
                previous = tracker.stored if tracker is not None else stored.get(key)
                self._trackers[key] = self._tracker_for(job, previous)
                self._rounds.pop(key, None)
                schedule.add(key, interval=job.interval_seconds, timeout=job.timeout_seconds,
                             due=self._first_due(job, self._trackers[key].record, now))
            elif tracker is not None and tracker.job != job:
                timing_changed = (tracker.job.interval_seconds, tracker.job.timeout_seconds) != (
                    job.interval_seconds, job.timeout_seconds)
                tracker.job = job
                if timing_changed:
                    schedule.add(key, interval=job.interval_seconds,
                                 timeout=job.timeout_seconds, due=now)
        self.summary.upstreams = len(self._trackers)

    def _read_jobs(self) -> list[ProbeJob]:
        jobs: list[ProbeJob] = []
        routes = skipped = 0
        for document in self._routes():
            try:
                route = validate_route(document, allow_loopback=self._settings.allow_loopback)
            except InvalidRouteError:
                skipped += 1
                continue
            routes += 1
            jobs.extend(jobs_for(route))
        self.summary.routes, self.summary.skipped_routes = routes, skipped
        return jobs

    def _tracker_for(self, job: ProbeJob, stored: UpstreamProbeRecord | None) -> _Tracker:
        """Continue from the stored record when it is about the same endpoints."""
        tracker = _Tracker(job=job, stored=stored)
        same = stored is not None and stored.upstream_kind == job.kind and (
            job.kind == "targets" or stored.url == job.url)
        if same and stored is not None:
            tracker.state = HealthState(stored.healthy, stored.consecutive_successes,
                                        stored.consecutive_failures)
            keys = {e.key for e in job.endpoints}
            tracker.targets = {k: v for k, v in stored.target_probes.items() if k in keys}
            tracker.record = stored
        return tracker

    def _first_due(self, job: ProbeJob, record: UpstreamProbeRecord | None, now: float) -> float:
        last = _parse_iso(record.last_probe_time if record is not None else None)
        if last is None:
            return now
        since = (self._wall() - last).total_seconds()
        return now + min(job.interval_seconds, max(0.0, job.interval_seconds - since))

    # ---- rounds --------------------------------------------------------------------------

    def _start_round(self, pool: ThreadPoolExecutor, key: Key, now: float) -> None:
        tracker = self._trackers[key]
        job = tracker.job
        if key in self._rounds:  # the previous round is still open: it ends first
            self._finish_round(self._rounds.pop(key))
        round_ = _Round(key=key, deadline=now + job.timeout_seconds)
        for endpoint in job.endpoints:
            running = tracker.running.get(endpoint.key)
            if running is not None and not running.done():
                round_.results[endpoint.key] = http_probe.ProbeResult(
                    False, None, "the previous probe is still running (timed out)")
                continue
            future = pool.submit(self._probe_one, endpoint, job)
            tracker.running[endpoint.key] = future
            round_.pending[future] = endpoint.key
            self.summary.probes += 1
        self._rounds[key] = round_
        if not round_.pending:
            self._finish_round(self._rounds.pop(key))

    def _probe_one(self, endpoint: Endpoint, job: ProbeJob) -> http_probe.ProbeResult:
        return self._probe(endpoint, timeout_seconds=job.timeout_seconds,
                           expected_statuses=job.expected_statuses,
                           allow_loopback=self._settings.allow_loopback)

    def _collect(self, future: Future) -> None:
        for key, round_ in list(self._rounds.items()):
            endpoint_key = round_.pending.pop(future, None)
            if endpoint_key is None:
                continue
            try:
                round_.results[endpoint_key] = future.result()
            except Exception as exc:  # noqa: BLE001 - a probe bug is that probe's failure
                round_.results[endpoint_key] = http_probe.ProbeResult(
                    False, None, f"probe failed ({type(exc).__name__})")
            if not round_.pending:
                self._finish_round(self._rounds.pop(key))
            return

    def _expire_rounds(self, now: float) -> None:
        for key, round_ in list(self._rounds.items()):
            if now >= round_.deadline:
                self._finish_round(self._rounds.pop(key))

    def _finish_round(self, round_: _Round) -> None:
        tracker = self._trackers.get(round_.key)
        if tracker is None:
            return
        job = tracker.job
        timeout_text = f"timed out after {round(job.timeout_seconds * 1000)} ms"
        for endpoint_key in round_.pending.values():
            round_.results.setdefault(endpoint_key, http_probe.ProbeResult(False, None, timeout_text))
        round_.pending.clear()
        self.summary.rounds += 1
        at = self._wall()
        if job.kind == "targets":
            state, error = self._judge_targets(tracker, round_.results, iso(at))
        else:
            result = round_.results.get(job.endpoints[0].key) or http_probe.ProbeResult(
                False, None, timeout_text)
            state = observe(tracker.state, result.success,
                            unhealthy_threshold=job.unhealthy_threshold,
                            healthy_threshold=job.healthy_threshold)
            error = None if result.success else result.error
        self._decide(tracker, state, error, at)

    def _judge_targets(self, tracker: _Tracker, results: dict[str, http_probe.ProbeResult],
                       now_text: str) -> tuple[HealthState, str | None]:
        job = tracker.job
        targets: dict[str, TargetProbeState] = {}
        errors: list[str] = []
        for endpoint in job.endpoints:
            result = results.get(endpoint.key) or http_probe.ProbeResult(False, None, "no result")
            before = tracker.targets.get(endpoint.key, TargetProbeState())
            after = observe(HealthState(before.healthy, before.consecutive_successes,
                                        before.consecutive_failures), result.success,
                            unhealthy_threshold=job.unhealthy_threshold,
                            healthy_threshold=job.healthy_threshold)
            changed = after.healthy != before.healthy or before.last_change_time is None
            targets[endpoint.key] = TargetProbeState(
                healthy=after.healthy, consecutive_successes=after.consecutive_successes,
                consecutive_failures=after.consecutive_failures,
                last_error=None if result.success else result.error,
                last_change_time=now_text if changed else before.last_change_time)
            if not result.success:
                errors.append(f"{endpoint.key}: {result.error}")
        tracker.targets = targets
        states = list(targets.values())
        state = HealthState(
            healthy=any(t.healthy for t in states),
            consecutive_successes=max(t.consecutive_successes for t in states),
            consecutive_failures=min(t.consecutive_failures for t in states))
        succeeded = len(errors) < len(states)
        return state, None if succeeded else errors[0]

    def _decide(self, tracker: _Tracker, state: HealthState, error: str | None,
                at: datetime) -> None:
        job = tracker.job
        previous = tracker.record
        flipped = previous is not None and previous.healthy != state.healthy
        if previous is None:
            flipped = not state.healthy
        now_text = iso(at)
        record = UpstreamProbeRecord(
            route_id=job.route_id, upstream=job.upstream, upstream_kind=job.kind,
            healthy=state.healthy, consecutive_successes=state.consecutive_successes,
            consecutive_failures=state.consecutive_failures, last_probe_time=now_text,
            last_change_time=(now_text if flipped or previous is None
                              else previous.last_change_time),
            last_error=error, spec_hash=job.spec_hash, url=job.url,
            target_probes=MappingProxyType(dict(tracker.targets)))
        tracker.state = state
        tracker.record = record
        tracker.rounds_since_write += 1
        heartbeat = max(1, math.ceil(self._settings.heartbeat_seconds / job.interval_seconds))
        write = (flipped or _verdicts_differ(record, tracker.stored)
                 or tracker.rounds_since_write >= heartbeat)
        event = None
        if flipped:
            self.summary.changes += 1
            event = upstream_health_changed(
                route_id=job.route_id, spec_hash=job.spec_hash, upstream=job.upstream,
                upstream_kind=job.kind, healthy=state.healthy,
                consecutive_successes=state.consecutive_successes,
                consecutive_failures=state.consecutive_failures, last_error=error, time=now_text,
                targets=({k: t.healthy for k, t in tracker.targets.items()}
                         if job.kind == "targets" else None))
            if self._logger is not None:
                self._logger.info("upstream health changed", extra={
                    "route_id": job.route_id, "upstream": job.upstream,
                    "healthy": state.healthy, "last_error": error})
        if write:
            tracker.stored = record
            tracker.rounds_since_write = 0
        self._reporter.submit(Report(
            record=record if write else None, event=event,
            datapoint=Datapoint(job.route_id, job.upstream, state.healthy, at)))

    def _flush(self) -> None:
        for tracker in self._trackers.values():
            if tracker.record is not None and tracker.record != tracker.stored:
                tracker.stored = tracker.record
                tracker.rounds_since_write = 0
                self._reporter.submit(Report(record=tracker.record))


def _verdicts_differ(record: UpstreamProbeRecord, stored: UpstreamProbeRecord | None) -> bool:
    """Whether the stored item tells readers something else than ``record``."""
    if stored is None:
        return True
    return (stored.healthy != record.healthy or stored.last_error != record.last_error
            or stored.spec_hash != record.spec_hash or stored.url != record.url
            or {k: t.healthy for k, t in stored.target_probes.items()}
            != {k: t.healthy for k, t in record.target_probes.items()})
