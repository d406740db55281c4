"""Waiting for applied routes to settle: ``turnout routes apply --wait``.

A route has settled when the control plane's status item for it reports the version that was
applied (its ``observed_spec_hash`` is that version's hash) in a final phase: ``READY``,
``REJECTED`` or ``FAILED``. Statuses of an earlier version, or still ``PENDING``, do not count.
The state table is polled with strongly consistent batch reads; each route is reported once,
as it settles.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from control_plane.model.route import Route
from control_plane.model.status import Phase

FINAL_PHASES = frozenset({Phase.READY.value, Phase.REJECTED.value, Phase.FAILED.value})
NOT_ACCEPTED = frozenset({Phase.REJECTED.value, Phase.FAILED.value})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def version_hashes(route: Route) -> frozenset[str]:
    """The hashes a status may carry for exactly this version of ``route``: its spec hash
    (valid routes) and the hash of its document (the reconciler's for routes it rejects
    before they parse, e.g. loopback upstreams it does not allow)."""
    from control_plane.reconcile.reconciler import document_hash

    return frozenset({route.spec_hash(), document_hash(route.to_document())})


@dataclass
class Settling:
    """Which routes have settled so far, and how."""

    expected: dict[str, frozenset[str]]
    settled: dict[str, dict] = field(default_factory=dict)
    latest: dict[str, dict] = field(default_factory=dict)

    @property
    def waiting(self) -> list[str]:
        return sorted(set(self.expected) - set(self.settled))

    @property
    def not_accepted(self) -> list[str]:
        return sorted(r for r, s in self.settled.items() if s.get("phase") in NOT_ACCEPTED)

    def observe(self, statuses: dict[str, dict]) -> list[dict]:
        """Take in freshly read statuses; returns those that settled now, by route_id."""
        fresh = []
        for route_id in self.waiting:
            status = statuses.get(route_id)
            self.latest[route_id] = status or {}
            if status is None or status.get("observed_spec_hash") not in self.expected[route_id]:
                continue
            if status.get("phase") in FINAL_PHASES:
                self.settled[route_id] = status
                fresh.append(status)
        return fresh

    def describe_waiting(self, limit: int = 3) -> str:
        """``a (no status yet), b (READY for an earlier version)``: where the slow ones are."""
        parts = []
        for route_id in self.waiting[:limit]:
            status = self.latest.get(route_id) or {}
            if not status:
                state = "no status yet"
            elif status.get("observed_spec_hash") not in self.expected[route_id]:
                state = f"{status.get('phase')} for an earlier version"
            else:
                state = str(status.get("phase"))
            parts.append(f"{route_id} ({state})")
        more = len(self.waiting) - limit
        return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def wait_until_settled(
    read: Callable[[Iterable[str]], dict[str, dict]],
    expected: dict[str, frozenset[str]],
    *,
    timeout_seconds: float,
    poll_seconds: float = 0.5,
    on_settled: Callable[[dict], None] = lambda status: None,
    on_poll: Callable[[Settling], None] = lambda settling: None,
) -> Settling:
    """Poll ``read(route_ids) -> {route_id: status}`` until every route of ``expected`` has
    settled or ``timeout_seconds`` passed; returns what was seen (``waiting`` is empty when
    everything settled)."""
    settling = Settling(dict(expected))
    deadline = time.monotonic() + timeout_seconds
    while True:
        for status in settling.observe(read(settling.waiting)):
            on_settled(status)
        on_poll(settling)
        if not settling.waiting or time.monotonic() >= deadline:
            return settling
        time.sleep(min(poll_seconds, max(0.0, deadline - time.monotonic())))


def settled_line(status: dict) -> str:
    """``ready     payments  Serving ...`` / ``rejected  bad  Reason: message``, one line."""
    phase = str(status.get("phase", "")).lower()
    text = str(status.get("message") or "")
    reason = str(status.get("reason") or "")
    if status.get("phase") != Phase.READY.value and reason and reason not in text:
        text = f"{reason}: {text}" if text else reason
    line = f"{phase:<9} {status.get('route_id')}" + (f"  {text}" if text else "")
    return _CONTROL.sub("?", line)
