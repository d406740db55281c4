"""Upstreams in their own processes (:mod:`tests.reliability.upstream_server`): killed with
SIGKILL and restarted on the same port, and asked what they received."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time

from tests.system.harness import ROOT


class Upstream:
    """A real HTTP server on 127.0.0.1 in a child process."""

    def __init__(self, name: str, port: int = 0) -> None:
        self.name = name
        self.port = port
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start serving (on the same port as before, once it was chosen)."""
        deadline = time.monotonic() + 15
        while True:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.upstream_server", self.name,
                 str(self.port)],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            line = self.proc.stdout.readline().strip()
            if line.isdigit():
                self.port = int(line)
                return
            self.proc.wait()
            if time.monotonic() > deadline:
                raise RuntimeError(f"upstream {self.name} could not listen on {self.port}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: the process dies and its port refuses connections."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def close(self) -> None:
        self.kill()

    def seen(self) -> dict:
        """``{"count": N, "recent": [...]}``: the requests received (health probes excluded)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/__upstream/seen")
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def count(self) -> int:
        return int(self.seen()["count"])
