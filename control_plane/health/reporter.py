"""Writes what the prober decided, from one background thread, so a slow AWS call never
delays a probe.

Each finished probe round hands a :class:`Report` to :meth:`Reporter.submit` and returns at
once. The reporter thread takes everything queued, then, in this order: writes the health
items (``BatchWriteItem``; the latest record of an upstream wins), publishes the events (an
event is published after the item that says the same, so a reader acting on the event finds
it), and sends the metric datapoints. A failed batch is retried once; after that it is logged
and dropped (the next change or heartbeat writes the state again).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from control_plane.errors import GatewayError
from control_plane.health.metrics import MetricSink
from control_plane.model.events import Event
from control_plane.model.health import UpstreamProbeRecord

log = logging.getLogger(__name__)

RETRY_DELAY_SECONDS = 0.2


@dataclass(frozen=True)
class Datapoint:
    route_id: str
    upstream: str
    healthy: bool
    at: datetime


@dataclass(frozen=True)
class Report:
    """What one probe round (or the end of an invocation) asks to be written."""

    record: UpstreamProbeRecord | None = None
    event: Event | None = None
    datapoint: Datapoint | None = None


@dataclass
class ReporterCounts:
    writes: int = 0
    events: int = 0
    datapoints: int = 0
    failures: int = 0


@dataclass
class Reporter:
    """``store.put_records(records)``, ``publisher.publish(events)`` and ``sink`` in order."""

    store: object
    publisher: object
    sink: MetricSink
    logger: object = field(default=log)
    counts: ReporterCounts = field(default_factory=ReporterCounts)
    _queue: queue.Queue = field(default_factory=queue.Queue)
    _thread: threading.Thread | None = None

    def start(self) -> Reporter:
        self._thread = threading.Thread(target=self._run, name="turnout-probe-reporter",
                                        daemon=True)
        self._thread.start()
        return self

    def submit(self, report: Report) -> None:
        self._queue.put(report)

    def close(self, timeout: float) -> bool:
        """Write everything submitted so far, then stop; False if that took longer."""
        self._queue.put(None)
        if self._thread is None:
            return True
        self._thread.join(max(0.0, timeout))
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            reports = [r for r in batch if r is not None]
            if reports:
                self._write(reports)
            if any(r is None for r in batch):
                return

    def _write(self, reports: list[Report]) -> None:
        records = [r.record for r in reports if r.record is not None]
        events = [r.event for r in reports if r.event is not None]
        points = [r.datapoint for r in reports if r.datapoint is not None]
        if records:
            self.counts.writes += self._attempt("write health items",
                                                lambda: self.store.put_records(records)) or 0
        if events and self._attempt("publish events", lambda: self.publisher.publish(events),
                                    ok=True):
            self.counts.events += len(events)
        if points:
            for point in points:
                self.sink.record(point.route_id, point.upstream, point.healthy, point.at)
            if self._attempt("send metric data", self.sink.flush, ok=True):
                self.counts.datapoints += len(points)

    def _attempt(self, what: str, action, ok=None):
        for attempt in range(2):
            try:
                result = action()
                return ok if ok is not None else result
            except GatewayError as exc:
                if attempt == 0:
                    time.sleep(RETRY_DELAY_SECONDS)
                    continue
                self.counts.failures += 1
                self.logger.warning(f"could not {what}; dropped",
                                    extra={"reason": exc.reason, "error": str(exc)[:300]})
        return None
