"""Observed state of a route, as the control plane writes it to the state table.

State table layout (partition key ``route_id``, sort key ``kind``):

- ``kind = "status"``: one item per route: ``phase``, ``reason``, ``message``,
  ``observed_spec_hash``, ``active_upstream`` (name), ``active_url``, ``last_transition_time``,
  ``updated_at``. Written only by the control plane, never by users.

Timestamps are ISO 8601 UTC strings. ``message`` is for people and never carries a secret.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

STATUS_KIND = "status"


class Phase(StrEnum):
    PENDING = "PENDING"
    READY = "READY"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    DELETED = "DELETED"


class RouteStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    route_id: str
    phase: Phase
    reason: str | None = None
    message: str | None = None
    observed_spec_hash: str | None = None
    active_upstream: str | None = None
    active_url: str | None = None
    last_transition_time: str | None = None
    updated_at: str | None = None

    def to_item(self) -> dict:
        """Plain attribute values (for the resource-level DynamoDB API)."""
        item = {"route_id": self.route_id, "kind": STATUS_KIND, "phase": self.phase.value}
        for key in ("reason", "message", "observed_spec_hash", "active_upstream", "active_url",
                    "last_transition_time", "updated_at"):
            value = getattr(self, key)
            if value is not None:
                item[key] = value
        return item

    @classmethod
    def from_item(cls, item: dict) -> RouteStatus:
        fields = {k: item.get(k) for k in cls.model_fields if k in item}
        return cls(**fields)
