"""Passive outlier detection: an upstream that keeps failing is skipped for a while.

Every try reports its outcome. ``consecutive_failures`` failures in a row (connect failures,
resets, 5xx answers, and tries that another upstream beat after they had passed their hedging
delay) eject the upstream; so do ``consecutive_timeouts`` timeouts in a row (by default the
first: a try that waited its whole time budget without an answer is the sign of a hung
upstream, and every concurrent request should stop choosing it at once). An ejected upstream
is tried only after every other upstream until the ejection ends, then readmitted. The
ejection lasts ``base_ejection_seconds`` times the number of times it has been ejected (at
most ``max_ejection_seconds``), so an upstream that keeps failing stays out longer each time;
each ``base_ejection_seconds`` spent without an ejection forgives one of them. This is Envoy's
``consecutive_5xx`` and ``consecutive_local_origin_failure`` with ``base_ejection_time`` and
``max_ejection_time``.

The state lives in the function's memory, so it is per instance and survives between
invocations of a warm instance. The clock is injected; the detector is thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass(frozen=True)
class OutlierPolicy:
    """When an upstream is ejected, and for how long."""

    consecutive_failures: int = 3
    consecutive_timeouts: int = 1
    base_ejection_seconds: float = 30.0
    max_ejection_seconds: float = 300.0


@dataclass
class _Record:
    failures: int = 0
    timeouts: int = 0
    ejections: int = 0
    ejected_until: float | None = None


class OutlierDetector:
    """Consecutive-failure ejection of upstreams, keyed by any hashable upstream identity."""

    MAX_TRACKED = 10_000

    def __init__(self, policy: OutlierPolicy | None = None, *, clock: Clock = time.monotonic) -> None:
        self.policy = policy or OutlierPolicy()
        self._clock = clock
        self._records: dict[Hashable, _Record] = {}
        self._lock = threading.Lock()

    def is_ejected(self, key: Hashable) -> bool:
        """Whether ``key`` is ejected now."""
        with self._lock:
            record = self._records.get(key)
            return record is not None and self._ejected(record, self._clock())

    def record_success(self, key: Hashable) -> None:
        """A try of ``key`` got an answer that is not a failure."""
        with self._lock:
            record = self._records.get(key)
            if record is not None:
                record.failures = record.timeouts = 0

    def record_failure(self, key: Hashable, *, timeout: bool = False) -> bool:
        """A try of ``key`` failed (``timeout``: it got no answer in its whole time budget);
        True when this failure ejected it."""
        with self._lock:
            now = self._clock()
            record = self._records.get(key)
            if record is None:
                self._forget_if_full()
                record = self._records[key] = _Record()
            if self._ejected(record, now):
                return False
            record.failures += 1
            record.timeouts = record.timeouts + 1 if timeout else 0
            if (record.failures < self.policy.consecutive_failures
                    and record.timeouts < self.policy.consecutive_timeouts):
                return False
            self._eject(record, now)
            return True

    def _eject(self, record: _Record, now: float) -> None:
        policy = self.policy
        if record.ejected_until is not None and policy.base_ejection_seconds > 0:
            forgiven = int((now - record.ejected_until) // policy.base_ejection_seconds)
            record.ejections = max(0, record.ejections - forgiven)
        record.ejections += 1
        seconds = min(policy.base_ejection_seconds * record.ejections, policy.max_ejection_seconds)
        record.ejected_until = now + seconds
        record.failures = record.timeouts = 0

    @staticmethod
    def _ejected(record: _Record, now: float) -> bool:
        return record.ejected_until is not None and now < record.ejected_until

    def _forget_if_full(self) -> None:
        if len(self._records) < self.MAX_TRACKED:
            return
        now = self._clock()
        for key in [k for k, r in self._records.items() if not self._ejected(r, now)]:
            del self._records[key]
