"""When each probe is due (pure bookkeeping on a monotonic clock, in seconds).

Every job is probed every ``interval`` on a fixed grid (a probe that starts late does not shift
the ones after it; slots missed while the process was busy are skipped, never caught up in a
burst). The invocation has a ``deadline``: a probe starts only if its timeout ends before it,
so the invocation ends with no probe cut short. A job whose timeout is longer than the whole
invocation could never start under that rule; it starts once, at its first due time, and its
result counts only if it arrives before the deadline.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field


@dataclass
class _Entry:
    due: float
    interval: float
    timeout: float
    started_once: bool = False


@dataclass
class ProbeSchedule:
    """Due times of every job of one invocation that runs from ``start`` to ``deadline``."""

    start: float
    deadline: float
    _entries: dict[Hashable, _Entry] = field(default_factory=dict)

    def add(self, key: Hashable, *, interval: float, timeout: float, due: float) -> None:
        """Schedule ``key`` (or reschedule it with new settings) from ``due`` on."""
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._entries[key] = _Entry(due=due, interval=interval, timeout=timeout)

    def remove(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def keys(self) -> list[Hashable]:
        return list(self._entries)

    def due(self, now: float) -> list[Hashable]:
        """Jobs to start now, earliest due first; each is moved to its next slot."""
        ready = sorted((e.due, str(k), k) for k, e in self._entries.items()
                       if e.due <= now and self._may_start(e, now))
        for _, _, key in ready:
            entry = self._entries[key]
            entry.started_once = True
            missed = math.floor((now - entry.due) / entry.interval)
            entry.due += (missed + 1) * entry.interval
        return [key for _, _, key in ready]

    def next_wake(self, now: float) -> float | None:
        """When the next probe may start; None when no job can start again before the deadline."""
        times = [max(e.due, now) for e in self._entries.values()
                 if self._may_start(e, max(e.due, now))]
        return min(times) if times else None

    def _may_start(self, entry: _Entry, at: float) -> bool:
        if at + entry.timeout <= self.deadline:
            return True
        never_fits = entry.timeout > self.deadline - self.start
        return never_fits and not entry.started_once and at < self.deadline
