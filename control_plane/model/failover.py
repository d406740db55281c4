"""Failover state in the state table, and the failover events turnout publishes.

State table items (partition key ``route_id``, sort key ``kind``), written only by the
failover workflow:

- ``kind = "failover"``: the route's failover record, one per route::

      lock_owner            S  execution ARN holding the route's lock (absent: unlocked)
      lock_expires_at       N  epoch seconds after which the lock may be taken over
      pending_since         N  set by an execution that found the lock held: the holder
                               looks at the route once more before it unlocks
      last_switch_time      S  ISO 8601 UTC time of the last switch (the hold time runs from it)
      last_switch_kind      S  failover | failback | manual
      last_switch_from      S  upstream names
      last_switch_to        S
      last_execution_arn    S  the execution that made the last switch
      manual_choice         S  the upstream a person switched to (kept while healthy)
      all_unhealthy_since   S  when ``All Upstreams Unhealthy`` was announced (cleared when an
                               upstream is healthy again, so the next outage is announced)

- ``kind = "failover#<ISO time>"``: one audit item per switch (who, why, from, to, when,
  the execution ARN, the alarm that triggered it). Never expires.

The route's status item (``kind = "status"``) carries ``active_upstream`` / ``active_url``,
which the workflow updates on every switch and the reconciler keeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

HEALTH_PREFIX = "health#"
RECORD_KIND = "failover"
AUDIT_PREFIX = "failover#"

FAILOVER_STARTED = "Failover Started"
FAILOVER_COMPLETED = "Failover Completed"
FAILOVER_FAILED = "Failover Failed"
FAILBACK_COMPLETED = "Failback Completed"
ALL_UPSTREAMS_UNHEALTHY = "All Upstreams Unhealthy"

DETAIL_TYPES = (FAILOVER_STARTED, FAILOVER_COMPLETED, FAILOVER_FAILED, FAILBACK_COMPLETED,
                ALL_UPSTREAMS_UNHEALTHY)


@dataclass(frozen=True)
class Health:
    """What the prober last recorded about one upstream (``healthy`` None: never probed)."""

    healthy: bool | None = None
    consecutive_successes: int = 0
    consecutive_failures: int = 0
    last_probe_time: str | None = None
    last_change_time: str | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Health:
        """A ``health#<upstream>`` item (plain values) read leniently.

        ``healthy`` is the prober's verdict after its thresholds. An item that only lists
        ``targets`` (``"<ip>:<port>" -> "healthy" | "unhealthy"``) is healthy while any target is.
        """
        healthy = item.get("healthy")
        if not isinstance(healthy, bool):
            targets = item.get("targets")
            healthy = (any(v == "healthy" for v in targets.values())
                       if isinstance(targets, Mapping) and targets else None)
        return cls(
            healthy=healthy,
            consecutive_successes=_int(item.get("consecutive_successes")),
            consecutive_failures=_int(item.get("consecutive_failures")),
            last_probe_time=_text(item.get("last_probe_time") or item.get("updated_at")),
            last_change_time=_text(item.get("last_change_time")),
        )

    def to_json(self) -> dict:
        return {"healthy": self.healthy, "consecutive_successes": self.consecutive_successes,
                "consecutive_failures": self.consecutive_failures,
                "last_probe_time": self.last_probe_time,
                "last_change_time": self.last_change_time}


UNKNOWN = Health()


@dataclass(frozen=True)
class Record:
    """The route's failover record (``kind = "failover"``), as decisions need it."""

    last_switch_time: datetime | None = None
    all_unhealthy_since: str | None = None
    manual_choice: str | None = None
    lock_owner: str | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> Record:
        if not item:
            return cls()
        return cls(
            last_switch_time=parse_time(item.get("last_switch_time")),
            all_unhealthy_since=_text(item.get("all_unhealthy_since")),
            manual_choice=_text(item.get("manual_choice")),
            lock_owner=_text(item.get("lock_owner")),
        )


def health_kind(upstream: str) -> str:
    return HEALTH_PREFIX + upstream


def upstream_of_health_kind(kind: str) -> str | None:
    if kind.startswith(HEALTH_PREFIX) and len(kind) > len(HEALTH_PREFIX):
        return kind[len(HEALTH_PREFIX):]
    return None


def iso(ts: datetime) -> str:
    """``2024-05-01T12:00:00.123Z``: sortable, millisecond ISO 8601 UTC."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 time (``Z`` or an offset); None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def audit_kind(time: str) -> str:
    """The sort key of the audit item of a switch made at ``time`` (sorts by time)."""
    return AUDIT_PREFIX + time


def is_audit_kind(kind: str) -> bool:
    return kind.startswith(AUDIT_PREFIX) and len(kind) > len(AUDIT_PREFIX)


def completed_event(kind: str) -> str:
    """``Failback Completed`` for a failback, ``Failover Completed`` otherwise."""
    return FAILBACK_COMPLETED if kind == "failback" else FAILOVER_COMPLETED


@dataclass(frozen=True)
class AuditEntry:
    """One switch, as recorded in its audit item."""

    route_id: str
    time: str
    kind: str
    from_upstream: str
    to_upstream: str
    reason: str
    why: str
    who: str
    execution_arn: str
    spec_hash: str
    mode: str
    trigger_alarm: str | None = None
    changed: tuple[str, ...] = field(default=())

    def to_item(self) -> dict:
        """Plain attribute values (for :func:`control_plane.model.item.to_item`)."""
        item = {
            "route_id": self.route_id,
            "kind": audit_kind(self.time),
            "time": self.time,
            "switch_kind": self.kind,
            "from_upstream": self.from_upstream,
            "to_upstream": self.to_upstream,
            "reason": self.reason,
            "why": self.why,
            "who": self.who,
            "execution_arn": self.execution_arn,
            "spec_hash": self.spec_hash,
            "mode": self.mode,
            "changed": list(self.changed),
        }
        if self.trigger_alarm:
            item["trigger_alarm"] = self.trigger_alarm
        return item

    @classmethod
    def from_item(cls, item: dict) -> AuditEntry | None:
        """An audit item read back (plain values); None for any other item."""
        if not is_audit_kind(str(item.get("kind", ""))):
            return None
        return cls(
            route_id=str(item.get("route_id", "")),
            time=str(item.get("time") or item["kind"][len(AUDIT_PREFIX):]),
            kind=str(item.get("switch_kind", "")),
            from_upstream=str(item.get("from_upstream", "")),
            to_upstream=str(item.get("to_upstream", "")),
            reason=str(item.get("reason", "")),
            why=str(item.get("why", "")),
            who=str(item.get("who", "")),
            execution_arn=str(item.get("execution_arn", "")),
            spec_hash=str(item.get("spec_hash", "")),
            mode=str(item.get("mode", "")),
            trigger_alarm=item.get("trigger_alarm"),
            changed=tuple(str(c) for c in item.get("changed") or ()),
        )

    def to_json(self) -> dict:
        """For ``turnout status --output json``."""
        return {
            "time": self.time, "kind": self.kind, "from_upstream": self.from_upstream,
            "to_upstream": self.to_upstream, "reason": self.reason, "why": self.why,
            "who": self.who, "execution_arn": self.execution_arn,
            "trigger_alarm": self.trigger_alarm,
        }
