"""Health of in-VPC targets as turnout's prober sees it: one state-table item per upstream.

On AWS the ALB health-checks its targets itself; locally the emulator's ALB reports every
target healthy, so turnout's prober is the source of health. It records what it sees per
``targets`` upstream in the state table (partition key ``route_id``, sort key ``kind``)::

    route_id     S  the route, e.g. "orders"
    kind         S  "health#<upstream name>", e.g. "health#orders-blue"
    targets      M  "<ip>:<port>" -> "healthy" | "unhealthy"
                    e.g. {"10.0.1.12:8443": "healthy", "10.0.2.7:8443": "unhealthy"}
    updated_at   S  ISO 8601 UTC time of the probe round (optional)

An IPv6 target is written ``[fd00::12]:8443``. The item is the prober's (the control plane
writes it, users never do). Readers (the local gateway's ALB) take a target missing from the
map, and every target of an upstream without an item, as healthy: the ALB's view before its
first health check, and the only safe reading when the prober has not run.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

HEALTH_KIND_PREFIX = "health#"


class TargetState(StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


def health_kind(upstream: str) -> str:
    """The sort key of ``upstream``'s health item."""
    return HEALTH_KIND_PREFIX + upstream


def upstream_of_kind(kind: str) -> str | None:
    """The upstream a ``kind`` names, or None when it is not a health item's kind."""
    if kind.startswith(HEALTH_KIND_PREFIX) and len(kind) > len(HEALTH_KIND_PREFIX):
        return kind[len(HEALTH_KIND_PREFIX):]
    return None


def target_key(ip: str, port: int) -> str:
    """``10.0.1.12:8443``; an IPv6 address in brackets (``[fd00::12]:8443``)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return f"{ip}:{port}"
    if address.version == 6:
        return f"[{address.compressed}]:{port}"
    return f"{address}:{port}"


@dataclass(frozen=True)
class UpstreamHealth:
    """The health item of one upstream of one route."""

    route_id: str
    upstream: str
    targets: Mapping[str, TargetState] = field(default_factory=lambda: MappingProxyType({}))
    updated_at: str | None = None

    def is_healthy(self, ip: str, port: int) -> bool:
        """Whether a target counts as healthy (unknown targets do)."""
        return self.targets.get(target_key(ip, port)) is not TargetState.UNHEALTHY

    def to_item(self) -> dict[str, Any]:
        """Plain attribute values (see the module docstring for the shape)."""
        item: dict[str, Any] = {
            "route_id": self.route_id,
            "kind": health_kind(self.upstream),
            "targets": {key: state.value for key, state in sorted(self.targets.items())},
        }
        if self.updated_at is not None:
            item["updated_at"] = self.updated_at
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> UpstreamHealth | None:
        """Read a plain item back; None when it is not a health item.

        A target state other than ``healthy``/``unhealthy`` is left out (counts as healthy).
        """
        upstream = upstream_of_kind(str(item.get("kind", "")))
        if upstream is None or not item.get("route_id"):
            return None
        raw = item.get("targets")
        targets: dict[str, TargetState] = {}
        if isinstance(raw, Mapping):
            for key, value in raw.items():
                if value in (TargetState.HEALTHY.value, TargetState.UNHEALTHY.value):
                    targets[str(key)] = TargetState(value)
        updated = item.get("updated_at")
        return cls(route_id=str(item["route_id"]), upstream=upstream,
                   targets=MappingProxyType(targets),
                   updated_at=str(updated) if updated is not None else None)


# ---- the prober's record: the fall/rise state behind the verdicts above ---------------------
#
# The prober writes the item above with more attributes (readers of :class:`UpstreamHealth`
# ignore them)::
#
#     upstream_kind           S     "url" | "targets"
#     healthy                 BOOL  the upstream's verdict (a targets upstream: any target healthy)
#     consecutive_successes   N     current streak of successful probes (rounds)
#     consecutive_failures    N     current streak of failed probes (rounds)
#     last_probe_time         S     ISO 8601 UTC time of the latest probe counted
#     last_change_time        S     when ``healthy`` last changed (first record: when first seen)
#     last_error              S     why the latest probe failed (absent after a success)
#     spec_hash               S     the route version the probes followed
#     url                     S     the probed URL (url upstreams)
#     target_probes           M     "<ip>:<port>" -> {healthy, consecutive_successes,
#                                   consecutive_failures, last_error, last_change_time}
#
# ``targets`` (above) carries each target's verdict and ``updated_at`` the latest probe time.


@dataclass(frozen=True)
class TargetProbeState:
    """The prober's fall/rise state of one in-VPC target."""

    healthy: bool = True
    consecutive_successes: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    last_change_time: str | None = None

    def to_value(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "healthy": self.healthy,
            "consecutive_successes": self.consecutive_successes,
            "consecutive_failures": self.consecutive_failures,
        }
        if self.last_error is not None:
            value["last_error"] = self.last_error
        if self.last_change_time is not None:
            value["last_change_time"] = self.last_change_time
        return value

    @classmethod
    def from_value(cls, value: Mapping[str, Any]) -> TargetProbeState:
        return cls(
            healthy=bool(value.get("healthy", True)),
            consecutive_successes=int(value.get("consecutive_successes") or 0),
            consecutive_failures=int(value.get("consecutive_failures") or 0),
            last_error=_optional_text(value.get("last_error")),
            last_change_time=_optional_text(value.get("last_change_time")),
        )


@dataclass(frozen=True)
class UpstreamProbeRecord:
    """Everything the prober records for one upstream: the item :class:`UpstreamHealth` reads,
    plus the streaks and errors behind it."""

    route_id: str
    upstream: str
    upstream_kind: str
    healthy: bool = True
    consecutive_successes: int = 0
    consecutive_failures: int = 0
    last_probe_time: str | None = None
    last_change_time: str | None = None
    last_error: str | None = None
    spec_hash: str | None = None
    url: str | None = None
    target_probes: Mapping[str, TargetProbeState] = field(
        default_factory=lambda: MappingProxyType({}))

    def health(self) -> UpstreamHealth:
        """The per-target view the local ALB reads."""
        return UpstreamHealth(
            route_id=self.route_id, upstream=self.upstream,
            targets=MappingProxyType({
                key: TargetState.HEALTHY if state.healthy else TargetState.UNHEALTHY
                for key, state in self.target_probes.items()}),
            updated_at=self.last_probe_time)

    def to_item(self) -> dict[str, Any]:
        """Plain attribute values (``None`` left out)."""
        item = self.health().to_item()
        item.update({
            "upstream_kind": self.upstream_kind,
            "healthy": self.healthy,
            "consecutive_successes": self.consecutive_successes,
            "consecutive_failures": self.consecutive_failures,
            "target_probes": {key: state.to_value()
                              for key, state in sorted(self.target_probes.items())},
        })
        for name in ("last_probe_time", "last_change_time", "last_error", "spec_hash", "url"):
            value = getattr(self, name)
            if value is not None:
                item[name] = value
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> UpstreamProbeRecord | None:
        """Read a plain item back; None when it is not a health item the prober wrote."""
        upstream = upstream_of_kind(str(item.get("kind", "")))
        if upstream is None or not item.get("route_id") or "healthy" not in item:
            return None
        raw_targets = item.get("target_probes")
        targets = {str(key): TargetProbeState.from_value(value)
                   for key, value in (raw_targets.items() if isinstance(raw_targets, Mapping)
                                      else ()) if isinstance(value, Mapping)}
        return cls(
            route_id=str(item["route_id"]), upstream=upstream,
            upstream_kind=str(item.get("upstream_kind") or "url"),
            healthy=bool(item["healthy"]),
            consecutive_successes=int(item.get("consecutive_successes") or 0),
            consecutive_failures=int(item.get("consecutive_failures") or 0),
            last_probe_time=_optional_text(item.get("last_probe_time")),
            last_change_time=_optional_text(item.get("last_change_time")),
            last_error=_optional_text(item.get("last_error")),
            spec_hash=_optional_text(item.get("spec_hash")),
            url=_optional_text(item.get("url")),
            target_probes=MappingProxyType(targets),
        )


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)
