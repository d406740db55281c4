"""``turnout status`` (once, and ``--watch``) against real tables on the embedded AWS endpoint.

Printed once, the command runs in-process; ``--watch`` runs as a subprocess, piped and on a
pseudo-terminal, and is stopped with SIGINT as Ctrl-C stops it.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from control_plane.cli import main
from tests.functional.test_status_view import ROUTES, STATE, World, failed_over

TURNOUT = str(Path(sys.executable).parent / "turnout")


@pytest.fixture
def world(aws) -> World:
    from tests.functional.test_cli_routes import create_tables

    create_tables(aws.client("dynamodb"), ROUTES, STATE)
    return World(aws, now=datetime.now(UTC))


def status(world: World, capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["status", *args, "--table", ROUTES, "--state-table", STATE,
                 "--endpoint-url", world.aws.url])
    out = capsys.readouterr()
    return code, out.out, out.err


def line_of(out: str, route_id: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(route_id + " "))


def test_status_prints_each_route_with_health_and_the_recent_switches(world, capsys):
    failed_over(world)
    world.route("pay", "a", "b")
    world.status("pay", "READY", active="a")
    world.health("pay", "a", True, successes=9)

    code, out, _ = status(world, capsys)

    assert code == 0
    assert out.splitlines()[0].split() == ["ROUTE", "PHASE", "ACTIVE", "UPSTREAMS", "LAST",
                                           "SWITCH"]
    orders = line_of(out, "orders")
    assert orders.split()[:5] == ["orders", "READY", "backup", "primary:unhealthy",
                                  "backup:healthy"]
    assert "primary->backup (failover)" in orders
    assert line_of(out, "pay").split()[:5] == ["pay", "READY", "a", "a:healthy", "b:unknown"]
    switches = out[out.index("recent switches:"):]
    assert "orders" in switches and "primary -> backup" in switches
    assert "'primary' is unhealthy" in switches


def test_status_shows_why_a_route_is_not_ready(world, capsys):
    world.route("catalog", "main")
    world.status("catalog", "REJECTED", reason="RouteConflict", message="owned by 'orders'")

    code, out, _ = status(world, capsys)

    assert code == 0
    assert line_of(out, "catalog").split()[:3] == ["catalog", "REJECTED", "(RouteConflict)"]


def test_status_of_one_route_shows_mode_alarm_and_the_last_switch(world, capsys):
    failed_over(world)
    world.alarm("orders", "primary", "ALARM")

    code, out, _ = status(world, capsys, "orders")

    assert code == 0
    assert "mode:             direct" in out
    primary = next(line for line in out.splitlines() if line.strip().startswith("primary"))
    assert primary.split()[:4] == ["primary", "0", "unhealthy", "ALARM"]
    assert "from -> to: primary -> backup" in out


def test_status_json_is_each_routes_view(world, capsys):
    failed_over(world)

    code, out, _ = status(world, capsys, "-o", "json")

    assert code == 0
    [orders] = json.loads(out)
    assert (orders["route_id"], orders["active_upstream"], orders["mode"]) == (
        "orders", "backup", "direct")
    assert [(u["name"], u["health"]) for u in orders["upstreams"]] == [
        ("primary", "unhealthy"), ("backup", "healthy")]


def test_control_characters_in_route_text_do_not_reach_the_terminal(world, capsys):
    world.route("evil", "main")
    world.status("evil", "FAILED", reason="Bad\x1b[2J\x1b]0;owned\x07", message="m")

    code, out, _ = status(world, capsys)

    assert code == 0
    assert "\x1b" not in out and "\x07" not in out
    assert "Bad?[2J?]0;owned?" in line_of(out, "evil")


def test_watch_with_json_output_is_a_usage_error(world, capsys):
    code, _, err = status(world, capsys, "--watch", "-o", "json")

    assert code == 2
    assert "--watch" in err


# ---- --watch ------------------------------------------------------------------------------------


def watch_command(world: World, *extra: str) -> list[str]:
    return [TURNOUT, "status", "--watch", "--interval", "0.3", "--table", ROUTES,
            "--state-table", STATE, "--endpoint-url", world.aws.url, *extra]


def read_until(fd: int, wanted, timeout: float = 30.0) -> str:
    """Read ``fd`` until ``wanted(text so far)`` holds."""
    text = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the pty closed
                break
            if not chunk:
                break
            text += chunk
            if wanted(text.decode(errors="replace")):
                return text.decode(errors="replace")
    raise AssertionError(f"timed out; read so far:\n{text.decode(errors='replace')}")


def test_watch_redraws_as_the_state_changes_and_ctrl_c_exits_cleanly(world):
    world.route("orders", "primary", "backup")
    world.status("orders", "READY", active="primary")
    proc = subprocess.Popen(watch_command(world), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=dict(os.environ))
    try:
        first = read_until(proc.stdout.fileno(), lambda t: "orders" in t)
        assert line_of(first, "orders").split()[:3] == ["orders", "READY", "primary"]
        failed_over(world)
        later = read_until(proc.stdout.fileno(), lambda t: "primary->backup (failover)" in t)
        latest = later[later.rindex("turnout status "):]
        assert line_of(latest, "orders").split()[:3] == ["orders", "READY", "backup"]
        proc.send_signal(signal.SIGINT)
        code = proc.wait(15)
    finally:
        proc.kill()
    stderr = proc.stderr.read().decode()
    assert code == 0, stderr
    assert "Traceback" not in stderr and "interrupted" not in stderr


def test_watch_on_a_terminal_redraws_in_place_and_gives_the_cursor_back(world):
    failed_over(world)
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(watch_command(world), stdin=terminal, stdout=terminal,
                            stderr=terminal, env=dict(os.environ), close_fds=True)
    os.close(terminal)
    try:
        screen = read_until(controller, lambda t: t.count("\x1b[H") >= 2)
        assert screen.startswith("\x1b[?25l\x1b[2J")  # cursor hidden, screen cleared once
        assert "\x1b[31munhealthy\x1b[0m" in screen and "\x1b[32mREADY\x1b[0m" in screen
        proc.send_signal(signal.SIGINT)
        rest = read_until(controller, lambda t: "\x1b[?25h" in t)
        assert proc.wait(15) == 0
        assert "Traceback" not in rest
    finally:
        proc.kill()
        os.close(controller)
