"""turnout's events: what is published on its EventBridge bus (schemas in ``schemas/events/``).

Every event has source ``turnout``, a ``detail-type`` from :data:`DETAIL_TYPES`, and a
``detail`` carrying at least ``route_id`` and ``spec_hash``. Never a secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SOURCE = "turnout"

ROUTE_READY = "Route Ready"
ROUTE_REJECTED = "Route Rejected"
ROUTE_FAILED = "Route Failed"
ROUTE_DELETED = "Route Deleted"

DETAIL_TYPES = (ROUTE_READY, ROUTE_REJECTED, ROUTE_FAILED, ROUTE_DELETED)


@dataclass(frozen=True)
class Event:
    detail_type: str
    detail: dict
    resources: tuple[str, ...] = field(default=())


def route_event(detail_type: str, *, route_id: str, spec_hash: str | None, phase: str,
                reason: str | None, message: str | None, time: str,
                active_upstream: str | None = None, path: str | None = None,
                methods: list[str] | None = None, problems: list[dict] | None = None) -> Event:
    detail: dict = {
        "route_id": route_id,
        "spec_hash": spec_hash,
        "phase": phase,
        "reason": reason,
        "message": message,
        "time": time,
    }
    if active_upstream is not None:
        detail["active_upstream"] = active_upstream
    if path is not None:
        detail["path"] = path
    if methods is not None:
        detail["methods"] = methods
    if problems is not None:
        detail["problems"] = problems
    return Event(detail_type=detail_type, detail=detail)
