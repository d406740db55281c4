"""API Gateway's request throttling: token buckets that refuse instead of waiting.

A bucket holds at most ``burst`` tokens and gains ``rate_per_second`` tokens a second; it
starts full, and each request takes one or is refused (429). So a client may send ``burst``
requests at once, then ``rate_per_second`` a second: over ``t`` seconds at most
``burst + rate * t``.

Buckets outlive configuration snapshots (a reload must not hand out a fresh burst), so they
live in a :class:`Throttles` per API stage, shared by every gateway in the process that
serves that stage, as they would share API Gateway's. A bucket whose limits change keeps
its tokens (capped at the new burst).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """``rate_per_second`` refill, ``burst`` capacity."""

    rate_per_second: float
    burst: int


class _Bucket:
    __slots__ = ("limit", "tokens", "updated")

    def __init__(self, limit: Limit, now: float) -> None:
        self.limit = limit
        self.tokens = float(max(limit.burst, 0))
        self.updated = now

    def take(self, limit: Limit, now: float) -> bool:
        if limit != self.limit:
            self.limit = limit
            self.tokens = min(self.tokens, float(max(limit.burst, 0)))
        elapsed = max(0.0, now - self.updated)
        self.updated = now
        capacity = float(max(limit.burst, 0))
        self.tokens = min(capacity, self.tokens + elapsed * max(limit.rate_per_second, 0.0))
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Throttles:
    """Named token buckets; :meth:`allow` takes one token from the bucket ``key``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[Hashable, _Bucket] = {}
        self._lock = threading.Lock()

    def allow(self, key: Hashable, limit: Limit) -> bool:
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(limit, now)
            return bucket.take(limit, now)


_registry: dict[tuple[str, str], Throttles] = {}
_registry_lock = threading.Lock()


def throttles_for(rest_api_id: str, stage_name: str) -> Throttles:
    """The buckets of one API stage in this process."""
    with _registry_lock:
        found = _registry.get((rest_api_id, stage_name))
        if found is None:
            found = _registry[(rest_api_id, stage_name)] = Throttles()
        return found
