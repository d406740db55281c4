"""The status page in a real browser: Debian's Chromium, headless.

Chromium is driven by its own command-line switches (``--dump-dom`` and ``--screenshot`` of
one page load, after ``--virtual-time-budget`` lets the page poll and draw): the page draws
itself from its JSON, so the document Chromium serialises after the budget is what a person
sees, and the screenshot is of that same load. Each load gets a fresh profile; every switch
that would reach the network on its own is off (the machine's network is closed).

The failover scenario runs ``turnout up``, kills the primary upstream of a two-upstream route
and waits, reloading the page, until the browser shows the route READY on the secondary, the
primary unhealthy and a failover marker on the timeline; that load's screenshot is kept as
``docs/status-page.png``.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import time
import zlib
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from control_plane.model.failover import parse_time
from control_plane.model.item import to_item
from tests.system.harness import ROOT, EchoUpstream, Turnout
from tests.system.test_failover_up import failover_route, put_route, served_by

pytestmark = pytest.mark.system

SCREENSHOT = ROOT / "docs" / "status-page.png"
WINDOW = (1280, 800)
FAILOVER_RED = (0xDC, 0x26, 0x26)
HEALTHY_GREEN = (0x15, 0xA3, 0x4A)
SETTLED_SECONDS = 30


# ---- the browser ------------------------------------------------------------------------------


def chromium_binary() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is missing although .ci/run installs it (apt-get install chromium)")
    pytest.skip("Debian's chromium is not installed here and this run does not install it; "
                "`apt-get install chromium` (as .ci/run does) runs this test")


class Chromium:
    """Loads a URL headless and returns the document as the page's script left it."""

    def __init__(self, binary: str, profiles: Path) -> None:
        self.binary = binary
        self.profiles = profiles
        self.loads = 0

    def load(self, url: str, *, screenshot: Path | None = None, budget_ms: int = 2500) -> str:
        self.loads += 1
        profile = self.profiles / f"profile-{self.loads}"
        command = [
            self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-extensions", "--disable-default-apps",
            "--no-default-browser-check", "--metrics-recording-only", "--mute-audio",
            f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
            "--hide-scrollbars", "--force-device-scale-factor=1",
            f"--virtual-time-budget={budget_ms}", "--dump-dom",
        ]
        if screenshot is not None:
            command.append(f"--screenshot={screenshot}")
        result = subprocess.run([*command, url], capture_output=True, text=True, timeout=90)
        shutil.rmtree(profile, ignore_errors=True)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout


class Dom(HTMLParser):
    """The elements (tag and attributes) and the text of a serialised document (the text of
    its ``title``, ``style`` and ``script`` elements apart)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.texts: list[str] = []
        self.title = ""
        self._inside: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        self._inside = tag if tag in ("title", "style", "script") else None

    def handle_endtag(self, tag: str) -> None:
        self._inside = None

    def handle_data(self, data: str) -> None:
        if self._inside == "title":
            self.title += data
        elif self._inside is None:
            self.texts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def find(self, tag: str, cls: str, **attrs: str) -> list[dict[str, str]]:
        """Elements ``tag`` with class ``cls`` whose ``data-*`` attributes are ``attrs``
        (``route_id`` means ``data-route-id``)."""
        wanted = {"data-" + k.replace("_", "-"): v for k, v in attrs.items()}
        return [a for t, a in self.elements if t == tag and cls in a.get("class", "").split()
                and all(a.get(k) == v for k, v in wanted.items())]


def png_pixels(path: Path) -> tuple[int, int, set[tuple[int, int, int]]]:
    """Width, height and the colours of an 8-bit RGB or RGBA PNG (no library needed)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, chunks, header = 8, [], None
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        offset += 12 + length
    width, height, depth, colour_type, *_ = header
    assert depth == 8 and colour_type in (2, 6), header
    channels = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    previous = bytearray(stride)
    colours: set[tuple[int, int, int]] = set()
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc
                                      else corner)) & 0xFF
        colours.update(tuple(line[i:i + 3]) for i in range(0, stride, channels))
        previous = line
    return width, height, colours


@pytest.fixture
def browser(tmp_path) -> Chromium:
    return Chromium(chromium_binary(), tmp_path)


# ---- hostile route text, on the embedded AWS endpoint ------------------------------------------


def test_route_text_shows_as_text_and_never_runs_in_the_browser(aws, browser):
    from control_plane.status_view import read_view
    from data_plane.local_gateway import LocalGateway
    from tests.functional.test_cli_routes import create_tables
    from tests.functional.test_status_view import Undeployed, World

    hostile_id = '<img src=x onerror="document.title=\'pwned-id\'">'
    hostile_reason = "<script>document.title='pwned-reason'</script>"
    hostile_message = '<b>bold</b><svg onload="document.title=\'pwned-svg\'"></svg>'
    create_tables(aws.client("dynamodb"), "routes", "state")
    world = World(aws)
    world.put("routes", {"route_id": hostile_id, "path": "/x", "methods": ["GET"],
                         "upstreams": [{"name": "<i>up</i>", "url": "https://up.example",
                                        "priority": 0}]})
    world.status(hostile_id, "REJECTED", reason=hostile_reason, message=hostile_message)
    world.switch(hostile_id, 10, "manual", "<i>up</i>", "<u>down</u>")

    with LocalGateway(Undeployed(), port=0, access_log=None,
                      status_view=lambda: read_view(world.source())) as gateway:
        dom = Dom(browser.load(f"http://127.0.0.1:{gateway.port}/__turnout/"))

    [row] = dom.find("tr", "route", phase="REJECTED")
    assert row["data-route-id"] == hostile_id
    for text in (hostile_id, hostile_reason, hostile_message, "<i>up</i>"):
        assert text in dom.text
    assert dom.title == "turnout status"
    assert [tag for tag, _ in dom.elements if tag == "script"] == ["script"]  # the page's own
    assert not [tag for tag, _ in dom.elements if tag in ("img", "b", "i", "u")]
    assert not [a for _, a in dom.elements if any(k.startswith("on") for k in a)]


# ---- a failover on the whole stack --------------------------------------------------------------


def failover_shown(dom: Dom) -> bool:
    return bool(dom.find("tr", "route", route_id="orders", phase="READY", active_upstream="backup")
                and dom.find("span", "upstream", upstream="primary", health="unhealthy")
                and dom.find("span", "upstream", upstream="backup", health="healthy")
                and dom.find("g", "marker", route_id="orders", kind="failover")
                and not dom.find("tr", "route", route_id="orders", all_down="true"))


def load_until_failover_shown(browser: Chromium, url: str, shot: Path, *, timeout: float) -> Dom:
    """Reload the page until it shows the failover (or the time is up): the last load's DOM,
    its screenshot in ``shot``."""
    deadline = time.monotonic() + timeout
    while True:
        dom = Dom(browser.load(url, screenshot=shot))
        if failover_shown(dom) or time.monotonic() > deadline:
            return dom
        time.sleep(1)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_status_page_shows_a_failover_in_a_real_browser(browser, tmp_path):
    primary, backup, catalog = EchoUpstream("primary"), EchoUpstream("backup"), EchoUpstream("catalog")
    turnout = Turnout()
    try:
        orders = failover_route("orders", primary, backup, min_hold_seconds=600)
        orders["health_check"]["timeout_ms"] = 900  # a loaded machine must not fail the backup
        put_route(turnout, orders)
        put_route(turnout, {"route_id": "catalog", "path": "/catalog/{proxy+}", "methods": ["GET"],
                            "upstreams": [{"name": "main", "url": catalog.url, "priority": 0,
                                           "allow_insecure": True}],
                            "health_check": {"path": "/health", "interval_seconds": 1,
                                             "timeout_ms": 900}})
        turnout.aws("dynamodb", "put-item", "--table-name", turnout.outputs["RoutesTableName"],
                    "--item", json.dumps(to_item({
                        "route_id": "metadata", "path": "/metadata", "methods": ["GET"],
                        "upstreams": [{"name": "imds", "url": "http://169.254.169.254",
                                       "priority": 0, "allow_insecure": True}]})))
        turnout.wait_for(lambda: served_by(turnout, "/orders/x") == "primary",
                         what="primary serving")

        primary.close()  # its port now refuses connections, as a dead server's does
        turnout.wait_for(lambda: served_by(turnout, "/orders/x") == "backup", timeout=60,
                         what="traffic on the backup")
        turnout.wait_for(lambda: turnout.statuses().get("metadata", {}).get("phase") == "REJECTED",
                         what="metadata REJECTED")

        url = f"http://127.0.0.1:{turnout.gateway_port}/__turnout/"
        shot = tmp_path / "status-page.png"
        dom = load_until_failover_shown(browser, url, shot, timeout=60)
        markers = dom.find("g", "marker", route_id="orders", kind="failover")
        if markers:  # let the timeline show the backup serving a while, for the picture
            switched = parse_time(markers[0]["data-time"])
            time.sleep(max(0.0, SETTLED_SECONDS - (datetime.now(UTC) - switched).total_seconds()))
            dom = load_until_failover_shown(browser, url, shot, timeout=30)
    finally:
        turnout.stop()
        for upstream in (primary, backup, catalog):
            upstream.close()

    assert dom.find("tr", "route", route_id="orders", phase="READY", active_upstream="backup")
    assert dom.find("span", "upstream", upstream="primary", health="unhealthy", active="false")
    assert dom.find("span", "upstream", upstream="backup", health="healthy", active="true")
    assert dom.find("g", "marker", route_id="orders", kind="failover")
    assert dom.find("tr", "route", route_id="catalog", phase="READY")
    assert dom.find("tr", "route", route_id="metadata", phase="REJECTED")
    assert "UpstreamAddressNotAllowed" in dom.text
    assert dom.find("span", "dot", state="live")  # the page's last poll succeeded
    assert "Cannot read the status" not in dom.text
    width, height, colours = png_pixels(shot)
    assert (width, height) == WINDOW
    assert FAILOVER_RED in colours and HEALTHY_GREEN in colours
    SCREENSHOT.parent.mkdir(exist_ok=True)
    shutil.copyfile(shot, SCREENSHOT)
