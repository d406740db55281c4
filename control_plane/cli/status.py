"""``turnout routes status``: observed state from the state table, as a table or per route.

A route in the routes table with no status item yet shows as PENDING; a status item whose
route item is gone still shows (e.g. DELETED).
"""

from __future__ import annotations

import argparse

from control_plane.cli import render
from control_plane.cli.aws import AwsContext
from control_plane.cli.tables import RoutesTable, StateTable
from control_plane.model.status import Phase

NOT_OBSERVED = "the control plane has not reported on this route yet"

COLUMNS = (
    ("ROUTE", "route_id"),
    ("PHASE", "phase"),
    ("REASON", "reason"),
    ("ACTIVE UPSTREAM", "active_upstream"),
    ("LAST TRANSITION", "last_transition_time"),
)
DETAIL_FIELDS = (
    "route_id", "phase", "reason", "message", "active_upstream", "active_url",
    "observed_spec_hash", "last_transition_time", "updated_at",
)


def collect_statuses(args: argparse.Namespace) -> list[dict]:
    """Status items (one route's or all), plus PENDING entries for routes not observed yet."""
    context = AwsContext.from_args(args)
    state = StateTable(context)
    if args.route_id:
        found = state.status(args.route_id)
        if found is not None:
            return [found]
        exists = RoutesTable(context).get(args.route_id) is not None
        return [_pending(args.route_id)] if exists else []
    statuses = {str(s.get("route_id")): s for s in state.statuses()}
    for route_id in RoutesTable(context).ids():
        statuses.setdefault(route_id, _pending(route_id))
    return [statuses[key] for key in sorted(statuses)]


def status_table(statuses: list[dict], *, wide: bool = False) -> str:
    columns = COLUMNS + ((("MESSAGE", "message"),) if wide else ())
    rows = [[status.get(key) for _, key in columns] for status in statuses]
    return render.table([title for title, _ in columns], rows)


def status_detail(status: dict) -> str:
    """One route's status, one ``field: value`` line each (known fields first)."""
    keys = [k for k in DETAIL_FIELDS if k in status]
    keys += sorted(k for k in status if k not in DETAIL_FIELDS)
    width = max(len(k) for k in keys)
    return "\n".join(f"{(k + ':').ljust(width + 1)} {render.cell(status[k])}" for k in keys)


def _pending(route_id: str) -> dict:
    return {"route_id": route_id, "phase": Phase.PENDING.value, "message": NOT_OBSERVED}
