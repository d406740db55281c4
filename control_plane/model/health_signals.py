"""What the prober publishes besides the health item: the metric, the alarms on it, and the
``Upstream Health Changed`` event (schema ``schemas/events/upstream-health-changed.schema.json``).

The metric: namespace ``Turnout``, name ``UpstreamHealthy``, dimensions ``Route`` and
``Upstream``, one high-resolution (``StorageResolution`` 1) datapoint per probe round: 1 while
the upstream is healthy, 0 while it is not, after fall/rise. One alarm per upstream watches it;
its name is ``turnout-<route_id>.<upstream>``. The dot cannot occur in a route id or an
upstream name, so a name maps back to exactly one (route, upstream): with a dash instead,
route ``a-b`` upstream ``c`` and route ``a`` upstream ``b-c`` would share an alarm.
"""

from __future__ import annotations

from control_plane.model.events import Event

METRIC_NAMESPACE = "Turnout"
METRIC_NAME = "UpstreamHealthy"
ROUTE_DIMENSION = "Route"
UPSTREAM_DIMENSION = "Upstream"
ALARM_PREFIX = "turnout-"
_SEPARATOR = "."

UPSTREAM_HEALTH_CHANGED = "Upstream Health Changed"


def metric_dimensions(route_id: str, upstream: str) -> list[dict[str, str]]:
    """The metric's dimensions, in the ``[{"Name", "Value"}]`` form of the CloudWatch API."""
    return [{"Name": ROUTE_DIMENSION, "Value": route_id},
            {"Name": UPSTREAM_DIMENSION, "Value": upstream}]


def alarm_name(route_id: str, upstream: str) -> str:
    """``turnout-<route_id>.<upstream>``."""
    return f"{alarm_prefix(route_id)}{upstream}"


def alarm_prefix(route_id: str) -> str:
    """The prefix every alarm of ``route_id`` (and no other route's) starts with."""
    return f"{ALARM_PREFIX}{route_id}{_SEPARATOR}"


def parse_alarm_name(name: str) -> tuple[str, str] | None:
    """``(route_id, upstream)`` of a turnout alarm name; None for any other name."""
    if not name.startswith(ALARM_PREFIX):
        return None
    route_id, separator, upstream = name[len(ALARM_PREFIX):].partition(_SEPARATOR)
    if not separator or not route_id or not upstream:
        return None
    return route_id, upstream


def upstream_health_changed(*, route_id: str, spec_hash: str | None, upstream: str,
                            upstream_kind: str, healthy: bool, consecutive_successes: int,
                            consecutive_failures: int, last_error: str | None, time: str,
                            targets: dict[str, bool] | None = None) -> Event:
    """The event published when an upstream's verdict flips (after fall/rise)."""
    state = "healthy" if healthy else "unhealthy"
    detail: dict = {
        "route_id": route_id,
        "spec_hash": spec_hash,
        "upstream": upstream,
        "upstream_kind": upstream_kind,
        "healthy": healthy,
        "previous_healthy": not healthy,
        "reason": "UpstreamHealthy" if healthy else "UpstreamUnhealthy",
        "message": (f"Upstream '{upstream}' of route '{route_id}' is {state}"
                    + (f": {last_error}" if last_error and not healthy else ".")),
        "consecutive_successes": consecutive_successes,
        "consecutive_failures": consecutive_failures,
        "last_error": last_error,
        "time": time,
    }
    if targets is not None:
        detail["targets"] = dict(sorted(targets.items()))
    return Event(detail_type=UPSTREAM_HEALTH_CHANGED, detail=detail)
