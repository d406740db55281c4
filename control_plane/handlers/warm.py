"""What a Lambda function builds once per execution environment and reuses while warm.

A handler's clients and adapters depend on its environment (table names, endpoint, ...). The
:class:`Warm` holder builds them on first use, reuses them while the environment's key stays
the same, and builds afresh when it changes (the local cloud runs several functions, and tests
several configurations, in one process). Concurrent first calls build once: on the local
cloud many invocations of one function start together, and building boto3 clients is costly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class Warm(Generic[T]):
    def __init__(self, build: Callable[[], T], key: Callable[[], Hashable]) -> None:
        self._build = build
        self._key = key
        self._lock = threading.Lock()
        self._current: tuple[Hashable, T] | None = None

    def get(self) -> T:
        """The value built for the current key (built now if the key is new)."""
        key = self._key()
        current = self._current
        if current is not None and current[0] == key:
            return current[1]
        with self._lock:
            current = self._current
            if current is None or current[0] != key:
                current = self._current = (key, self._build())
            return current[1]
