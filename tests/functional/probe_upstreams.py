"""Real upstreams on 127.0.0.1 for the prober's tests: one that answers with a status of our
choosing, one that accepts connections and never answers, and a port where nothing listens."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.conftest import free_port


class StatusUpstream:
    """Answers every GET with ``status``; records each request's path and arrival time."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[tuple[float, str, dict[str, str]]] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
                upstream.requests.append((time.monotonic(), self.path, dict(self.headers)))
                body = b"ok" if upstream.status < 400 else b"failing"
                self.send_response(upstream.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def paths(self) -> list[str]:
        return [path for _, path, _ in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class HangingUpstream:
    """Accepts connections and reads requests but never answers; records when each
    connection was accepted and when the prober gave up on it (closed it)."""

    def __init__(self) -> None:
        self.accepted: list[float] = []
        self.closed: list[float] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.accepted.append(time.monotonic())
            self._open.append(connection)
            threading.Thread(target=self._hold, args=(connection,), daemon=True).start()

    def _hold(self, connection: socket.socket) -> None:
        try:
            while connection.recv(4096):
                pass
        except OSError:
            pass
        self.closed.append(time.monotonic())

    def close(self) -> None:
        self._listener.close()
        for connection in self._open:
            try:
                connection.close()
            except OSError:
                pass


def refusing_url() -> str:
    """A 127.0.0.1 URL where nothing listens: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"
