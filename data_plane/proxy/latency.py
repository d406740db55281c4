"""Recent first-byte latencies per upstream, for the hedging delay.

Every answered try records how long its upstream took from sending the request to the status
line and headers. :meth:`LatencyTracker.percentile` reads the last ``window`` of them (None
until ``min_samples`` have been seen): a hedging delay derived from it adapts to each upstream,
so a fast upstream that hangs is hedged within a fraction of a second while a slow one is given
the time it usually needs. The hedging delay uses the 95th percentile, as in "The Tail at
Scale" (Dean and Barroso): a higher one, taken from a small window, would follow the rare
stalls of the caller itself.

The state lives in the function's memory, per instance, like the outlier detector's; it is
thread-safe.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Hashable


class LatencyTracker:
    """A sliding window of first-byte latencies per upstream key."""

    MAX_TRACKED = 10_000

    def __init__(self, *, window: int = 200, min_samples: int = 20) -> None:
        self.window = window
        self.min_samples = min_samples
        self._samples: dict[Hashable, deque[float]] = {}
        self._lock = threading.Lock()

    def record(self, key: Hashable, seconds: float) -> None:
        """``key`` answered after ``seconds``."""
        with self._lock:
            samples = self._samples.get(key)
            if samples is None:
                if len(self._samples) >= self.MAX_TRACKED:
                    self._samples.clear()
                samples = self._samples[key] = deque(maxlen=self.window)
            samples.append(max(0.0, seconds))

    def percentile(self, key: Hashable, fraction: float) -> float | None:
        """The ``fraction`` percentile (0.95: p95) of ``key``'s recent latencies, or None while
        too few are known."""
        with self._lock:
            samples = self._samples.get(key)
            if samples is None or len(samples) < self.min_samples:
                return None
            ordered = sorted(samples)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
