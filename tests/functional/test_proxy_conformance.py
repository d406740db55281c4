"""Conformance against a real third-party HTTP service: httpbin (from PyPI) served on 127.0.0.1,
called through the local gateway by a ``proxy`` route (API Gateway -> data-plane function ->
httpbin) and, for comparison, by a ``direct`` route (API Gateway ``HTTP_PROXY`` -> httpbin).

httpbin is mounted twice, under ``/px`` and ``/dx``, so each route's path reaches it. The stage
is written the way the reconciler writes it; the data-plane function is the real one, run by
the local cloud from its Lambda configuration, reading the proxy route from the routes table.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import io
import json
import logging
import threading
import zipfile
from collections.abc import Iterator

import pytest
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server

from data_plane.gateway_config import ConfigSource, apigateway_client
from data_plane.local_gateway import LocalGateway
from local_cloud.runtime import LocalCloud
from tests.conftest import AwsEndpoint
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
def gateway(aws_server: AwsEndpoint, httpbin_url: str) -> Iterator[LocalGateway]:
    aws = aws_server
    aws.reset()
    cloud = LocalCloud(template_path=None, emulator_url=aws.url)
    cloud.start()
    create_tables(aws)
    put_route(aws, proxy_route("bin", "/px/{proxy+}", httpbin_url,
                               methods=["ANY"], timeout_ms=TIMEOUT_MS))
    function_arn = _data_plane_function(aws)
    apigw = aws.client("apigateway")
    api = apigw.create_rest_api(name="turnout")["id"]
    root = apigw.get_resources(restApiId=api)["items"][0]["id"]
    for prefix in MODES:
        parent = apigw.create_resource(restApiId=api, parentId=root, pathPart=prefix)["id"]
        greedy = apigw.create_resource(restApiId=api, parentId=parent, pathPart="{proxy+}")["id"]
        apigw.put_method(restApiId=api, resourceId=greedy, httpMethod="ANY", authorizationType="NONE",
                         requestParameters={"method.request.path.proxy": True})
        if prefix == "px":
            apigw.put_integration(
                restApiId=api, resourceId=greedy, httpMethod="ANY", type="AWS_PROXY",
                integrationHttpMethod="POST", timeoutInMillis=TIMEOUT_MS,
                uri=f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{function_arn}"
                    "/invocations")
        else:
            apigw.put_integration(
                restApiId=api, resourceId=greedy, httpMethod="ANY", type="HTTP_PROXY",
                integrationHttpMethod="ANY", timeoutInMillis=TIMEOUT_MS,
                uri="http://${stageVariables.bin}/dx/{proxy}",
                requestParameters={"integration.request.path.proxy": "method.request.path.proxy"})
    apigw.create_deployment(restApiId=api, stageName=STAGE,
                            variables={"bin": httpbin_url.removeprefix("http://")})
    source = ConfigSource(apigateway_client(aws.url, region=aws.region), rest_api_id=api,
                          stage_name=STAGE, refresh_interval_seconds=60)
    source.start()
    server = LocalGateway(source, port=0)
    server.start()
    assert call(server, "GET", "/px/get")[0] == 200  # warm the function once
    yield server
    server.stop()
    source.stop()
    cloud.stop()


def call(gateway: LocalGateway, method: str, target: str, *, headers=(), body: bytes | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=20)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


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


def values(headers, name: str) -> list[str]:
    return [v for k, v in headers if k.lower() == name.lower()]


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
