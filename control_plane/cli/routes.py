"""``turnout routes``: validate, apply, list, get, delete and show the status of routes.

The modules that talk to AWS are imported by the commands that use them, so ``validate``
and ``--help`` start without loading boto3.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from control_plane.cli import render
from control_plane.cli.applying import wait_for_routes, write_routes
from control_plane.cli.errors import CommandError
from control_plane.cli.parser import add_aws_options, add_command_group, add_output_option
from control_plane.cli.verdicts import Verdict, check_files
from control_plane.model.egress import system_resolver
from control_plane.model.route import Route

if TYPE_CHECKING:
    from control_plane.cli.aws import AwsContext
    from control_plane.cli.tables import RoutesTable, StateTable

DEFAULT_WAIT_SECONDS = 300.0
NOT_FOUND_HINT = "see the routes there are with `turnout routes list`"


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``turnout routes <command>``."""
    routes = add_command_group(commands, "routes", "Validate, apply and inspect route items.")

    validate = routes.add_parser(
        "validate", help="Check route files offline; exit 1 if any route is invalid.",
        description="Check YAML or JSON route files (one route or a list of routes per file, "
                    "`-` for standard input) without touching AWS. Prints `ok   FILE: ROUTE` "
                    "per valid route and `FILE: ROUTE: FIELD: REASON (message)` per problem. "
                    "Exit 0 when every route is valid, 1 otherwise.",
    )
    _add_file_options(validate)
    add_output_option(validate, "text", "json")
    validate.set_defaults(handler=run_validate)

    apply = routes.add_parser(
        "apply", help="Validate route files, then write every route to the routes table.",
        description="Validate every route first; write nothing unless all are valid. Each "
                    "route is written whole (defaults filled) with PutItem, as `aws dynamodb "
                    "put-item` would, unless the table already holds exactly that route; the "
                    "control plane reconciles it from the table's stream. A directory stands "
                    "for its .yaml/.yml/.json files. On a terminal, progress shows on standard "
                    "error. --wait then follows each route until the control plane reports it "
                    "READY, REJECTED or FAILED (exit 1 unless every route is READY).",
    )
    _add_file_options(apply)
    apply.add_argument(
        "--wait", action="store_true",
        help="wait until the control plane has reconciled every applied route, printing "
             "each as it settles; exit 1 if any ends REJECTED or FAILED",
    )
    apply.add_argument(
        "--timeout", type=float, default=DEFAULT_WAIT_SECONDS, metavar="SECONDS",
        help="how long --wait waits (default: %(default)s)",
    )
    add_aws_options(apply, state_table=True)
    apply.set_defaults(handler=run_apply)

    listing = routes.add_parser("list", help="List the routes in the routes table.")
    add_output_option(listing, "table", "json")
    add_aws_options(listing)
    listing.set_defaults(handler=run_list)

    get = routes.add_parser("get", help="Print one route item as YAML (or JSON).")
    get.add_argument("route_id", metavar="ID", help="the route's route_id")
    add_output_option(get, "yaml", "json")
    add_aws_options(get)
    get.set_defaults(handler=run_get)

    delete = routes.add_parser(
        "delete", help="Delete a route item; the control plane then removes its resources."
    )
    delete.add_argument("route_id", metavar="ID", help="the route's route_id")
    add_aws_options(delete)
    delete.set_defaults(handler=run_delete)

    status = routes.add_parser(
        "status", help="Show each route's phase, reason and active upstream.",
        description="Show the observed state the control plane wrote to the state table: "
                    "phase, reason, active upstream and last transition per route. Routes in "
                    "the routes table that have no status yet show as PENDING.",
    )
    status.add_argument("route_id", metavar="ID", nargs="?", help="show only this route")
    status.add_argument("--wide", action="store_true", help="add the message column")
    add_output_option(status, "table", "json")
    add_aws_options(status, state_table=True)
    status.set_defaults(handler=run_status)


def _add_file_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files", metavar="FILE", nargs="+",
        help="YAML or JSON route file, or a directory of them (`-`: stdin)",
    )
    parser.add_argument(
        "--allow-loopback-upstreams", action="store_true",
        help="accept upstreams on 127.0.0.1 (for local demos; matches `turnout up`'s flag)",
    )
    parser.add_argument(
        "--resolve-hosts", action="store_true",
        help="also look up upstream host names in DNS and refuse those that resolve to "
             "addresses turnout must not call, as the control plane does",
    )


def run_validate(args: argparse.Namespace) -> int:
    verdicts = _check(args)
    valid = all(v.ok for v in verdicts)
    if args.output == "json":
        print(render.to_json({"valid": valid, "routes": [render.verdict_json(v) for v in verdicts]}))
        return 0 if valid else 1
    _print_verdicts(verdicts)
    if not valid:
        print(f"turnout: {_problems_summary(verdicts)}", file=sys.stderr)
        print(f"  next: {_fix_hint(args, verdicts, 'validate')}", file=sys.stderr)
    return 0 if valid else 1


def run_apply(args: argparse.Namespace) -> int:
    verdicts = _check(args)
    if not all(v.ok for v in verdicts):
        _print_verdicts([v for v in verdicts if not v.ok])
        raise CommandError(f"nothing applied: {_problems_summary(verdicts)}",
                           next_step=_fix_hint(args, verdicts, "apply"))
    routes = [v.route for v in verdicts if v.route is not None]
    context = _context(args)
    table = _routes_table(args, context)
    state = _state_table(context) if args.wait else None
    started = time.monotonic()
    written = write_routes(table, routes)
    unchanged = len(routes) - written
    print(f"turnout: {written} applied, {unchanged} unchanged in table {table.name} "
          f"({time.monotonic() - started:.1f} s)", file=sys.stderr)
    if state is None:
        print("  next: `turnout routes status` shows when the control plane has them ready "
              "(or apply with --wait)", file=sys.stderr)
        return 0
    return wait_for_routes(state, routes, args.timeout)


def run_list(args: argparse.Namespace) -> int:
    documents = _routes_table(args).all()
    if args.output == "json":
        print(render.to_json(documents))
        return 0
    rows = [
        (
            doc.get("route_id"), doc.get("path"), doc.get("methods"), doc.get("mode"),
            [u.get("name") for u in doc.get("upstreams") or [] if isinstance(u, dict)],
        )
        for doc in documents
    ]
    print(render.table(("ROUTE", "PATH", "METHODS", "MODE", "UPSTREAMS"), rows))
    return 0


def run_get(args: argparse.Namespace) -> int:
    table = _routes_table(args)
    document = table.get(args.route_id)
    if document is None:
        raise CommandError(f"route {args.route_id!r} not found in table {table.name}",
                           next_step=NOT_FOUND_HINT)
    document = _in_route_order(document)
    if args.output == "json":
        print(render.to_json(document))
    else:
        print(render.to_yaml(document), end="")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    table = _routes_table(args)
    if not table.delete(args.route_id):
        raise CommandError(f"route {args.route_id!r} not found in table {table.name}",
                           next_step=NOT_FOUND_HINT)
    print(f"deleted {args.route_id} (the control plane removes its API resources)")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from control_plane.cli.status import collect_statuses, status_detail, status_table

    statuses = collect_statuses(args)
    if args.route_id and not statuses:
        raise CommandError(f"route {args.route_id!r} not found (no route item, no status)",
                           next_step=NOT_FOUND_HINT)
    if args.output == "json":
        print(render.to_json(statuses[0] if args.route_id else statuses))
    elif args.route_id:
        print(status_detail(statuses[0]))
    else:
        print(status_table(statuses, wide=args.wide))
    return 0


def _check(args: argparse.Namespace) -> list[Verdict]:
    return check_files(
        args.files,
        allow_loopback=args.allow_loopback_upstreams,
        resolver=system_resolver if args.resolve_hosts else None,
    )


def _context(args: argparse.Namespace) -> AwsContext:
    from control_plane.cli.aws import AwsContext

    return AwsContext.from_args(args)


def _routes_table(args: argparse.Namespace, context: AwsContext | None = None) -> RoutesTable:
    from control_plane.cli.tables import RoutesTable

    return RoutesTable(context or _context(args))


def _state_table(context: AwsContext) -> StateTable:
    from control_plane.cli.tables import StateTable

    return StateTable(context)


def _print_verdicts(verdicts: list[Verdict]) -> None:
    for verdict in verdicts:
        for line in render.verdict_lines(verdict):
            print(line)


def _problems_summary(verdicts: list[Verdict]) -> str:
    """``1 of 3 routes invalid; 1 file could not be read``."""
    routes = [v for v in verdicts if v.index is not None]
    invalid = sum(1 for v in routes if not v.ok)
    unreadable = len(verdicts) - len(routes)
    parts = [f"{invalid} of {len(routes)} routes invalid"] if invalid else []
    if unreadable:
        parts.append(f"{unreadable} file{'s' * (unreadable > 1)} could not be read")
    return "; ".join(parts)


def _fix_hint(args: argparse.Namespace, verdicts: list[Verdict], command: str) -> str:
    """What to do about the problems: fix the named fields; for loopback upstreams in a local
    demo, the flag that allows them."""
    hint = ("fix what the lines above name, then validate again" if command == "validate"
            else "fix what the lines above name (`turnout routes validate` checks offline), "
                 "then apply again")
    loopback = any(p.reason == "UpstreamAddressNotAllowed"
                   and ("loopback" in p.message or "this machine" in p.message)
                   for v in verdicts for p in v.problems)
    if loopback and not args.allow_loopback_upstreams:
        hint += ("; for a local demo on 127.0.0.1 add --allow-loopback-upstreams (and start "
                 "`turnout up` with it)")
    return hint


def _in_route_order(document: dict) -> dict:
    """The route's fields in the order of the route model (DynamoDB keeps no order)."""
    order = {name: i for i, name in enumerate(Route.model_fields)}
    return dict(sorted(document.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
