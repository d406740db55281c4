"""How ``turnout status`` prints the status view (:mod:`control_plane.status_view`), once or
redrawn in place with ``--watch``.

A frame is the routes table (ROUTE, PHASE, ACTIVE, UPSTREAMS, LAST SWITCH; a route that is not
READY shows its reason beside its phase), then the most recent switches, then what could not be
read. With a route named, the frame is that route's details instead of the table. Control
characters in what routes carry (ids, reasons, messages are user input) print as ``?``, so a
route cannot move the cursor or recolour the terminal.

``--watch`` on a terminal draws each frame from the top-left corner over the previous one (plain
ANSI: cursor home, clear to the end of each line and of the screen; the cursor is hidden while
watching), with phases and health in colour unless ``NO_COLOR`` is set. Piped, the frames
follow one another, separated by a blank line. A read that fails is shown in the frame and tried
again at the next interval. Ctrl-C ends the watch with exit code 0.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable
from typing import TextIO

from control_plane.cli import render
from control_plane.cli.errors import CommandError

OVERVIEW_COLUMNS = ("ROUTE", "PHASE", "ACTIVE", "UPSTREAMS", "LAST SWITCH")
RECENT_SWITCHES = 5

_HOME, _CLEAR_LINE, _CLEAR_BELOW = "\x1b[H", "\x1b[K", "\x1b[J"
_HIDE_CURSOR, _SHOW_CURSOR, _CLEAR_SCREEN = "\x1b[?25l", "\x1b[?25h", "\x1b[2J"
_RESET = "\x1b[0m"
_COLOURS = {"READY": "\x1b[32m", "healthy": "\x1b[32m", "PENDING": "\x1b[33m",
            "unknown": "\x1b[33m", "REJECTED": "\x1b[31m", "FAILED": "\x1b[31m",
            "unhealthy": "\x1b[31m", "DELETED": "\x1b[2m"}
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_PHASE_WORDS = re.compile(r"\b(READY|PENDING|REJECTED|FAILED|DELETED)\b")
_HEALTH_WORDS = re.compile(r"(?<=:)(healthy|unhealthy|unknown)\b")


def render_frame(view: dict, *, route_id: str | None = None) -> str:
    """The view as text: one route's details, or the routes table and recent switches."""
    parts: list[str] = []
    if route_id is not None:
        routes = view["routes"]
        parts.append(detail(routes[0]) if routes else f"route {route_id!r} not found "
                     "(no route item, no status)")
    elif not view["routes"]:
        parts.append("no routes yet: write one with `turnout routes apply FILE` or "
                     "`aws dynamodb put-item`")
    else:
        parts.append(overview(view))
        switches = recent_switches(view)
        if switches:
            parts.append(switches)
    parts += [f"note: {problem}" for problem in view.get("problems", [])]
    return _CONTROL.sub("?", "\n\n".join(parts))


def overview(view: dict) -> str:
    """One line per route."""
    return render.table(OVERVIEW_COLUMNS, [_overview_row(r) for r in view["routes"]])


def recent_switches(view: dict, limit: int = RECENT_SWITCHES) -> str:
    """The last ``limit`` timeline events, newest first ("" when there is none)."""
    events = view["timeline"]["events"]
    if not events:
        return ""
    shown = list(reversed(events[-limit:]))
    rows = [(e["time"], e["route_id"], e["kind"], f"{e['from_upstream']} -> {e['to_upstream']}",
             e["why"]) for e in shown]
    title = (f"recent switches ({len(shown)} of {len(events)}):" if len(events) > len(shown)
             else "recent switches:")
    table = render.table(("TIME", "ROUTE", "KIND", "FROM -> TO", "WHY"), rows)
    return "\n".join([title, *("  " + line for line in table.splitlines())])


def detail(r: dict) -> str:
    """Everything about one route."""
    lines = [
        f"route:            {r['route_id']}",
        f"phase:            {r['phase']}" + (f" ({r['reason']})" if r["reason"] else ""),
        f"message:          {render.cell(r['message'])}",
        f"mode:             {render.cell(r['mode'])}   path: {render.cell(r['path'])}"
        f"   methods: {render.cell(r['methods'])}",
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
    rows = [(u["name"], u["priority"], u["health"], u["alarm"], u["last_change_time"],
             u["last_probe_time"], _streak(u)) for u in r["upstreams"]]
    table = render.table(("NAME", "PRIORITY", "HEALTH", "ALARM", "SINCE", "LAST PROBE",
                          "STREAK"), rows)
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


def colour(text: str) -> str:
    """Phases and ``name:health`` words in colour (the layout is unchanged)."""
    def paint(match: re.Match) -> str:
        return f"{_COLOURS[match.group(0)]}{match.group(0)}{_RESET}"

    return _HEALTH_WORDS.sub(paint, _PHASE_WORDS.sub(paint, text))


def watch(read: Callable[[], dict], *, route_id: str | None, interval_seconds: float,
          out: TextIO | None = None) -> int:
    """Read and draw a frame every ``interval_seconds`` until Ctrl-C; returns 0."""
    out = out or sys.stdout
    terminal = out.isatty()
    coloured = terminal and not os.environ.get("NO_COLOR")
    if terminal:
        out.write(_HIDE_CURSOR + _CLEAR_SCREEN)
    try:
        while True:
            started = time.monotonic()
            out.write(_frame(read, route_id, interval_seconds, terminal, coloured))
            out.flush()
            time.sleep(max(0.0, interval_seconds - (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass
    finally:
        if terminal:
            out.write(_SHOW_CURSOR)
        out.write("\n")
        out.flush()
    return 0


def _frame(read: Callable[[], dict], route_id: str | None, interval_seconds: float,
           terminal: bool, coloured: bool) -> str:
    try:
        view = read()
        body = render_frame(view, route_id=route_id)
        when = view["generated_at"]
    except CommandError as exc:
        advice = f"\nnext: {exc.next_step}" if exc.next_step else ""
        body = (f"cannot read the state: {exc.message}{advice}\n"
                f"(trying again every {interval_seconds:g} s)")
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    text = f"turnout status   {when}   every {interval_seconds:g} s   Ctrl-C to stop\n\n{body}"
    if coloured:
        text = colour(text)
    if not terminal:
        return text + "\n\n"
    lines = text.splitlines()
    return _HOME + "".join(line + _CLEAR_LINE + "\n" for line in lines) + _CLEAR_BELOW


def _overview_row(r: dict) -> list:
    health = " ".join(f"{u['name']}:{u['health']}" for u in r["upstreams"])
    last = r["last_failover"]
    switch = (f"{last['time']} {last['from_upstream']}->{last['to_upstream']} ({last['kind']})"
              if last else None)
    phase = r["phase"] + (f" ({r['reason']})" if r["reason"] and r["phase"] != "READY" else "")
    return [r["route_id"], phase, r["active_upstream"], health, switch]


def _streak(u: dict) -> str:
    if u["healthy"] is None:
        return "-"
    if u["consecutive_failures"]:
        return f"{u['consecutive_failures']} failed"
    return f"{u['consecutive_successes']} ok"
