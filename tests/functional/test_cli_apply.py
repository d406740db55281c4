"""`turnout routes apply`: unchanged routes are not rewritten, progress shows on a terminal, and
``--wait`` follows every route until the real reconcile handler reports it.

The control plane is the real route-stream handler (:class:`tests.functional.stack.Harness`),
fed the routes table's stream records from a background thread, as Lambda would be.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from control_plane.cli import aws as cli_aws
from control_plane.cli import main
from tests.functional.stack import Harness, Stack
from tests.functional.test_cli_routes import route_yaml, write_file

TURNOUT = Path(sys.executable).parent / "turnout"


@pytest.fixture
def reconciler(stack: Stack, harness: Harness):
    """The reconcile handler, run on every new batch of stream records until the test ends."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def loop() -> None:
        while not stop.is_set():
            try:
                event = stack.next_event()
                if event["Records"]:
                    harness.run(event)
            except BaseException as exc:  # noqa: BLE001 - reported by the fixture
                failures.append(exc)
                return
            stop.wait(0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield harness
    stop.set()
    thread.join(30)
    assert not failures, failures


@pytest.fixture
def apply(stack: Stack, capsys):
    def run(*args: object) -> tuple[int, str, str]:
        code = main(["routes", "apply", *map(str, args), "--table", stack.routes_table,
                     "--state-table", stack.state_table, "--endpoint-url", stack.aws.url])
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return code, captured.out, captured.err
    return run


def routes_file(tmp_path: Path, name: str, *routes: tuple[str, str]) -> Path:
    """A YAML list of routes given as (route_id, path)."""
    text = "".join("- " + route_yaml(route_id).replace(f"path: /{route_id}", f"path: {path}")
                   .replace("\n", "\n  ").rstrip() + "\n" for route_id, path in routes)
    return write_file(tmp_path, name, text)


def test_wait_prints_each_route_as_it_becomes_ready_and_exits_0(reconciler, apply, tmp_path):
    path = routes_file(tmp_path, "shop.yaml", ("cart", "/cart"), ("orders", "/orders"))

    code, out, err = apply(path, "--wait", "--timeout", "60")

    assert code == 0, err
    lines = out.splitlines()
    assert lines[:2] == ["applied cart", "applied orders"]
    assert sorted(lines[2:]) == [
        "ready     cart  Serving ANY /cart from upstream 'a'.",
        "ready     orders  Serving ANY /orders from upstream 'a'.",
    ]
    assert "turnout: all 2 routes READY" in err


def test_wait_exits_1_naming_the_rejected_route_and_its_reason(reconciler, apply, stack,
                                                                 tmp_path):
    path = routes_file(tmp_path, "clash.yaml", ("first", "/same"), ("second", "/same"))

    code, out, err = apply(path, "--wait", "--timeout", "60")

    assert code == 1
    settled = out.splitlines()[2:]
    assert sorted(line.split()[0] for line in settled) == ["ready", "rejected"]
    rejected = next(line for line in settled if line.startswith("rejected"))
    loser = rejected.split()[1]
    assert "PathConflict" in rejected and "/same is already served by route" in rejected
    assert f"turnout: error: 1 of 2 routes not accepted by the control plane: {loser}\n" in err
    assert "  next: fix what the reasons above name and apply again" in err
    assert stack.status(loser)["phase"] == "REJECTED"


def test_wait_without_a_control_plane_times_out_saying_where_each_route_is(apply, tmp_path):
    path = routes_file(tmp_path, "shop.yaml", ("cart", "/cart"))

    code, _, err = apply(path, "--wait", "--timeout", "1")

    assert code == 1
    assert "turnout: error: 1 of 1 routes not settled after 1 s: cart (no status yet)\n" in err
    assert "is the control plane running" in err and "--timeout SECONDS" in err


def test_wait_does_not_take_the_status_of_an_earlier_version_as_settled(apply, stack, harness,
                                                                        tmp_path):
    assert apply(write_file(tmp_path, "v1.yaml", route_yaml("cart")))[0] == 0
    harness.run()
    assert stack.status("cart")["phase"] == "READY"

    code, out, err = apply(write_file(tmp_path, "v2.yaml", route_yaml("cart", description="v2")),
                           "--wait", "--timeout", "1")

    assert code == 1
    assert out == "applied cart\n"
    assert "cart (READY for an earlier version)" in err


def test_applying_unchanged_routes_again_writes_nothing(apply, stack, tmp_path):
    path = routes_file(tmp_path, "shop.yaml", ("cart", "/cart"), ("orders", "/orders"))
    assert apply(path)[0] == 0
    stack.next_event()
    calls: list[str] = []

    def count(model, **_):
        calls.append(model.name)

    events = cli_aws._session().events
    events.register("before-call.dynamodb", count)
    try:
        code, out, err = apply(path)
    finally:
        events.unregister("before-call.dynamodb", count)

    assert code == 0
    assert out == "unchanged cart\nunchanged orders\n"
    assert "turnout: 0 applied, 2 unchanged" in err
    assert "PutItem" not in calls
    assert stack.next_event()["Records"] == []


def test_a_directory_applies_its_route_files_in_name_order(apply, tmp_path):
    folder = tmp_path / "routes"
    folder.mkdir()
    for route_id in ("b", "a", "c"):
        write_file(folder, f"{route_id}.yaml", route_yaml(route_id))
    write_file(folder, "notes.txt", "not a route")

    code, out, _ = apply(folder)

    assert (code, out) == (0, "applied a\napplied b\napplied c\n")


def _apply_with_stderr_on(stderr, stack: Stack, folder: Path) -> subprocess.Popen:
    env = dict(os.environ, AWS_ENDPOINT_URL=stack.aws.url)
    return subprocess.Popen(
        [str(TURNOUT), "routes", "apply", str(folder), "--table", stack.routes_table],
        stdout=subprocess.PIPE, stderr=stderr, env=env, close_fds=True,
    )


def test_progress_shows_on_a_terminal_and_not_in_a_pipe(stack, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(30):
        write_file(folder, f"r{n:02}.yaml", route_yaml(f"r{n:02}"))
    controller, terminal = pty.openpty()
    proc = _apply_with_stderr_on(terminal, stack, folder)
    os.close(terminal)
    screen = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        screen += chunk
    out, _ = proc.communicate(timeout=60)
    os.close(controller)

    assert proc.returncode == 0
    assert len(out.decode().splitlines()) == 30
    text = screen.decode()
    assert "\x1b[Kturnout: applying 1/30" in text
    assert "\x1b[Kturnout: applying 30/30" in text
    assert text.endswith("\r\x1b[K" + text[text.rindex("turnout: 30 applied"):])
    assert "turnout: 30 applied, 0 unchanged in table " in text

    piped = _apply_with_stderr_on(subprocess.PIPE, stack, folder)
    _, err = piped.communicate(timeout=60)
    assert piped.returncode == 0
    assert b"applying" not in err and b"\x1b" not in err
    assert err.decode().startswith("turnout: 0 applied, 30 unchanged in table ")
