"""``turnout routes apply`` after validation: writing the routes, then (``--wait``) following
them until the control plane has reported on each.

Writing reads the table's items first (``BatchGetItem``, 100 routes a call) and writes only
routes that differ, so applying the same files twice writes nothing the second time. Both
steps show a progress line on a terminal (:mod:`control_plane.cli.progress`); result lines go
to standard output.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from control_plane.cli.errors import CommandError
from control_plane.cli.progress import Progress
from control_plane.cli.settling import settled_line, version_hashes, wait_until_settled
from control_plane.model.route import Route

if TYPE_CHECKING:
    from control_plane.cli.tables import RoutesTable, StateTable

ROUTES_PER_READ = 100  # one BatchGetItem call


def write_routes(table: RoutesTable, routes: list[Route]) -> int:
    """Write every route that differs from the table's item; returns how many were written.

    A failure part way names how far it got: running the command again is safe, since routes
    already in the table as given are not written again.
    """
    written = done = 0
    with Progress("applying", len(routes)) as progress:
        try:
            for start in range(0, len(routes), ROUTES_PER_READ):
                chunk = routes[start:start + ROUTES_PER_READ]
                current = table.get_many(r.route_id for r in chunk)
                for route in chunk:
                    document = route.to_document()
                    if current.get(route.route_id) == document:
                        progress.print(f"unchanged {route.route_id}")
                    else:
                        table.put(document)
                        written += 1
                        progress.print(f"applied {route.route_id}")
                    done += 1
                    progress.update(done)
        except CommandError as exc:
            if not done:
                raise
            progress.close()
            raise CommandError(
                f"{exc.message} (after {done} of {len(routes)} routes)",
                next_step=f"{exc.next_step or 'fix the cause'}; then apply again: routes "
                          "already in the table as given are not written twice",
            ) from exc
    return written


def wait_for_routes(state: StateTable, routes: list[Route], timeout_seconds: float) -> int:
    """Follow ``routes`` until the control plane reports each (printing it as it settles);
    0 when every one is READY, else a :class:`CommandError` naming the others."""
    expected = {route.route_id: version_hashes(route) for route in routes}
    started = time.monotonic()
    with Progress("settled", len(expected)) as progress:
        settling = wait_until_settled(
            state.statuses_of, expected, timeout_seconds=timeout_seconds,
            on_settled=lambda status: progress.print(settled_line(status)),
            on_poll=lambda s: progress.update(len(s.settled)),
        )
    if settling.waiting:
        raise CommandError(
            f"{len(settling.waiting)} of {len(expected)} routes not settled after "
            f"{timeout_seconds:g} s: {settling.describe_waiting()}",
            next_step="is the control plane running (`turnout up` for a local endpoint, the "
                      "stack's ReconcileFunction on AWS)? `turnout routes status` shows where "
                      "each route is; wait longer with --timeout SECONDS",
        )
    refused = settling.not_accepted
    if refused:
        shown = ", ".join(refused[:5]) + (f" and {len(refused) - 5} more" if len(refused) > 5
                                          else "")
        raise CommandError(
            f"{len(refused)} of {len(expected)} routes not accepted by the control plane: "
            f"{shown}",
            next_step="fix what the reasons above name and apply again; `turnout routes status "
                      "ROUTE` shows a route's whole message",
        )
    print(f"turnout: all {len(expected)} routes READY "
          f"({time.monotonic() - started:.1f} s)", file=sys.stderr)
    return 0
