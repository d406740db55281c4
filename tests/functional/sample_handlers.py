"""Small Lambda handlers for the local cloud's tests.

They run in the test process (that is the point of the local cloud), so each one writes what it
received into :data:`CALLS`, keyed by the function's name, for the test to read back.

Stream items steer the handlers through their attributes:
``fail: "always"`` (reported as a batch item failure every time), ``fail: "once"`` (reported
the first time only), ``poison: true`` (the handler raises while the batch contains it).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

from control_plane.settings import environ

CALLS: dict[str, list[Any]] = defaultdict(list)
_seen: set[tuple[str, str]] = set()
_lock = threading.Lock()


def forget() -> None:
    """Start from a clean slate (between tests)."""
    with _lock:
        CALLS.clear()
        _seen.clear()
        MOST_AT_ONCE.clear()
        RELEASE.clear()


def received(function_name: str) -> list[Any]:
    """A copy of what the function was called with, oldest first."""
    with _lock:
        return list(CALLS[function_name])


def sequence_batches(function_name: str) -> list[list[str]]:
    """The batches a stream function received, as lists of sequence numbers."""
    return [[r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
            for event in received(function_name)]


def _note(context: Any, event: Any) -> None:
    with _lock:
        CALLS[context.function_name].append(event)


def _attribute(record: dict[str, Any], name: str) -> dict[str, Any] | None:
    return (record["dynamodb"].get("NewImage") or {}).get(name)


def record_stream(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Keep the batch; report the records marked to fail as batch item failures."""
    _note(context, event)
    failures = []
    for record in event["Records"]:
        seq = record["dynamodb"]["SequenceNumber"]
        mark = (_attribute(record, "fail") or {}).get("S")
        with _lock:
            first_time = (context.function_name, seq) not in _seen
            _seen.add((context.function_name, seq))
        if mark == "always" or (mark == "once" and first_time):
            failures.append({"itemIdentifier": seq})
    return {"batchItemFailures": failures}


def raise_on_poison(event: dict[str, Any], context: Any) -> None:
    """Keep the batch; raise while it contains a record marked ``poison``."""
    _note(context, event)
    if any(_attribute(r, "poison") for r in event["Records"]):
        raise ValueError("poison record in batch")


def describe_invocation(event: Any, context: Any) -> dict[str, Any]:
    """Return what the function saw: its event, context and environment."""
    _note(context, event)
    env = environ()
    return {
        "event": event,
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "invoked_function_arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "greeting": env.get("GREETING"),
        "loopback_allowed": env.get("TURNOUT_ALLOW_LOOPBACK_UPSTREAMS"),
    }


def crash(event: Any, context: Any) -> None:
    """Fail the way a buggy handler does."""
    _note(context, event)
    raise RuntimeError("the upstream table is on fire")


def keep_event(event: Any, context: Any) -> str:
    """Keep the event (EventBridge targets, Step Functions tasks) and acknowledge it."""
    _note(context, event)
    return "kept"


def sleep(event: dict[str, Any], context: Any) -> str:
    """Sleep ``event["seconds"]``: long enough, this outlives the function's timeout."""
    _note(context, event)
    time.sleep(float(event["seconds"]))
    return "awake"


_running: dict[str, int] = defaultdict(int)
MOST_AT_ONCE: dict[str, int] = defaultdict(int)
RELEASE = threading.Event()
"""Set by a test to end the invocations of :func:`overlap` that wait for it."""


def overlap(event: dict[str, Any], context: Any) -> str:
    """Sleep ``event["seconds"]`` (or, with ``until_released``, until :data:`RELEASE` is set),
    counting in :data:`MOST_AT_ONCE` how many ran at once."""
    name = context.function_name
    with _lock:
        _running[name] += 1
        MOST_AT_ONCE[name] = max(MOST_AT_ONCE[name], _running[name])
    try:
        if event.get("until_released"):
            RELEASE.wait(20)
        else:
            time.sleep(float(event.get("seconds", 0.2)))
    finally:
        with _lock:
            _running[name] -= 1
    _note(context, event)
    return "done"
