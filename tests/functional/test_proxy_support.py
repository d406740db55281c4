"""Support for the proxy tests (no tests here): real upstreams on 127.0.0.1, proxy events, and
the routes and state tables on the embedded AWS endpoint."""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from control_plane.model.item import to_item
from tests.conftest import free_port

ROUTES_TABLE = "turnout-routes"
STATE_TABLE = "turnout-state"


class Upstream:
    """A real HTTP/1.1 server that records what it receives and misbehaves on request.

    ``forced_status`` makes every answer that status; ``delay_seconds`` delays every answer.
    Otherwise by path: ``/status/<code>`` answers that status; ``/redirect`` answers 302;
    ``/gzip`` a gzip body; ``/binary`` 256 raw bytes; ``/cookies`` two ``Set-Cookie`` headers;
    anything else 200 with what was received, as JSON.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.forced_status: int | None = None
        self.delay_seconds = 0.0
        self.requests: list[dict[str, Any]] = []
        self.connections = 0
        self._lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with upstream._lock:
                    upstream.connections += 1

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = {"upstream": upstream.name, "method": self.command, "path": self.path,
                        "headers": [[k, v] for k, v in self.headers.items()],
                        "body": body.decode("latin-1")}
                with upstream._lock:
                    upstream.requests.append(seen)
                parts = self.path.split("?")[0].strip("/").split("/")
                if upstream.delay_seconds:
                    time.sleep(upstream.delay_seconds)
                if upstream.forced_status is not None:
                    code = upstream.forced_status
                    self._send(code, f"{upstream.name} says {code}".encode(), "text/plain")
                elif parts[0] == "status":
                    self._send(int(parts[1]), f"{upstream.name} says {parts[1]}".encode(), "text/plain")
                elif parts[0] == "redirect":
                    self._send(302, b"", "text/plain", [("Location", "/elsewhere")])
                elif parts[0] == "gzip":
                    self._send(200, gzip.compress(b"turnout " * 100, mtime=0), "text/plain",
                               [("Content-Encoding", "gzip")])
                elif parts[0] == "binary":
                    self._send(200, bytes(range(256)), "application/octet-stream")
                elif parts[0] == "cookies":
                    self._send(200, b"ok", "text/plain", [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
                else:
                    self._send(200, json.dumps(seen).encode(), "application/json")

            def _send(self, status: int, body: bytes, content_type: str,
                      extra: list[tuple[str, str]] = ()) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("X-Upstream", upstream.name)
                for name, value in extra:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # a client that gave up
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def paths(self) -> list[str]:
        with self._lock:
            return [r["path"] for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_url() -> str:
    """A 127.0.0.1 URL nothing listens on: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"


def create_tables(aws: Any) -> None:
    ddb = aws.client("dynamodb")
    ddb.create_table(
        TableName=ROUTES_TABLE,
        AttributeDefinitions=[{"AttributeName": "route_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "route_id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.create_table(
        TableName=STATE_TABLE,
        AttributeDefinitions=[{"AttributeName": "route_id", "AttributeType": "S"},
                              {"AttributeName": "kind", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "route_id", "KeyType": "HASH"},
                   {"AttributeName": "kind", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )


def put_route(aws: Any, doc: dict[str, Any]) -> None:
    aws.client("dynamodb").put_item(TableName=ROUTES_TABLE, Item=to_item(doc))


def put_status(aws: Any, route_id: str, *, active_upstream: str, phase: str = "READY") -> None:
    aws.client("dynamodb").put_item(TableName=STATE_TABLE, Item=to_item(
        {"route_id": route_id, "kind": "status", "phase": phase, "active_upstream": active_upstream}))


def proxy_route(route_id: str, path: str, *urls: str, methods=("GET", "POST"), **extra: Any) -> dict:
    return {
        "route_id": route_id,
        "path": path,
        "mode": "proxy",
        "methods": list(methods),
        "upstreams": [{"name": f"u{i}", "url": url, "priority": i} for i, url in enumerate(urls)],
        **extra,
    }


def event(method: str, resource: str, path: str, *, headers=(), query=(), body: bytes | None = None,
          source_ip: str = "203.0.113.9", binary: bool = False) -> dict[str, Any]:
    """An API Gateway REST proxy event (payload 1.0), as API Gateway sends it."""
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)
    multi_query: dict[str, list[str]] = {}
    for name, value in query:
        multi_query.setdefault(name, []).append(value)
    if body is None:
        text, encoded = None, False
    elif binary:
        text, encoded = base64.b64encode(body).decode(), True
    else:
        text, encoded = body.decode(), False
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {k: v[-1] for k, v in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "stage": "live",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "resourcePath": resource,
            "httpMethod": method, "path": f"/live{path}", "protocol": "HTTP/1.1",
            "identity": {"sourceIp": source_ip, "userAgent": "test"},
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


CONTEXT = types.SimpleNamespace(
    function_name="turnout-data-plane",
    aws_request_id="test",
    memory_limit_in_mb=1024,
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:turnout-data-plane",
    get_remaining_time_in_millis=lambda: 30_000,
)


def body_of(result: dict[str, Any]) -> bytes:
    """The body bytes a proxy result carries."""
    if result.get("isBase64Encoded"):
        return base64.b64decode(result["body"])
    return (result.get("body") or "").encode()


def header_of(result: dict[str, Any], name: str) -> list[str]:
    for key, values in (result.get("multiValueHeaders") or {}).items():
        if key.lower() == name.lower():
            return values
    return []
