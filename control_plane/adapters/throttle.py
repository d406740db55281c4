"""Client-side pacing and accounting of AWS calls.

API Gateway's control plane allows about 10 requests/s per account (burst 40) and one
CreateDeployment per 5 s. :class:`TokenBucket` paces calls before they leave the process;
:class:`CallCounter` counts every call by operation so each reconcile can report how many
AWS calls (and how many writes) it spent. Both attach to a real boto3 client through
botocore's event hooks, so nothing in the reconcile logic has to remember to use them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

READ_PREFIXES = ("Get", "Describe", "List", "Query", "Scan", "BatchGet")


def is_write(operation: str) -> bool:
    return not operation.startswith(READ_PREFIXES)


class TokenBucket:
    """A thread-safe token bucket: ``rate_per_second`` refill, ``burst`` capacity."""

    def __init__(
        self,
        rate_per_second: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_second <= 0 or burst < 1:
            raise ValueError("rate_per_second must be > 0 and burst >= 1")
        self.rate = float(rate_per_second)
        self.capacity = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()
        self.waited_seconds = 0.0

    def acquire(self, tokens: float = 1.0) -> float:
        """Take ``tokens``, sleeping until they are available. Returns the time waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= tokens:
                    self._tokens -= tokens
                    self.waited_seconds += waited
                    return waited
                need = (tokens - self._tokens) / self.rate
            self._sleep(need)
            waited += need


class CallCounter:
    """Counts AWS calls per ``service.Operation``."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, service: str, operation: str) -> None:
        with self._lock:
            self.calls[f"{service}.{operation}"] += 1

    def total(self, service: str | None = None) -> int:
        return sum(n for key, n in self.calls.items()
                   if service is None or key.startswith(service + "."))

    def writes(self, service: str | None = None) -> int:
        return sum(n for key, n in self.calls.items()
                   if (service is None or key.startswith(service + "."))
                   and is_write(key.split(".", 1)[1]))

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.calls)


def attach(client, *, counter: CallCounter | None = None, bucket: TokenBucket | None = None):
    """Attach counting (per call) and pacing (per HTTP attempt, retries included) to a client."""
    service = client.meta.service_model.service_name

    def on_call(model, **kwargs):
        if counter is not None:
            counter.record(service, model.name)

    def on_send(request, **kwargs):
        if bucket is not None:
            bucket.acquire()
        return None  # returning a response here would short-circuit the request

    client.meta.events.register("before-call", on_call)
    client.meta.events.register("before-send", on_send)
    return client
