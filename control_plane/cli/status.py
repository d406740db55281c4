"""Observed state from the state table: ``turnout routes status`` and ``turnout status``.

``turnout routes status`` shows the status items (phase, reason, active upstream). ``turnout
status [ROUTE]`` adds what failover needs an operator to see: each upstream's health and last
probe (the prober's ``health#<upstream>`` items), the last switch (its audit item: when, from,
to, why, who, the Step Functions execution) and a switch in progress (the route's lock).

A route in the routes table with no status item yet shows as PENDING; a status item whose
route item is gone still shows (e.g. DELETED).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import TYPE_CHECKING

from control_plane.cli import render
from control_plane.cli.errors import CommandError
from control_plane.cli.parser import add_aws_options, add_output_option
from control_plane.model.failover import UNKNOWN
from control_plane.model.status import Phase

if TYPE_CHECKING:  # the AWS side is imported by the commands that use it (fast --help)
    from control_plane.adapters.failover_store import RouteState
    from control_plane.cli.aws import AwsContext

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
    from control_plane.cli.aws import AwsContext
    from control_plane.cli.tables import RoutesTable, StateTable

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


# ---- turnout status --------------------------------------------------------------------

OVERVIEW_COLUMNS = ("ROUTE", "PHASE", "ACTIVE", "UPSTREAMS", "LAST SWITCH")


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``turnout status``."""
    status = commands.add_parser(
        "status", help="Show routes with their active upstream, health and last failover.",
        description="Per route: phase, active upstream, each upstream's health and last probe, "
                    "and the last switch (when, from, to, why, who, the Step Functions "
                    "execution). Name a route for every detail.",
    )
    status.add_argument("route_id", metavar="ROUTE", nargs="?", help="show only this route")
    add_output_option(status, "table", "json")
    add_aws_options(status, state_table=True)
    status.set_defaults(handler=run_status)


def run_status(args: argparse.Namespace) -> int:
    from control_plane.cli.aws import AwsContext

    context = AwsContext.from_args(args)
    reports = collect_reports(context, args.route_id)
    if args.route_id and not reports:
        raise CommandError(f"route {args.route_id!r} not found (no route item, no status)")
    if args.output == "json":
        print(render.to_json(reports[0] if args.route_id else reports))
    elif args.route_id:
        print(report_detail(reports[0]))
    else:
        print(render.table(OVERVIEW_COLUMNS, [_overview_row(r) for r in reports]))
    return 0


def collect_reports(context: AwsContext, route_id: str | None) -> list[dict]:
    """One report per route (or only ``route_id``'s), ordered by route id."""
    from control_plane.adapters.failover_store import route_state_of
    from control_plane.cli.aws import aws_errors
    from control_plane.cli.tables import RoutesTable, StateTable
    from control_plane.model.item import from_item

    routes = RoutesTable(context)
    state = StateTable(context)
    client = context.client("dynamodb")
    with aws_errors(context, table=state.name, option="--state-table"):
        if route_id:
            documents = {route_id: routes.get(route_id)}
            raw = _pages(client, "query", TableName=state.name, ConsistentRead=True,
                         KeyConditionExpression="route_id = :r",
                         ExpressionAttributeValues={":r": {"S": route_id}})
        else:
            documents = {str(d.get("route_id")): d for d in routes.all()}
            raw = _pages(client, "scan", TableName=state.name)
    items: dict[str, list[dict]] = defaultdict(list)
    for item in raw:
        plain = from_item(item)
        items[str(plain.get("route_id"))].append(plain)
    ids = sorted({i for i, d in documents.items() if d is not None} | set(items))
    return [report(i, documents.get(i), route_state_of(items.get(i, []))) for i in ids]


def report(route_id: str, document: dict | None, state: RouteState) -> dict:
    """What ``turnout status`` shows for one route (also its JSON form)."""
    status = state.status
    upstreams = []
    declared = document.get("upstreams") if isinstance(document, dict) else None
    names = [(u.get("name"), u.get("priority")) for u in declared or [] if isinstance(u, dict)]
    names += [(n, None) for n in sorted(state.health) if n not in {m for m, _ in names}]
    for name, priority in sorted(names, key=lambda p: (p[1] is None, p[1] or 0, str(p[0]))):
        health = state.health.get(str(name), UNKNOWN)
        upstreams.append({"name": name, "priority": priority, **health.to_json()})
    record = state.record_item
    last = state.last_switch
    return {
        "route_id": route_id,
        "phase": status.phase.value if status else Phase.PENDING.value,
        "reason": status.reason if status else None,
        "message": status.message if status else NOT_OBSERVED,
        "active_upstream": status.active_upstream if status else None,
        "active_url": status.active_url if status else None,
        "upstreams": upstreams,
        "last_failover": last.to_json() if last else None,
        "switch_in_progress": record.get("lock_owner"),
        "all_unhealthy_since": record.get("all_unhealthy_since"),
        "manual_choice": record.get("manual_choice"),
    }


def report_detail(r: dict) -> str:
    lines = [
        f"route:            {r['route_id']}",
        f"phase:            {r['phase']}" + (f" ({r['reason']})" if r["reason"] else ""),
        f"message:          {render.cell(r['message'])}",
        f"active upstream:  {render.cell(r['active_upstream'])}"
        + (f"  ({r['active_url']})" if r["active_url"] else ""),
    ]
    if r["manual_choice"] and r["manual_choice"] == r["active_upstream"]:
        lines.append("                  chosen by hand: no automatic failback while healthy")
    if r["all_unhealthy_since"]:
        lines.append(f"all unhealthy:    since {r['all_unhealthy_since']} (traffic stays put)")
    if r["switch_in_progress"]:
        lines.append(f"switching now:    {r['switch_in_progress']}")
    lines.append("upstreams:")
    rows = [(u["name"], u["priority"], _health_word(u["healthy"]), u["last_change_time"],
             u["last_probe_time"], _streak(u)) for u in r["upstreams"]]
    table = render.table(("NAME", "PRIORITY", "HEALTH", "SINCE", "LAST PROBE", "STREAK"), rows)
    lines += ["  " + line for line in table.splitlines()]
    last = r["last_failover"]
    if last is None:
        lines.append("last failover:    none")
    else:
        lines += [
            "last failover:",
            f"  when:       {last['time']}",
            f"  kind:       {last['kind']}",
            f"  from -> to: {last['from_upstream']} -> {last['to_upstream']}",
            f"  why:        {render.cell(last['why'])}",
            f"  who:        {render.cell(last['who'])}",
            f"  execution:  {last['execution_arn']}",
        ]
    return "\n".join(lines)


def _overview_row(r: dict) -> list:
    health = " ".join(f"{u['name']}:{_health_word(u['healthy'])}" for u in r["upstreams"])
    last = r["last_failover"]
    switch = (f"{last['time']} {last['from_upstream']}->{last['to_upstream']} ({last['kind']})"
              if last else None)
    return [r["route_id"], r["phase"], r["active_upstream"], health, switch]


def _health_word(healthy: bool | None) -> str:
    return "unknown" if healthy is None else ("healthy" if healthy else "unhealthy")


def _streak(u: dict) -> str:
    if u["healthy"] is None:
        return "-"
    if u["consecutive_failures"]:
        return f"{u['consecutive_failures']} failed"
    return f"{u['consecutive_successes']} ok"


def _pages(client, operation: str, **kwargs) -> list[dict]:
    items: list[dict] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get("Items", []))
    return items

