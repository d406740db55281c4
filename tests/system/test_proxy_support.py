"""Support for the proxy system tests and benchmarks (no tests here): upstreams in their own
processes (so they can be killed or frozen with a signal) and an open-loop load generator."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

UPSTREAM_PROGRAM = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = sys.argv[1]

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self):
        body = json.dumps({"upstream": NAME, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Upstream", NAME)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, address):
        pass

server = Server(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


class UpstreamProcess:
    """An HTTP upstream on 127.0.0.1 in a child process, answering GETs with its name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, "-c", UPSTREAM_PROGRAM, name],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: the process dies, its port refuses connections."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def freeze(self) -> None:
        """SIGSTOP: the process hangs; connections are accepted by the kernel, never answered."""
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()


@dataclass
class Outcome:
    started: float
    latency_seconds: float
    status: int | None
    upstream: str | None = None
    error: str | None = None


@dataclass
class LoadRun:
    """What an open-loop run of GETs saw."""

    outcomes: list[Outcome] = field(default_factory=list)

    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != 200]

    def between(self, start: float, end: float) -> list[Outcome]:
        return [o for o in self.outcomes if start <= o.started < end]

    @staticmethod
    def percentile(outcomes: list[Outcome], fraction: float) -> float:
        latencies = sorted(o.latency_seconds for o in outcomes)
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))]


def open_loop(port: int, path: str, *, rate_per_second: float, duration_seconds: float,
              during=None, timeout_seconds: float = 30.0, workers: int = 128) -> LoadRun:
    """Send GETs at a steady rate (whatever the answers' latency) and record every outcome.

    ``during(elapsed_seconds)`` is called from the pacing loop (e.g. to kill an upstream).
    """
    run = LoadRun()
    lock = threading.Lock()
    local = threading.local()

    def one(started: float) -> None:
        try:
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_seconds)
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            upstream = response.getheader("X-Upstream")
            outcome = Outcome(started, time.monotonic() - started, response.status, upstream,
                              None if response.status == 200 else body[:200].decode("latin-1"))
        except Exception as exc:  # a failed request is an outcome, not a crash of the run
            local.conn = None
            outcome = Outcome(started, time.monotonic() - started, None, None, repr(exc))
        with lock:
            run.outcomes.append(outcome)

    interval = 1.0 / rate_per_second
    begin = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        sent = 0
        while True:
            now = time.monotonic()
            elapsed = now - begin
            if elapsed >= duration_seconds:
                break
            if during is not None:
                during(elapsed)
            due = begin + sent * interval
            if now < due:
                time.sleep(min(due - now, 0.01))
                continue
            pool.submit(one, time.monotonic())
            sent += 1
    run.outcomes.sort(key=lambda o: o.started)
    return run


def proxy_route_item(route_id: str, path: str, *upstreams: tuple[str, str], timeout_ms: int = 2000) -> str:
    """A ``mode: proxy`` route item for ``aws dynamodb put-item``: GETs retried on any failure."""
    return json.dumps({
        "route_id": {"S": route_id},
        "path": {"S": path},
        "mode": {"S": "proxy"},
        "methods": {"L": [{"S": "GET"}]},
        "timeout_ms": {"N": str(timeout_ms)},
        "retries": {"M": {"attempts": {"N": "1"},
                          "on": {"L": [{"S": "connect-failure"}, {"S": "5xx"}, {"S": "timeout"}]}}},
        "upstreams": {"L": [
            {"M": {"name": {"S": name}, "url": {"S": url}, "priority": {"N": str(i)}}}
            for i, (name, url) in enumerate(upstreams)
        ]},
    })
