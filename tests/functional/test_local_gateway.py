"""The local gateway serving a REST API stage written to the embedded AWS endpoint.

The API is set up with boto3 the way the reconciler writes it (resources,
methods, HTTP_PROXY integrations with stage-variable URIs, a deployment and a
stage); upstreams are real aiohttp servers on 127.0.0.1 and the gateway is
called with ``http.client``.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import http.client
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from botocore.exceptions import EndpointConnectionError

from data_plane.gateway_config import ConfigSource, apigateway_client
from data_plane.local_gateway import LocalGateway
from data_plane.server_thread import ServerThread
from tests.conftest import AwsEndpoint, free_port
from tests.functional.gateway_client import call_port

STAGE = "live"
PROXY_TIMEOUT_MS = 5_000
SLOW_TIMEOUT_MS = 300
SLOW_UPSTREAM_SECONDS = 3.0


# --- upstreams ---------------------------------------------------------------------------------


@dataclass
class StreamSignals:
    """Lets a test and an upstream wait for each other across threads."""

    upstream_saw_first_chunk: threading.Event = field(default_factory=threading.Event)
    client_saw_first_chunk: threading.Event = field(default_factory=threading.Event)
    upstream_waited_ok: list[bool] = field(default_factory=list)


def upstream_app(name: str, signals: StreamSignals | None = None) -> web.Application:
    """An upstream that reports what it received and can misbehave on request."""
    signals = signals or StreamSignals()

    async def describe(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {
                "upstream": name,
                "method": request.method,
                "path": request.rel_url.raw_path,
                "query": request.rel_url.raw_query_string,
                "headers": [[k.decode(), v.decode()] for k, v in request.raw_headers],
                "body": body.decode("latin-1"),
            },
            headers={"X-Upstream": name},
        )

    async def status(request: web.Request) -> web.Response:
        response = web.Response(
            status=int(request.match_info["code"]),
            text=f"{name} says {request.match_info['code']}",
            headers={
                "X-Custom": "yes",
                "Server": "upstream/1.0",
                "Keep-Alive": "timeout=5",
                "Connection": "X-Hop-Secret",
                "X-Hop-Secret": "do-not-leak",
            },
        )
        response.headers.add("Set-Cookie", "a=1")
        response.headers.add("Set-Cookie", "b=2")
        return response

    async def gzipped(_request: web.Request) -> web.Response:
        return web.Response(
            body=gzip.compress(b"turnout " * 1000, mtime=0),
            headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
        )

    async def redirect(_request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/svc/elsewhere"})

    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(SLOW_UPSTREAM_SECONDS)
        return web.Response(text="too late")

    async def echo_body(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        async for chunk in request.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response

    async def die_mid_body(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"partial")
        request.transport.abort()
        return response

    async def count_streamed_upload(request: web.Request) -> web.Response:
        first = await request.content.readany()
        signals.upstream_saw_first_chunk.set()
        rest = await request.content.read()
        return web.json_response({"bytes": len(first) + len(rest)})

    async def stream_download(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"first;")
        loop = asyncio.get_running_loop()
        seen = await loop.run_in_executor(None, signals.client_saw_first_chunk.wait, 5)
        signals.upstream_waited_ok.append(seen)
        await response.write(b"second")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_route("*", "/svc/status/{code}", status)
    app.router.add_route("*", "/svc/gzip", gzipped)
    app.router.add_route("*", "/svc/redirect", redirect)
    app.router.add_route("*", "/svc/slow", slow)
    app.router.add_route("*", "/svc/body", echo_body)
    app.router.add_route("*", "/svc/die", die_mid_body)
    app.router.add_route("*", "/svc/upload", count_streamed_upload)
    app.router.add_route("*", "/svc/download", stream_download)
    app.router.add_route("*", "/{tail:.*}", describe)
    return app


def serve_upstream(name: str, signals: StreamSignals | None = None) -> ServerThread:
    server = ServerThread(
        lambda: upstream_app(name, signals), name=f"upstream-{name}", shutdown_timeout_seconds=0.5
    )
    server.start()
    return server


@pytest.fixture(scope="module")
def blue() -> Iterator[ServerThread]:
    server = serve_upstream("blue")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def green() -> Iterator[ServerThread]:
    server = serve_upstream("green")
    yield server
    server.stop()


def at(server: ServerThread) -> str:
    return f"127.0.0.1:{server.port}"


# --- the REST API, written the way the reconciler writes it ------------------------------------


def http_proxy(
    apigw: Any, api_id: str, resource_id: str, method: str, uri: str, timeout_ms: int, params=()
) -> None:
    apigw.put_method(
        restApiId=api_id,
        resourceId=resource_id,
        httpMethod=method,
        authorizationType="NONE",
        requestParameters={f"method.request.path.{p}": True for p in params},
    )
    apigw.put_integration(
        restApiId=api_id,
        resourceId=resource_id,
        httpMethod=method,
        type="HTTP_PROXY",
        integrationHttpMethod="ANY",
        uri=uri,
        requestParameters={f"integration.request.path.{p}": f"method.request.path.{p}" for p in params},
        timeoutInMillis=timeout_ms,
    )


def create_api(apigw: Any) -> str:
    """/echo (GET, POST), /svc/{proxy+} (ANY), /slow (GET), /broken (GET); no stage yet."""
    api_id = apigw.create_rest_api(name="turnout")["id"]
    root = apigw.get_resources(restApiId=api_id)["items"][0]["id"]

    def resource(parent: str, part: str) -> str:
        return apigw.create_resource(restApiId=api_id, parentId=parent, pathPart=part)["id"]

    echo = resource(root, "echo")
    for method in ("GET", "POST"):
        http_proxy(apigw, api_id, echo, method, "http://${stageVariables.svc}/echo", PROXY_TIMEOUT_MS)
    proxy = resource(resource(root, "svc"), "{proxy+}")
    http_proxy(
        apigw,
        api_id,
        proxy,
        "ANY",
        "http://${stageVariables.svc}/svc/{proxy}",
        PROXY_TIMEOUT_MS,
        params=("proxy",),
    )
    slow = resource(root, "slow")
    http_proxy(apigw, api_id, slow, "GET", "http://${stageVariables.svc}/svc/slow", SLOW_TIMEOUT_MS)
    broken = resource(root, "broken")
    http_proxy(apigw, api_id, broken, "GET", "http://${stageVariables.nope}/x", PROXY_TIMEOUT_MS)
    return api_id


def deploy(apigw: Any, api_id: str, svc: str) -> None:
    apigw.create_deployment(restApiId=api_id, stageName=STAGE, variables={"svc": svc})


def switch_upstream(apigw: Any, api_id: str, svc: str) -> None:
    apigw.update_stage(
        restApiId=api_id,
        stageName=STAGE,
        patchOperations=[{"op": "replace", "path": "/variables/svc", "value": svc}],
    )


# --- the gateway and a client ------------------------------------------------------------------


@dataclass
class Gateway:
    server: LocalGateway
    source: ConfigSource


@pytest.fixture
def start_gateway(aws: AwsEndpoint) -> Iterator[Callable[..., Gateway]]:
    started: list[Gateway] = []

    def start(api_id: str, *, refresh_interval_seconds: float = 60.0, client: Any = None) -> Gateway:
        source = ConfigSource(
            client or apigateway_client(aws.url, region=aws.region),
            rest_api_id=api_id,
            stage_name=STAGE,
            refresh_interval_seconds=refresh_interval_seconds,
        )
        source.start()
        server = LocalGateway(source, port=0)
        server.start()
        started.append(Gateway(server, source))
        return started[-1]

    yield start
    for gateway in started:
        gateway.server.stop()
        gateway.source.stop()


@pytest.fixture
def apigw(aws: AwsEndpoint) -> Any:
    return aws.client("apigateway")


@pytest.fixture
def live(apigw: Any, blue: ServerThread, start_gateway: Callable[..., Gateway]) -> Gateway:
    """The API deployed with every route on the blue upstream, served by a gateway."""
    api_id = create_api(apigw)
    deploy(apigw, api_id, at(blue))
    return start_gateway(api_id)


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        found = self.all(name)
        return found[0] if found else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    gateway: Gateway,
    method: str,
    target: str,
    *,
    headers: list[tuple[str, str]] | tuple = (),
    body: bytes | None = None,
    timeout_seconds: float = 10,
) -> Reply:
    return Reply(*call_port(gateway.server.port, method, target, headers=headers, body=body,
                            timeout=timeout_seconds))


def received(reply: Reply) -> dict[str, Any]:
    """What the upstream says it received."""
    assert reply.status == 200, reply.body
    return reply.json()


def header_names(seen: dict[str, Any]) -> list[str]:
    return [name.lower() for name, _ in seen["headers"]]


def header_values(seen: dict[str, Any], name: str) -> list[str]:
    return [value for key, value in seen["headers"] if key.lower() == name.lower()]


# --- forwarding --------------------------------------------------------------------------------


def test_method_path_query_headers_and_body_reach_the_upstream_intact(
    live: Gateway, blue: ServerThread
) -> None:
    seen = received(
        call(
            live,
            "POST",
            "/echo?b=2&a=1&b=3&empty=&flag",
            headers=[("Content-Type", "application/json"), ("X-Trace", "t1"), ("X-Trace", "t2")],
            body=b'{"amount": 42}',
        )
    )

    assert seen["upstream"] == "blue"
    assert (seen["method"], seen["path"], seen["query"]) == ("POST", "/echo", "b=2&a=1&b=3&empty=&flag")
    assert seen["body"] == '{"amount": 42}'
    assert header_values(seen, "X-Trace") == ["t1", "t2"]
    assert header_values(seen, "Content-Type") == ["application/json"]
    assert header_values(seen, "Host") == [at(blue)]
    assert sorted(set(header_names(seen))) == [
        "content-length",
        "content-type",
        "host",
        "x-forwarded-for",
        "x-forwarded-port",
        "x-forwarded-proto",
        "x-trace",
    ]


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_any_method_on_a_proxy_resource_reaches_the_upstream_path(live: Gateway, method: str) -> None:
    seen = received(call(live, method, "/svc/orders/a%20b/c?x=1&x=2"))

    assert (seen["method"], seen["path"], seen["query"]) == (method, "/svc/orders/a%20b/c", "x=1&x=2")


def test_head_request_gets_the_upstream_headers_without_a_body(live: Gateway) -> None:
    reply = call(live, "HEAD", "/svc/anything")

    assert reply.status == 200
    assert reply.header("X-Upstream") == "blue"
    assert reply.body == b""


def test_hop_by_hop_request_headers_are_not_forwarded(live: Gateway) -> None:
    seen = received(
        call(
            live,
            "GET",
            "/echo",
            headers=[
                ("Connection", "keep-alive, X-Hop-Secret"),
                ("X-Hop-Secret", "do-not-leak"),
                ("Keep-Alive", "timeout=5"),
                ("Proxy-Authorization", "Basic c2VjcmV0"),
                ("TE", "trailers"),
                ("X-End-To-End", "kept"),
            ],
        )
    )

    forwarded = header_names(seen)
    for hop in ("connection", "x-hop-secret", "keep-alive", "proxy-authorization", "te"):
        assert hop not in forwarded
    assert header_values(seen, "X-End-To-End") == ["kept"]


def test_forwarded_headers_name_the_client_and_the_gateway_port(live: Gateway) -> None:
    seen = received(call(live, "GET", "/echo", headers=[("X-Forwarded-For", "203.0.113.9")]))

    assert header_values(seen, "X-Forwarded-For") == ["203.0.113.9, 127.0.0.1"]
    assert header_values(seen, "X-Forwarded-Proto") == ["http"]
    assert header_values(seen, "X-Forwarded-Port") == [str(live.server.port)]


@pytest.mark.parametrize("code", [201, 404, 500])
def test_upstream_status_headers_and_body_come_back(live: Gateway, code: int) -> None:
    reply = call(live, "GET", f"/svc/status/{code}")

    assert reply.status == code
    assert reply.body == f"blue says {code}".encode()
    assert reply.header("X-Custom") == "yes"
    assert reply.all("Set-Cookie") == ["a=1", "b=2"]
    assert reply.header("x-amzn-Remapped-Server") == "upstream/1.0"
    assert reply.header("X-Hop-Secret") is None
    assert reply.header("Keep-Alive") is None


def test_gzip_body_comes_back_untouched(live: Gateway) -> None:
    reply = call(live, "GET", "/svc/gzip", headers=[("Accept-Encoding", "gzip")])

    assert reply.status == 200
    assert reply.header("Content-Encoding") == "gzip"
    assert reply.body == gzip.compress(b"turnout " * 1000, mtime=0)


def test_upstream_redirect_is_passed_on_not_followed(live: Gateway) -> None:
    reply = call(live, "GET", "/svc/redirect")

    assert reply.status == 302
    assert reply.header("Location") == "/svc/elsewhere"


def test_five_megabyte_body_round_trips(live: Gateway) -> None:
    payload = os.urandom(5 * 1024 * 1024)

    reply = call(live, "POST", "/svc/body", body=payload, timeout_seconds=30)

    assert reply.status == 200
    assert len(reply.body) == len(payload)
    assert hashlib.sha256(reply.body).digest() == hashlib.sha256(payload).digest()


def test_request_body_reaches_the_upstream_while_the_client_is_still_sending(
    apigw: Any, start_gateway: Callable[..., Gateway]
) -> None:
    signals = StreamSignals()
    upstream = serve_upstream("streaming", signals)
    try:
        api_id = create_api(apigw)
        deploy(apigw, api_id, at(upstream))
        gateway = start_gateway(api_id)
        waited: list[bool] = []

        def body() -> Iterator[bytes]:
            yield b"x" * 1024
            waited.append(signals.upstream_saw_first_chunk.wait(5))
            yield b"y" * 1024

        conn = http.client.HTTPConnection("127.0.0.1", gateway.server.port, timeout=10)
        conn.request("POST", "/svc/upload", body=body(), encode_chunked=True)
        reply = conn.getresponse()
        status, answer = reply.status, reply.read()
        conn.close()

        assert status == 200
        assert json.loads(answer) == {"bytes": 2048}
        assert waited == [True]
    finally:
        upstream.stop()


def test_response_reaches_the_client_while_the_upstream_is_still_sending(
    apigw: Any, start_gateway: Callable[..., Gateway]
) -> None:
    signals = StreamSignals()
    upstream = serve_upstream("streaming", signals)
    try:
        api_id = create_api(apigw)
        deploy(apigw, api_id, at(upstream))
        gateway = start_gateway(api_id)

        conn = http.client.HTTPConnection("127.0.0.1", gateway.server.port, timeout=10)
        conn.request("GET", "/svc/download")
        reply = conn.getresponse()
        first = reply.read(len(b"first;"))
        signals.client_saw_first_chunk.set()
        rest = reply.read()
        conn.close()

        assert (first, rest) == (b"first;", b"second")
        assert signals.upstream_waited_ok == [True]
    finally:
        upstream.stop()


def test_upstream_dying_mid_body_cuts_the_client_off_instead_of_ending_cleanly(
    live: Gateway,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", live.server.port, timeout=10)
    conn.request("GET", "/svc/die")
    reply = conn.getresponse()

    assert reply.status == 200
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        reply.read()
    conn.close()
    assert received(call(live, "GET", "/echo"))["upstream"] == "blue"


# --- API Gateway's own answers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target"),
    [("GET", "/nowhere"), ("DELETE", "/echo"), ("GET", "/svc"), ("GET", "/echo/deeper")],
)
def test_unknown_path_or_method_gets_missing_authentication_token(
    live: Gateway, method: str, target: str
) -> None:
    reply = call(live, method, target)

    assert reply.status == 403
    assert reply.body == b'{"message":"Missing Authentication Token"}'
    assert reply.header("Content-Type") == "application/json"
    assert reply.header("x-amzn-ErrorType") == "MissingAuthenticationTokenException"


def test_nothing_is_served_before_the_first_deployment(
    apigw: Any, start_gateway: Callable[..., Gateway]
) -> None:
    gateway = start_gateway(create_api(apigw))

    reply = call(gateway, "GET", "/echo")

    assert reply.status == 403
    assert reply.json() == {"message": "Missing Authentication Token"}


def test_undefined_stage_variable_gives_internal_server_error(live: Gateway) -> None:
    reply = call(live, "GET", "/broken")

    assert reply.status == 500
    assert reply.json() == {"message": "Internal server error"}


def test_refused_upstream_connection_gives_502(apigw: Any, start_gateway: Callable[..., Gateway]) -> None:
    api_id = create_api(apigw)
    deploy(apigw, api_id, f"127.0.0.1:{free_port()}")
    gateway = start_gateway(api_id)

    reply = call(gateway, "GET", "/echo")

    assert reply.status == 502
    assert reply.json() == {"message": "Internal server error"}


def test_upstream_slower_than_the_integration_timeout_gives_504(live: Gateway) -> None:
    started = time.monotonic()
    reply = call(live, "GET", "/slow")
    elapsed = time.monotonic() - started

    assert reply.status == 504
    assert reply.json() == {"message": "Endpoint request timed out"}
    assert SLOW_TIMEOUT_MS / 1000 <= elapsed < SLOW_UPSTREAM_SECONDS - 0.5


def test_every_response_carries_its_own_request_id(live: Gateway) -> None:
    replies = [call(live, "GET", "/echo"), call(live, "GET", "/nowhere"), call(live, "GET", "/broken")]

    ids = [reply.header("x-amzn-RequestId") for reply in replies]
    assert all(ids) and len(set(ids)) == 3


def test_gateway_on_a_port_already_in_use_fails_to_start(aws: AwsEndpoint, blue: ServerThread) -> None:
    source = ConfigSource(apigateway_client(aws.url, region=aws.region), rest_api_id="none", stage_name=STAGE)
    gateway = LocalGateway(source, port=blue.port)

    with pytest.raises(OSError):
        gateway.start()
    gateway.stop()


def test_health_reports_the_served_routes(
    apigw: Any, live: Gateway, start_gateway: Callable[..., Gateway]
) -> None:
    undeployed = start_gateway(create_api(apigw))

    assert call(live, "GET", "/__turnout/health").json() == {"status": "ok", "routes": 5}
    assert call(undeployed, "GET", "/__turnout/health").json() == {"status": "ok", "routes": 0}


def test_one_json_access_log_line_per_request(
    live: Gateway, blue: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="turnout.gateway.access"):
        call(live, "GET", "/svc/status/201?token=secret")
        call(live, "GET", "/nowhere")

    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "turnout.gateway.access"]
    assert [(line["method"], line["path"], line["resource"], line["status"]) for line in lines] == [
        ("GET", "/svc/status/201", "/svc/{proxy+}", 201),
        ("GET", "/nowhere", None, 403),
    ]
    assert lines[0]["upstream_host"] == at(blue)
    assert lines[1]["upstream_host"] is None
    assert all(line["latency_ms"] >= 0 and line["time"].endswith("+00:00") for line in lines)
    assert "secret" not in caplog.text


# --- configuration changes ---------------------------------------------------------------------


def test_stage_variable_change_moves_traffic_after_refresh_now(
    apigw: Any, live: Gateway, green: ServerThread
) -> None:
    assert received(call(live, "GET", "/echo"))["upstream"] == "blue"

    switch_upstream(apigw, live.source.current.rest_api_id, at(green))
    assert live.source.refresh_now() is True

    assert received(call(live, "GET", "/echo"))["upstream"] == "green"
    assert received(call(live, "GET", "/svc/x"))["upstream"] == "green"


def test_a_method_changed_without_a_deployment_is_served_only_once_deployed(
    apigw: Any, live: Gateway, blue: ServerThread, green: ServerThread
) -> None:
    api_id = live.source.current.rest_api_id
    echo = next(r["id"] for r in apigw.get_resources(restApiId=api_id)["items"]
                if r["path"] == "/echo")
    http_proxy(apigw, api_id, echo, "GET", f"http://{at(green)}/echo", PROXY_TIMEOUT_MS)
    assert live.source.refresh_now() is True
    assert received(call(live, "GET", "/echo"))["upstream"] == "blue"  # as API Gateway: not live

    apigw.create_deployment(restApiId=api_id, stageName=STAGE, variables={"svc": at(blue)})
    assert live.source.refresh_now() is True
    assert received(call(live, "GET", "/echo"))["upstream"] == "green"


def test_stage_variable_change_moves_traffic_within_two_seconds_on_its_own(
    apigw: Any, blue: ServerThread, green: ServerThread, start_gateway: Callable[..., Gateway]
) -> None:
    api_id = create_api(apigw)
    deploy(apigw, api_id, at(blue))
    gateway = start_gateway(api_id, refresh_interval_seconds=1.0)
    assert received(call(gateway, "GET", "/echo"))["upstream"] == "blue"

    switch_upstream(apigw, api_id, at(green))
    switched_at = time.monotonic()
    while received(call(gateway, "GET", "/echo"))["upstream"] != "green":
        assert time.monotonic() - switched_at < 2.0, "still on blue after 2 s"
        time.sleep(0.05)


def test_gateway_keeps_the_last_good_config_while_the_aws_endpoint_fails(
    aws: AwsEndpoint,
    apigw: Any,
    blue: ServerThread,
    green: ServerThread,
    start_gateway: Callable[..., Gateway],
) -> None:
    client = apigateway_client(aws.url, region=aws.region)
    endpoint_down = threading.Event()

    def fail_while_down(**_kwargs: Any) -> None:
        if endpoint_down.is_set():
            raise EndpointConnectionError(endpoint_url=aws.url)

    client.meta.events.register("before-send.apigateway", fail_while_down)
    api_id = create_api(apigw)
    deploy(apigw, api_id, at(blue))
    gateway = start_gateway(api_id, client=client)

    endpoint_down.set()
    switch_upstream(apigw, api_id, at(green))
    assert gateway.source.refresh_now() is False
    assert received(call(gateway, "GET", "/echo"))["upstream"] == "blue"
    assert call(gateway, "GET", "/__turnout/health").json()["routes"] == 5

    endpoint_down.clear()
    assert gateway.source.refresh_now() is True
    assert received(call(gateway, "GET", "/echo"))["upstream"] == "green"
