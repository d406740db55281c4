"""A service streaming large bodies (and counting what it receives), in its own process, so
that a test measures only the memory of the part under test."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

BULK_PROGRAM = r"""
import hashlib, json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PIECE = 64 * 1024
PATTERN = bytes(range(256)) * (PIECE // 256)


class Bulk(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # .../sink: read piece by piece, answer size and SHA-256
        digest, size, remaining = hashlib.sha256(), 0, int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            piece = self.rfile.read(min(PIECE, remaining))
            if not piece:
                break
            digest.update(piece)
            size += len(piece)
            remaining -= len(piece)
        body = json.dumps({"size": size, "sha256": digest.hexdigest()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # .../source/<n>[?length=1]: n pattern bytes, chunked unless length=1
        path, _, query = self.path.partition("?")
        size, length = int(path.rsplit("/", 1)[-1]), "length=1" in query
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length" if length else "Transfer-Encoding",
                         str(size) if length else "chunked")
        self.end_headers()
        sent = 0
        try:
            while sent < size:
                part = PATTERN[: min(PIECE, size - sent)]
                sent += len(part)
                self.wfile.write(part if length else b"%x\r\n%s\r\n" % (len(part), part))
            if not length:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, address):
        pass


server = Server(("127.0.0.1", 0), Bulk)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@contextmanager
def bulk_service() -> Iterator[str]:
    """Start the service; its base URL on 127.0.0.1 while the block runs."""
    process = subprocess.Popen([sys.executable, "-c", BULK_PROGRAM], stdout=subprocess.PIPE, text=True)
    try:
        yield f"http://127.0.0.1:{int(process.stdout.readline())}"
    finally:
        process.kill()
        process.wait()
