"""Drive ``turnout up`` the way a user does: a subprocess, the real AWS CLI, real upstreams.

Used by the system tests and by the benchmarks in ``bench/``.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.conftest import free_port

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


class EchoUpstream:
    """A real HTTP server that answers every request with what it received, as JSON."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests: list[dict] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                seen = {"upstream": upstream.name, "method": self.command, "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                upstream.requests.append(seen)
                payload = json.dumps(seen).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Upstream", upstream.name)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Turnout:
    def __init__(self, *extra_args: str, allow_loopback_upstreams: bool = True) -> None:
        self.aws_port = free_port()
        self.gateway_port = free_port()
        self.env = dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{self.aws_port}",
                        AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="local",
                        AWS_SECRET_ACCESS_KEY="local", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [str(BIN / "turnout"), "up",
             *(["--allow-loopback-upstreams"] if allow_loopback_upstreams else []),
             "--aws-port", str(self.aws_port), "--gateway-port", str(self.gateway_port),
             *extra_args],
            cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.output: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(120):
            self.stop()
            raise AssertionError("turnout up did not become ready:\n" + "".join(self.output))
        self.outputs = json.loads(self.aws("cloudformation", "describe-stacks", "--stack-name",
                                           "turnout"))["Stacks"][0]["Outputs"]
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in self.outputs}

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)
            if "ready in" in line:
                self._ready.set()

    def aws(self, *args: str) -> str:
        result = subprocess.run([str(BIN / "aws"), *args, "--output", "json",
                                 "--endpoint-url", self.env["AWS_ENDPOINT_URL"]], env=self.env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def turnout(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "turnout"), *args], env=self.env, capture_output=True,
                              text=True, timeout=60)

    def statuses(self) -> dict[str, dict]:
        result = self.turnout("routes", "status", "-o", "json")
        assert result.returncode == 0, result.stderr
        return {s["route_id"]: s for s in json.loads(result.stdout)}

    def wait_for(self, predicate, timeout: float = 30.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; last: {last!r}\n" + "".join(self.output[-30:]))

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """One request with exactly these headers (http.client adds only Host and length)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.gateway_port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGUSR1)  # every thread's stack, into the output
                time.sleep(2)
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)  # the last lines, for the caller's messages
        return self.proc.returncode


def route_item(route_id: str, path: str, url: str, methods=("GET", "POST")) -> str:
    return json.dumps({
        "route_id": {"S": route_id},
        "path": {"S": path},
        "methods": {"L": [{"S": m} for m in methods]},
        "upstreams": {"L": [{"M": {"name": {"S": "main"}, "url": {"S": url},
                                   "priority": {"N": "0"}}}]},
    })
