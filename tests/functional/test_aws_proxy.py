"""The local gateway's ``AWS_PROXY`` integration: a real API Gateway proxy event goes to the
function through the Lambda Invoke API of the embedded AWS endpoint, and the function's proxy
result comes back to the client, as API Gateway does it.

The local cloud (attached to the session's endpoint) runs the functions below in this process;
the REST API is written with boto3 the way the reconciler writes a proxy route.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from data_plane.gateway_config import ConfigSource, apigateway_client
from data_plane.local_gateway import LocalGateway
from local_cloud.runtime import LocalCloud
from tests.conftest import AwsEndpoint
from tests.functional.gateway_client import call as gateway_call
from tests.functional.gateway_client import values

call = functools.partial(gateway_call, timeout=15)

STAGE = "live"
HERE = __name__
BINARY_MEDIA_TYPES = ["image/*", "application/octet-stream"]


# ---- the functions API Gateway invokes -----------------------------------------------------


def echo_event(event: dict, context: Any) -> dict:
    """Answer with the event received, as JSON."""
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(event)}


def binary_answer(event: dict, context: Any) -> dict:
    return {
        "statusCode": 201,
        "headers": {"X-Single": "one", "Set-Cookie": "a=1"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "Content-Type": ["image/png"]},
        "body": base64.b64encode(bytes(range(256))).decode(),
        "isBase64Encoded": True,
    }


def mirror(event: dict, context: Any) -> dict:
    """Answer with the request body, as the function received it, and its Content-Type."""
    headers = event.get("headers") or {}
    return {"statusCode": 200, "headers": {"Content-Type": headers.get("Content-Type", "text/plain")},
            "body": event["body"], "isBase64Encoded": event["isBase64Encoded"]}


def status_with_body(event: dict, context: Any) -> dict:
    """Answer with the status the query names, always with a body."""
    code = int((event.get("queryStringParameters") or {}).get("code", "200"))
    return {"statusCode": code, "headers": {"Content-Type": "text/plain", "ETag": '"v1"'},
            "body": "a body the client must not see for HEAD, 204 or 304"}


def no_status(event: dict, context: Any) -> dict:
    return {"body": "where is my status code?"}


def object_body(event: dict, context: Any) -> dict:
    return {"statusCode": 200, "body": {"not": "a string"}}


def not_an_object(event: dict, context: Any) -> str:
    return "hello"


def crash(event: dict, context: Any) -> dict:
    raise RuntimeError("the function broke")


def slow(event: dict, context: Any) -> dict:
    time.sleep(2)
    return {"statusCode": 200, "body": "too late"}


# ---- the stage -----------------------------------------------------------------------------


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "")
    return buffer.getvalue()


def create_function(aws: AwsEndpoint, name: str) -> str:
    iam = aws.client("iam")
    try:
        role = iam.get_role(RoleName="proxy-test")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="proxy-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    return aws.client("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler=f"{HERE}.{name}",
        Code={"ZipFile": _zip()}, Timeout=10,
    )["FunctionArn"]


def lambda_uri(function_arn: str) -> str:
    return f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{function_arn}/invocations"


@pytest.fixture(scope="module")
def aws_once(aws_server: AwsEndpoint) -> AwsEndpoint:
    """The embedded AWS endpoint, reset once for this module's stage (the tests only read it)."""
    aws_server.reset()
    return aws_server


@pytest.fixture(scope="module")
def cloud(aws_once: AwsEndpoint) -> Iterator[LocalCloud]:
    local = LocalCloud(template_path=None, emulator_url=aws_once.url)
    local.start()
    yield local
    local.stop()


@pytest.fixture(scope="module")
def gateway(aws_once: AwsEndpoint, cloud: LocalCloud) -> Iterator[LocalGateway]:
    aws = aws_once
    apigw = aws.client("apigateway")
    api = apigw.create_rest_api(name="turnout")["id"]
    apigw.update_rest_api(restApiId=api, patchOperations=[
        {"op": "add", "path": "/binaryMediaTypes/" + media.replace("/", "~1"), "value": media}
        for media in BINARY_MEDIA_TYPES])
    root = apigw.get_resources(restApiId=api)["items"][0]["id"]

    def method(path_part: str, function: str | None, *, parent: str = root, http_method: str = "GET",
               timeout_ms: int = 29000, key: bool = False, arn: str | None = None) -> str:
        resource = apigw.create_resource(restApiId=api, parentId=parent, pathPart=path_part)["id"]
        apigw.put_method(restApiId=api, resourceId=resource, httpMethod=http_method,
                         authorizationType="NONE", apiKeyRequired=key)
        apigw.put_integration(restApiId=api, resourceId=resource, httpMethod=http_method,
                              type="AWS_PROXY", integrationHttpMethod="POST",
                              uri=lambda_uri(arn or create_function(aws, function)),
                              timeoutInMillis=timeout_ms)
        return resource

    echo = apigw.create_resource(restApiId=api, parentId=root, pathPart="echo")["id"]
    echo_arn = create_function(aws, "echo_event")
    method("{proxy+}", None, parent=echo, http_method="ANY", arn=echo_arn)
    method("keyed", None, key=True, arn=echo_arn)
    method("binary", "binary_answer")
    method("mirror", "mirror", http_method="ANY")
    method("status", "status_with_body", http_method="ANY")
    for name in ("no_status", "object_body", "not_an_object", "crash"):
        method(name, name)
    method("slow", "slow", timeout_ms=500)
    method("missing", None, arn="arn:aws:lambda:us-east-1:123456789012:function:nobody")
    apigw.create_deployment(restApiId=api, stageName=STAGE, variables={"color": "blue"})
    key = apigw.create_api_key(name="consumer", value="consumer-key-0123456789", enabled=True)
    plan = apigw.create_usage_plan(name="plan", apiStages=[{"apiId": api, "stage": STAGE}])
    apigw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")

    source = ConfigSource(apigateway_client(aws.url, region=aws.region), rest_api_id=api,
                          stage_name=STAGE, refresh_interval_seconds=60)
    source.start()
    server = LocalGateway(source, port=0)
    server.start()
    yield server
    server.stop()
    source.stop()


# ---- tests ---------------------------------------------------------------------------------


def test_function_receives_a_rest_proxy_event_in_api_gateways_shape(gateway):
    status, _, body = call(gateway, "POST", "/echo/a%2Bb/deep/?x=1&x=2&y=%C3%A9&plus=a+b",
                           headers=[("Content-Type", "application/json"), ("X-Rep", "1"),
                                    ("X-Rep", "2"), ("Connection", "keep-alive"),
                                    ("User-Agent", "tester/1")],
                           body=b'{"hello": "world"}')
    assert status == 200
    event = json.loads(body)
    assert event["resource"] == "/echo/{proxy+}"
    assert event["path"] == "/echo/a%2Bb/deep/"
    assert event["httpMethod"] == "POST"
    assert event["pathParameters"] == {"proxy": "a%2Bb/deep"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": ["é"], "plus": ["a b"]}
    assert event["queryStringParameters"] == {"x": "2", "y": "é", "plus": "a b"}
    assert event["multiValueHeaders"]["X-Rep"] == ["1", "2"]
    assert event["headers"]["X-Rep"] == "2"
    assert "Connection" not in event["headers"]
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert event["stageVariables"] == {"color": "blue"}
    assert event["body"] == '{"hello": "world"}'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"] == "tester/1"
    assert context["stage"] == STAGE
    assert context["resourcePath"] == "/echo/{proxy+}"
    assert context["httpMethod"] == "POST"
    assert context["path"] == "/live/echo/a%2Bb/deep/"
    assert context["accountId"] == "123456789012"
    assert isinstance(context["requestTimeEpoch"], int)
    for field in ("apiId", "requestId", "resourceId", "requestTime", "protocol"):
        assert context[field], field


def test_request_without_query_or_body_has_null_fields(gateway):
    event = json.loads(call(gateway, "GET", "/echo/x")[2])
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["body"] is None


def test_binary_request_body_reaches_the_function_base64(gateway):
    raw = bytes(range(256))
    event = json.loads(call(gateway, "PUT", "/echo/upload", body=raw,
                            headers=[("Content-Type", "application/octet-stream")])[2])
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


def test_api_key_the_client_used_is_in_the_event(gateway):
    status, _, body = call(gateway, "GET", "/keyed", headers=[("x-api-key", "consumer-key-0123456789")])
    assert status == 200
    assert json.loads(body)["requestContext"]["identity"]["apiKey"] == "consumer-key-0123456789"


def test_base64_result_is_sent_as_bytes_with_every_header_value(gateway):
    status, headers, body = call(gateway, "GET", "/binary", headers=[("Accept", "image/png")])
    assert status == 201
    assert body == bytes(range(256))
    assert values(headers, "Set-Cookie") == ["a=1", "b=2"]
    assert values(headers, "X-Single") == ["one"]
    assert values(headers, "Content-Type") == ["image/png"]
    assert values(headers, "x-amzn-RequestId")


@pytest.mark.parametrize("path", ["/no_status", "/object_body", "/not_an_object", "/crash"])
def test_malformed_result_or_function_error_is_502_as_api_gateway_answers(gateway, path):
    status, headers, body = call(gateway, "GET", path)
    assert status == 502
    assert json.loads(body) == {"message": "Internal server error"}
    assert b"the function broke" not in body


def test_function_slower_than_the_integration_timeout_is_504(gateway):
    status, _, body = call(gateway, "GET", "/slow")
    assert status == 504
    assert json.loads(body) == {"message": "Endpoint request timed out"}


def test_function_that_does_not_exist_is_500(gateway):
    status, _, body = call(gateway, "GET", "/missing")
    assert status == 500
    assert json.loads(body) == {"message": "Internal server error"}


# ---- binaryMediaTypes ----------------------------------------------------------------------


def png_like(size: int = 4096) -> bytes:
    """A PNG signature followed by random bytes: not UTF-8, NULs included."""
    return b"\x89PNG\r\n\x1a\n" + os.urandom(size)


def test_png_bytes_round_trip_through_a_function_when_binary_media_types_cover_them(gateway):
    raw = png_like()
    status, headers, body = call(gateway, "PUT", "/mirror", body=raw,
                                 headers=[("Content-Type", "image/png"), ("Accept", "image/png")])
    assert status == 200
    assert body == raw
    assert values(headers, "Content-Type") == ["image/png"]


def test_request_body_of_a_type_not_in_binary_media_types_reaches_the_function_as_text(gateway):
    event = json.loads(call(gateway, "POST", "/echo/x", body="héllo wörld".encode(),
                            headers=[("Content-Type", "text/plain; charset=utf-8")])[2])
    assert event["isBase64Encoded"] is False
    assert event["body"] == "héllo wörld"


def test_binary_body_of_a_type_not_in_binary_media_types_does_not_survive_as_on_api_gateway(gateway):
    raw = png_like(64)
    event = json.loads(call(gateway, "POST", "/echo/x", body=raw,
                            headers=[("Content-Type", "text/plain")])[2])
    assert event["isBase64Encoded"] is False
    assert event["body"].encode("utf-8") != raw


def test_base64_result_reaches_a_client_whose_first_accepted_type_is_not_binary_as_base64_text(gateway):
    status, _, body = call(gateway, "GET", "/binary",
                           headers=[("Accept", "application/json, image/png")])
    assert status == 201
    assert body == base64.b64encode(bytes(range(256)))


def test_base64_result_reaches_a_client_that_accepts_any_type_as_base64_text_unless_listed(gateway):
    # Only a `*/*` entry covers `Accept: */*` (or no Accept at all); this API lists image/* only.
    assert call(gateway, "GET", "/binary", headers=[("Accept", "*/*")])[2] == base64.b64encode(
        bytes(range(256)))
    assert call(gateway, "GET", "/binary")[2] == base64.b64encode(bytes(range(256)))


# ---- HEAD and statuses without a body ------------------------------------------------------


@pytest.mark.parametrize(("method", "code"), [("HEAD", 200), ("GET", 204), ("GET", 304)])
def test_answers_that_carry_no_body_reach_the_client_without_one(gateway, method, code):
    status, headers, body = call(gateway, method, f"/status?code={code}")
    assert status == code
    assert body == b""
    assert values(headers, "ETag") == ['"v1"']


@pytest.mark.parametrize("code", [201, 202, 301, 400, 404, 409, 418, 429, 500, 503])
def test_function_status_codes_reach_the_client(gateway, code):
    status, _, body = call(gateway, "GET", f"/status?code={code}")
    assert status == code
    assert body == b"a body the client must not see for HEAD, 204 or 304"
