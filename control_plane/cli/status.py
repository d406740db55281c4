"""Observed state from the state table: ``turnout routes status`` and ``turnout status``.

``turnout routes status`` shows the status items (phase, reason, active upstream). ``turnout
status [ROUTE]`` adds what failover needs an operator to see: each upstream's health and last
probe (the prober's ``health#<upstream>`` items and the upstream's alarm), the last switch (its
audit item: when, from, to, why, who, the Step Functions execution), a switch in progress (the
route's lock) and the recent switches. It reads and prints :mod:`control_plane.status_view`, the
view the local gateway's status page shows; ``--watch`` redraws it in place
(:mod:`control_plane.cli.status_watch`).

A route in the routes table with no status item yet shows as PENDING; a status item whose
route item is gone still shows (e.g. DELETED).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from control_plane.cli import render
from control_plane.cli.errors import CommandError, UsageError
from control_plane.cli.parser import add_aws_options, add_output_option
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


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``turnout status``."""
    status = commands.add_parser(
        "status", help="Show routes with their active upstream, health and last failover.",
        description="Per route: phase, active upstream, each upstream's health (the prober's "
                    "verdict and its alarm) and the last switch, then the recent switches. Name "
                    "a route for every detail (mode, last probe, who switched and why, the Step "
                    "Functions execution). --watch redraws it in place until Ctrl-C. The "
                    "local gateway shows the same view at http://127.0.0.1:8080/__turnout/.",
    )
    status.add_argument("route_id", metavar="ROUTE", nargs="?", help="show only this route")
    status.add_argument("-w", "--watch", action="store_true",
                        help="redraw every --interval seconds until Ctrl-C")
    status.add_argument("--interval", type=_interval, default=2.0, metavar="SECONDS",
                        help="seconds between redraws with --watch (default: %(default)s)")
    add_output_option(status, "table", "json")
    add_aws_options(status, state_table=True)
    status.set_defaults(handler=run_status)


def run_status(args: argparse.Namespace) -> int:
    from control_plane.cli.aws import AwsContext
    from control_plane.cli.status_watch import render_frame, watch

    if args.watch and args.output == "json":
        raise UsageError("--watch redraws a table, so it cannot print JSON",
                         next_step="use -o json without --watch, or --watch without -o json")
    context = AwsContext.from_args(args)
    if args.watch:
        return watch(lambda: read_status_view(context, args.route_id), route_id=args.route_id,
                     interval_seconds=args.interval)
    view = read_status_view(context, args.route_id)
    for problem in view["problems"]:
        print(f"turnout: warning: {problem}", file=sys.stderr)
    reports = view["routes"]
    if args.route_id and not reports:
        raise CommandError(f"route {args.route_id!r} not found (no route item, no status)",
                           next_step="see the routes there are with `turnout routes list`")
    if args.output == "json":
        print(render.to_json(reports[0] if args.route_id else reports))
    else:
        print(render_frame(view, route_id=args.route_id))
    return 0


def read_status_view(context: AwsContext, route_id: str | None) -> dict:
    """The status view (:mod:`control_plane.status_view`) of the stack ``context`` names."""
    from control_plane.cli.aws import aws_errors
    from control_plane.status_view import StatusSource, read_view

    tables = {"routes": (context.routes_table, "--table"),
              "state": (context.state_table, "--state-table")}
    source = StatusSource(dynamodb=context.client("dynamodb"),
                          cloudwatch=context.client("cloudwatch"),
                          routes_table=tables["routes"][0], state_table=tables["state"][0])

    def guard(which: str):
        table, option = tables[which]
        return aws_errors(context, table=table, option=option)

    return read_view(source, route_id=route_id, guard=guard)


def report(route_id: str, document: dict | None, state: RouteState) -> dict:
    """What ``turnout status`` shows for one route (also its JSON form)."""
    from control_plane.status_view import route_view

    return route_view(route_id, document, state)


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError("the interval must be between 0.1 and 3600 seconds")
    return value
