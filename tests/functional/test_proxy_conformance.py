"""Conformance against a real third-party HTTP service: httpbin (from PyPI) served on 127.0.0.1,
called through the local gateway by a ``proxy`` route (API Gateway -> data-plane function ->
httpbin) and, for comparison, by a ``direct`` route (API Gateway ``HTTP_PROXY`` -> httpbin).

httpbin is mounted twice, under ``/px`` and ``/dx``, so each route's path reaches it, beside a
small streaming service (``/px/bulk``, ``/dx/bulk``) for bodies too large to echo. The stage is
written the way the reconciler writes it, on an API whose ``binaryMediaTypes`` is ``*/*`` as in
the template; the data-plane function is the real one, run by the local cloud from its Lambda
configuration, reading the proxy route from the routes table.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import io
import json
import logging
import threading
import time
import tracemalloc
import zipfile
from collections.abc import Iterable, Iterator

import pytest
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server

from control_plane.cli.up import InProcessLambda
from data_plane.gateway_config import ConfigSource, apigateway_client
from data_plane.local_gateway import LocalGateway
from local_cloud.runtime import LocalCloud
from tests.conftest import AwsEndpoint
from tests.functional.bulk_service import bulk_service
from tests.functional.gateway_client import call, values
from tests.functional.test_proxy_support import (
    ROUTES_TABLE,
    STATE_TABLE,
    create_tables,
    proxy_route,
    put_route,
)

STAGE = "live"
TIMEOUT_MS = 2000
MODES = ["px", "dx"]  # proxy route, direct route
MB = 1024 * 1024
PIECE = 64 * 1024




def pattern(size: int) -> Iterator[bytes]:
    """``size`` bytes of a fixed pattern, a piece at a time."""
    piece = bytes(range(256)) * (PIECE // 256)
    sent = 0
    while sent < size:
        part = piece[: min(PIECE, size - sent)]
        sent += len(part)
        yield part


def pattern_digest(size: int) -> str:
    digest = hashlib.sha256()
    for part in pattern(size):
        digest.update(part)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def httpbin_url() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    import httpbin

    app = DispatcherMiddleware(NotFound(), {"/px": httpbin.app, "/dx": httpbin.app})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _data_plane_function(aws: AwsEndpoint) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "")
    role = aws.client("iam").create_role(RoleName="data-plane", AssumeRolePolicyDocument="{}")["Role"]
    return aws.client("lambda").create_function(
        FunctionName="turnout-data-plane", Runtime="python3.12", Role=role["Arn"],
        Handler="data_plane.proxy.handler.handler", Code={"ZipFile": buffer.getvalue()},
        Timeout=30, MemorySize=1024,
        Environment={"Variables": {"ROUTES_TABLE": ROUTES_TABLE, "STATE_TABLE": STATE_TABLE,
                                   "TURNOUT_ALLOW_LOOPBACK_UPSTREAMS": "true"}},
    )["FunctionArn"]


@pytest.fixture(scope="module")
def bulk_url() -> Iterator[str]:
    """The streaming service, in its own process so only the gateway's memory is measured."""
    with bulk_service() as url:
        yield url


@pytest.fixture(scope="module")
def gateway(aws_server: AwsEndpoint, httpbin_url: str, bulk_url: str) -> Iterator[LocalGateway]:
    aws = aws_server
    aws.reset()
    cloud = LocalCloud(template_path=None, emulator_url=aws.url)
    cloud.start()
    create_tables(aws)
    put_route(aws, proxy_route("bin", "/px/{proxy+}", httpbin_url,
                               methods=["ANY"], timeout_ms=TIMEOUT_MS))
    put_route(aws, proxy_route("bulk", "/pbulk/{proxy+}", bulk_url,
                               methods=["ANY"], timeout_ms=TIMEOUT_MS * 5))
    function_arn = _data_plane_function(aws)
    apigw = aws.client("apigateway")
    api = apigw.create_rest_api(name="turnout")["id"]
    apigw.update_rest_api(restApiId=api, patchOperations=[
        {"op": "add", "path": "/binaryMediaTypes/*~1*", "value": "*/*"}])
    root = apigw.get_resources(restApiId=api)["items"][0]["id"]
    timeouts = {"px": TIMEOUT_MS, "dx": TIMEOUT_MS, "pbulk": TIMEOUT_MS * 5, "dbulk": TIMEOUT_MS * 5}
    for prefix in timeouts:
        parent = apigw.create_resource(restApiId=api, parentId=root, pathPart=prefix)["id"]
        greedy = apigw.create_resource(restApiId=api, parentId=parent, pathPart="{proxy+}")["id"]
        apigw.put_method(restApiId=api, resourceId=greedy, httpMethod="ANY", authorizationType="NONE",
                         requestParameters={"method.request.path.proxy": True})
        if prefix in ("px", "pbulk"):
            apigw.put_integration(
                restApiId=api, resourceId=greedy, httpMethod="ANY", type="AWS_PROXY",
                integrationHttpMethod="POST", timeoutInMillis=timeouts[prefix],
                uri=f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{function_arn}"
                    "/invocations")
        else:
            apigw.put_integration(
                restApiId=api, resourceId=greedy, httpMethod="ANY", type="HTTP_PROXY",
                integrationHttpMethod="ANY", timeoutInMillis=timeouts[prefix],
                uri="http://${stageVariables.bulk}/{proxy}" if prefix == "dbulk"
                else "http://${stageVariables.bin}/dx/{proxy}",
                requestParameters={"integration.request.path.proxy": "method.request.path.proxy"})
    apigw.create_deployment(restApiId=api, stageName=STAGE,
                            variables={"bin": httpbin_url.removeprefix("http://"),
                                       "bulk": bulk_url.removeprefix("http://")})
    source = ConfigSource(apigateway_client(aws.url, region=aws.region), rest_api_id=api,
                          stage_name=STAGE, refresh_interval_seconds=60)
    source.start()
    # Functions are invoked in-process, as under `turnout up`: no emulator in the measured path.
    server = LocalGateway(source, port=0,
                          lambda_client_factory=lambda region: InProcessLambda(cloud.functions))
    server.start()
    assert call(server, "GET", "/px/get")[0] == 200  # warm the function once
    yield server
    server.stop()
    source.stop()
    cloud.stop()


def direct(url: str, target: str, **kwargs):
    """The same request sent to httpbin itself, for comparison."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    try:
        conn.request("GET", target, **kwargs)
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("code", [200, 201, 204, 400, 404, 418, 500, 503])
def test_status_codes_pass_through(gateway, mode, code):
    status, _, _ = call(gateway, "GET", f"/{mode}/status/{code}")
    assert status == code


@pytest.mark.parametrize("mode", MODES)
def test_repeated_response_headers_pass_through(gateway, mode):
    status, headers, _ = call(gateway, "GET", f"/{mode}/response-headers?X-Multi=a&X-Multi=b")
    assert status == 200
    assert values(headers, "X-Multi") == ["a", "b"]


@pytest.mark.parametrize("mode", MODES)
def test_repeated_query_keys_and_encoded_values_reach_the_service(gateway, mode):
    status, _, body = call(gateway, "GET", f"/{mode}/get?x=1&x=2&y=%C3%A9&plus=a+b",
                           headers=[("X-Custom", "kept")])
    assert status == 200
    seen = json.loads(body)
    assert seen["args"] == {"x": ["1", "2"], "y": "é", "plus": "a b"}
    assert seen["headers"]["X-Custom"] == "kept"


@pytest.mark.parametrize("mode", MODES)
def test_json_body_round_trips(gateway, mode):
    document = {"amount": 42, "currency": "EUR", "note": "café"}
    status, _, body = call(gateway, "POST", f"/{mode}/post",
                           headers=[("Content-Type", "application/json")],
                           body=json.dumps(document).encode())
    assert status == 200
    assert json.loads(body)["json"] == document


@pytest.mark.parametrize("mode", MODES)
def test_binary_upload_arrives_byte_for_byte(gateway, mode):
    raw = bytes(range(256)) * 4
    status, _, body = call(gateway, "POST", f"/{mode}/post",
                           headers=[("Content-Type", "application/octet-stream")], body=raw)
    assert status == 200
    data = json.loads(body)["data"]
    assert base64.b64decode(data.split("base64,", 1)[1]) == raw


@pytest.mark.parametrize("mode", MODES)
def test_binary_download_is_identical_to_calling_the_service(gateway, httpbin_url, mode):
    status, headers, body = call(gateway, "GET", f"/{mode}/bytes/4096?seed=7")
    assert status == 200
    assert body == direct(httpbin_url, f"/{mode}/bytes/4096?seed=7")[2]
    assert values(headers, "Content-Type") == ["application/octet-stream"]


@pytest.mark.parametrize("mode", MODES)
def test_gzip_body_stays_compressed(gateway, mode):
    status, headers, body = call(gateway, "GET", f"/{mode}/gzip", headers=[("Accept-Encoding", "gzip")])
    assert status == 200
    assert values(headers, "Content-Encoding") == ["gzip"]
    assert json.loads(gzip.decompress(body))["gzipped"] is True


@pytest.mark.parametrize("mode", MODES)
def test_redirects_are_returned_not_followed(gateway, mode):
    status, headers, _ = call(gateway, "GET", f"/{mode}/redirect-to?url=%2Fget&status_code=302")
    assert status == 302
    assert values(headers, "Location") == ["/get"]


@pytest.mark.parametrize("mode", MODES)
def test_head_answers_with_the_services_status_and_headers(gateway, mode):
    status, headers, _ = call(gateway, "HEAD", f"/{mode}/get")
    assert status == 200
    assert values(headers, "Content-Type") == ["application/json"]


@pytest.mark.parametrize("mode", MODES)
def test_response_slower_than_the_route_timeout_is_504(gateway, mode):
    status, _, _ = call(gateway, "GET", f"/{mode}/delay/4")
    assert status == 504


def exchange_all(gateway: LocalGateway, requests: Iterable[tuple[str, str]]):
    """Several requests on one kept-alive connection: a body sent where none belongs would
    corrupt the answer that follows it."""
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=20)
    answers = []
    try:
        for method, target in requests:
            conn.putrequest(method, target, skip_accept_encoding=True)
            conn.endheaders()
            response = conn.getresponse()
            answers.append((response.status, response.getheaders(), response.read()))
    finally:
        conn.close()
    return answers


@pytest.mark.parametrize("mode", MODES)
def test_chunked_answer_reaches_the_client_whole(gateway, httpbin_url, mode):
    target = f"/{mode}/stream-bytes/100000?chunk_size=4096&seed=11"
    status, headers, body = call(gateway, "GET", target)
    assert status == 200
    assert len(body) == 100_000
    assert body == direct(httpbin_url, target)[2]


@pytest.mark.parametrize("mode", MODES)
def test_chunked_json_lines_reach_the_client_whole(gateway, mode):
    status, _, body = call(gateway, "GET", f"/{mode}/stream/25")
    assert status == 200
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert [line["id"] for line in lines] == list(range(25))


@pytest.mark.parametrize("mode", MODES)
def test_head_and_bodiless_statuses_send_no_body(gateway, mode):
    answers = exchange_all(gateway, [("HEAD", f"/{mode}/get"), ("GET", f"/{mode}/status/204"),
                                     ("GET", f"/{mode}/status/304"), ("GET", f"/{mode}/get?after=1")])
    assert [status for status, _, _ in answers] == [200, 204, 304, 200]
    assert [body for _, _, body in answers[:3]] == [b"", b"", b""]
    assert json.loads(answers[3][2])["args"] == {"after": "1"}  # the connection stayed in step


# ---- large bodies --------------------------------------------------------------------------
#
# Memory is measured half-way through a transfer, after a pause in which a gateway that buffers
# would have read ahead: what this process then holds on top of what it held before is what the
# gateway keeps of the body. Allocations of the in-process werkzeug servers (the emulator drains
# each finished request into a fresh 10 MB buffer) are left out.

OTHER_SERVERS = [tracemalloc.Filter(False, "*/werkzeug/*", all_frames=True)]


class HeldMemory:
    """What this process holds on top of a baseline, as traced by tracemalloc."""

    def __enter__(self) -> HeldMemory:
        tracemalloc.start(40)
        self._baseline = tracemalloc.take_snapshot().filter_traces(OTHER_SERVERS)
        self.midway = 0
        return self

    def measure(self) -> None:
        time.sleep(0.3)  # room for a gateway that buffers to read ahead
        now = tracemalloc.take_snapshot().filter_traces(OTHER_SERVERS)
        self.midway = sum(stat.size_diff for stat in now.compare_to(self._baseline, "filename"))

    def __exit__(self, *exc_info: object) -> None:
        tracemalloc.stop()


def send_streamed(gateway: LocalGateway, method: str, target: str, size: int,
                  midway: HeldMemory | None = None):
    """Send ``size`` pattern bytes a piece at a time; read the answer a piece at a time."""
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=60)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        conn.putheader("Content-Type", "application/octet-stream")
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        sent = 0
        for part in pattern(size):
            conn.send(part)
            sent += len(part)
            if midway is not None and sent == size // 2:
                midway.measure()
        return read_streamed(conn.getresponse())
    finally:
        conn.close()


def get_streamed(gateway: LocalGateway, target: str, midway: HeldMemory | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=60)
    try:
        conn.putrequest("GET", target, skip_accept_encoding=True)
        conn.endheaders()
        return read_streamed(conn.getresponse(), midway)
    finally:
        conn.close()


def read_streamed(response: http.client.HTTPResponse, midway: HeldMemory | None = None):
    digest, size, first = hashlib.sha256(), 0, b""
    while piece := response.read(PIECE):
        first = first or piece[:200]
        digest.update(piece)
        size += len(piece)
        if midway is not None and size == 5 * MB:
            midway.measure()
    return response.status, size, digest.hexdigest(), first


def test_ten_megabyte_upload_streams_through_a_direct_route_without_being_held(gateway):
    with HeldMemory() as held:
        status, _, _, body = send_streamed(gateway, "POST", "/dbulk/sink", 10 * MB, held)
    assert status == 200
    assert json.loads(body) == {"size": 10 * MB, "sha256": pattern_digest(10 * MB)}
    assert held.midway < 2 * MB, f"{held.midway / MB:.1f} MB held half-way through a 10 MB upload"


def test_ten_megabyte_chunked_download_streams_through_a_direct_route_without_being_held(gateway):
    with HeldMemory() as held:
        status, size, digest, _ = get_streamed(gateway, f"/dbulk/source/{10 * MB}", held)
    assert (status, size, digest) == (200, 10 * MB, pattern_digest(10 * MB))
    assert held.midway < 2 * MB, f"{held.midway / MB:.1f} MB held half-way through a 10 MB download"


def test_upload_larger_than_a_lambda_event_is_refused_413(gateway):
    status, _, _, body = send_streamed(gateway, "POST", "/pbulk/sink", 10 * MB)
    assert status == 413
    assert json.loads(body) == {"message": "Request Too Long"}


@pytest.mark.parametrize("length", [False, True])
def test_answer_larger_than_a_lambda_result_is_502_with_a_clear_message(gateway, length):
    target = f"/pbulk/source/{10 * MB}" + ("?length=1" if length else "")
    status, _, _, body = get_streamed(gateway, target)
    assert status == 502
    assert json.loads(body) == {"message": "Response payload too large"}


def test_four_megabyte_bodies_pass_a_proxy_route_intact(gateway):
    status, _, _, body = send_streamed(gateway, "POST", "/pbulk/sink", 4 * MB)
    assert status == 200
    assert json.loads(body) == {"size": 4 * MB, "sha256": pattern_digest(4 * MB)}
    assert get_streamed(gateway, f"/pbulk/source/{4 * MB}")[:3] == (200, 4 * MB, pattern_digest(4 * MB))
