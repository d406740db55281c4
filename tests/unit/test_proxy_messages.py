"""What goes in and out of the data-plane function: events, upstream headers, proxy results."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from data_plane.aws_proxy import (
    ClientRequest,
    lambda_target,
    proxy_event,
    raw_path_parameters,
    response_from_result,
)
from data_plane.gateway_config import GatewayConfig
from data_plane.proxy.forwarder import upstream_url
from data_plane.proxy.proxy_event import InvalidEventError, read_event
from data_plane.proxy.proxy_result import (
    MAX_PAYLOAD_BYTES,
    bad_gateway,
    gateway_timeout,
    proxy_result,
)
from data_plane.proxy.request_headers import upstream_headers
from data_plane.routing import RoutingTable

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:turnout-data-plane"
URI = f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{FUNCTION}/invocations"


def values(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


# ---- the event, read by the function ---------------------------------------------------------


def test_multi_value_headers_and_query_win_over_the_single_value_maps():
    request = read_event({
        "resource": "/svc/{proxy+}", "path": "/svc/a%2Fb", "httpMethod": "get",
        "headers": {"Accept": "b"}, "multiValueHeaders": {"Accept": ["a", "b"]},
        "queryStringParameters": {"x": "2"}, "multiValueQueryStringParameters": {"x": ["1", "2"]},
        "requestContext": {"identity": {"sourceIp": "203.0.113.9"}, "requestId": "r-1"},
        "body": None, "isBase64Encoded": False,
    })
    assert request.method == "GET"
    assert request.path == "/svc/a%2Fb"
    assert request.headers == (("Accept", "a"), ("Accept", "b"))
    assert request.query == (("x", "1"), ("x", "2"))
    assert request.body == b""
    assert request.source_ip == "203.0.113.9"


def test_single_value_maps_are_used_when_there_is_no_multi_value_map():
    request = read_event({"resource": "/a", "path": "/a", "httpMethod": "POST",
                          "headers": {"X-One": "1"}, "queryStringParameters": {"q": "v"},
                          "body": "text", "isBase64Encoded": False})
    assert request.headers == (("X-One", "1"),)
    assert request.query == (("q", "v"),)
    assert request.body == b"text"


def test_base64_body_is_decoded_to_the_exact_bytes():
    raw = bytes(range(256))
    request = read_event({"resource": "/a", "path": "/a", "httpMethod": "PUT",
                          "body": base64.b64encode(raw).decode(), "isBase64Encoded": True})
    assert request.body == raw


@pytest.mark.parametrize("event", [
    None, [], {"path": "/a", "httpMethod": "GET"},
    {"resource": "/a", "path": "/a", "httpMethod": "GET", "body": "%%%", "isBase64Encoded": True},
    {"resource": "/a", "path": "/a", "httpMethod": "GET", "body": {"not": "a string"}},
])
def test_what_is_not_a_proxy_event_is_refused(event):
    with pytest.raises(InvalidEventError):
        read_event(event)


# ---- headers towards the upstream ------------------------------------------------------------


def test_hop_by_hop_api_key_host_and_length_are_dropped_and_forwarding_appended():
    sent = upstream_headers(
        [("Host", "abc.execute-api.example"), ("Connection", "keep-alive, X-Secret-Hop"),
         ("X-Secret-Hop", "1"), ("Keep-Alive", "timeout=5"), ("TE", "trailers"),
         ("Upgrade", "h2c"), ("x-api-key", "client-key"), ("Content-Length", "4"),
         ("X-Forwarded-For", "198.51.100.7"), ("X-Trace", "t"), ("X-Trace", "u")],
        upstream_authority="api.example:8443", source_ip="203.0.113.9",
    )
    assert values(sent, "host") == ["api.example:8443"]
    for dropped in ("connection", "x-secret-hop", "keep-alive", "te", "upgrade", "x-api-key",
                    "content-length"):
        assert values(sent, dropped) == [], dropped
    assert values(sent, "x-trace") == ["t", "u"]
    assert values(sent, "x-forwarded-for") == ["198.51.100.7, 203.0.113.9"]
    assert values(sent, "x-forwarded-proto") == ["https"]


def test_source_ip_already_appended_by_api_gateway_is_not_repeated():
    sent = upstream_headers([("X-Forwarded-For", "198.51.100.7, 203.0.113.9"),
                             ("X-Forwarded-Proto", "http")],
                            upstream_authority="u", source_ip="203.0.113.9")
    assert values(sent, "x-forwarded-for") == ["198.51.100.7, 203.0.113.9"]
    assert values(sent, "x-forwarded-proto") == ["http"]


def test_credential_replaces_any_client_header_of_that_name():
    sent = upstream_headers([("authorization", "Bearer from-client"), ("Accept", "*/*")],
                            upstream_authority="u", source_ip=None,
                            credential=("Authorization", "Bearer injected"))
    assert values(sent, "authorization") == ["Bearer injected"]


@pytest.mark.parametrize(("base", "path", "query", "url"), [
    ("https://api.example", "/svc/a", [], "https://api.example/svc/a"),
    ("https://api.example/v2/", "/svc/a", [], "https://api.example/v2/svc/a"),
    ("http://127.0.0.1:8080", "/svc/test%2Balias@x/é", [("q", "a b"), ("q", "é")],
     "http://127.0.0.1:8080/svc/test%2Balias@x/%C3%A9?q=a%20b&q=%C3%A9"),
])
def test_upstream_url_keeps_the_raw_path_and_encodes_the_decoded_query(base, path, query, url):
    assert upstream_url(base, path, query) == url


# ---- the function's result -------------------------------------------------------------------


def test_json_answer_goes_as_text_and_repeated_headers_as_multi_value():
    result = proxy_result(200, [("Content-Type", "application/json"), ("Set-Cookie", "a=1"),
                                ("Set-Cookie", "b=2"), ("Connection", "close"),
                                ("Content-Length", "7")], b'{"a":1}')
    assert result["isBase64Encoded"] is False
    assert result["body"] == '{"a":1}'
    assert result["multiValueHeaders"] == {"Content-Type": ["application/json"],
                                           "Set-Cookie": ["a=1", "b=2"]}
    assert result["headers"] == {"Content-Type": "application/json"}


@pytest.mark.parametrize(("headers", "body"), [
    ([("Content-Type", "image/png")], b"\x89PNG\r\n\x1a\n"),
    ([("Content-Type", "text/plain"), ("Content-Encoding", "gzip")], gzip.compress(b"hi", mtime=0)),
    ([("Content-Type", "text/plain")], b"\xff\xfe not utf-8"),
    ([], b"no content type"),
])
def test_binary_compressed_or_untyped_answers_go_base64_byte_for_byte(headers, body):
    result = proxy_result(200, headers, body)
    assert result["isBase64Encoded"] is True
    assert base64.b64decode(result["body"]) == body


def test_errors_say_nothing_about_why():
    assert (bad_gateway()["statusCode"], json.loads(bad_gateway()["body"])) == (
        502, {"message": "Bad Gateway"})
    assert (gateway_timeout()["statusCode"], json.loads(gateway_timeout()["body"])) == (
        504, {"message": "Gateway Timeout"})


# ---- the gateway's side: event out, result in ------------------------------------------------


def config(binary_media_types: tuple[str, ...] = ()) -> GatewayConfig:
    return GatewayConfig(rest_api_id="abc123", stage_name="live", deployment_id="d1",
                         stage_variables=MappingProxyType({}), routes=RoutingTable.empty(),
                         binary_media_types=binary_media_types)


def client(**overrides) -> ClientRequest:
    fields = dict(
        method="POST", raw_path="/svc/test%2Balias@x/deep/", raw_query="x=1&x=2&plus=a+b&e=%C3%A9",
        headers=[("Host", "127.0.0.1:8080"), ("User-Agent", "ua/1"), ("Connection", "keep-alive"),
                 ("Content-Type", "application/json"), ("Content-Length", "2"), ("X-Rep", "1"),
                 ("X-Rep", "2"), ("X-Forwarded-For", "198.51.100.7")],
        body=b"{}", source_ip="127.0.0.1", scheme="http", port=8080, request_id="req-1",
        received_at=datetime(2026, 12, 4, 20, 58, 50, 123000, tzinfo=UTC),
    )
    fields.update(overrides)
    return ClientRequest(**fields)


def test_proxy_event_has_api_gateways_shape():
    event = proxy_event(client(), resource_path="/svc/{proxy+}", config=config(),
                        target=lambda_target(URI))
    assert event["resource"] == "/svc/{proxy+}"
    assert event["path"] == "/svc/test%2Balias@x/deep/"
    assert event["httpMethod"] == "POST"
    assert event["multiValueHeaders"]["X-Rep"] == ["1", "2"]
    assert event["headers"]["X-Rep"] == "2"
    assert "Connection" not in event["headers"] and "Content-Length" not in event["headers"]
    assert event["headers"]["X-Forwarded-For"] == "198.51.100.7, 127.0.0.1"
    assert event["headers"]["X-Forwarded-Proto"] == "http"
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "plus": ["a b"], "e": ["é"]}
    assert event["queryStringParameters"] == {"x": "2", "plus": "a b", "e": "é"}
    assert event["pathParameters"] == {"proxy": "test%2Balias@x/deep"}
    assert event["stageVariables"] is None
    assert event["body"] == "{}" and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["accountId"] == "123456789012"
    assert context["apiId"] == "abc123"
    assert context["stage"] == "live"
    assert context["path"] == "/live/svc/test%2Balias@x/deep/"
    assert context["resourcePath"] == "/svc/{proxy+}"
    assert context["requestId"] == "req-1"
    assert context["requestTime"] == "04/Dec/2026:20:58:50 +0000"
    assert context["requestTimeEpoch"] == 1796417930123
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"] == "ua/1"
    assert "apiKey" not in context["identity"]


def test_proxy_event_without_query_or_body_has_nulls_and_carries_the_api_key_when_used():
    event = proxy_event(client(method="GET", raw_query="", body=b""), resource_path="/svc/{proxy+}",
                        config=config(), target=lambda_target(URI), api_key="k-value", api_key_id="k1")
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["body"] is None and event["isBase64Encoded"] is False
    assert event["requestContext"]["identity"]["apiKey"] == "k-value"
    assert event["requestContext"]["identity"]["apiKeyId"] == "k1"


def test_binary_request_body_goes_base64_when_the_api_lists_its_type():
    raw = bytes(range(256))
    event = proxy_event(client(headers=[("Content-Type", "application/octet-stream")], body=raw),
                        resource_path="/svc/{proxy+}", config=config(("*/*",)),
                        target=lambda_target(URI))
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


def test_request_body_goes_as_text_when_the_api_lists_no_binary_type():
    event = proxy_event(client(headers=[("Content-Type", "application/octet-stream")],
                               body="naïve".encode()),
                        resource_path="/svc/{proxy+}", config=config(), target=lambda_target(URI))
    assert event["isBase64Encoded"] is False
    assert event["body"] == "naïve"


def test_base64_result_stays_base64_text_when_the_client_does_not_accept_binary():
    body = base64.b64encode(b"\x00\x01").decode()
    payload = json.dumps({"statusCode": 200, "body": body, "isBase64Encoded": True}).encode()
    assert response_from_result(payload, decode_base64=False).body == body.encode()


@pytest.mark.parametrize(("resource", "path", "params"), [
    ("/orders/{id}", "/orders/a%20b", {"id": "a%20b"}),
    ("/orders/{id}/items/{item}", "/orders/1/items/2", {"id": "1", "item": "2"}),
    ("/static", "/static", None),
])
def test_path_parameters_stay_percent_encoded(resource, path, params):
    assert raw_path_parameters(resource, path) == params


def test_integration_uri_names_the_function_its_region_and_account():
    target = lambda_target(URI)
    assert (target.function_arn, target.region, target.account_id) == (
        FUNCTION, "us-east-1", "123456789012")
    assert lambda_target("http://example.com/x") is None


def test_result_headers_merge_and_base64_body_decodes():
    body = base64.b64encode(b"\x00\x01").decode()
    response = response_from_result(json.dumps({
        "statusCode": 201, "headers": {"X-One": "1", "Set-Cookie": "a=1"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]}, "body": body, "isBase64Encoded": True,
    }).encode())
    assert response.status == 201
    assert sorted(response.headers) == [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-One", "1")]
    assert response.body == b"\x00\x01"


@pytest.mark.parametrize("payload", [
    b"not json", b"[]", b'"a string"', b'{"body": "no status"}', b'{"statusCode": "abc"}',
    b'{"statusCode": 700}', b'{"statusCode": true}', b'{"statusCode": 200, "body": {"a": 1}}',
    b'{"statusCode": 200, "headers": ["x"]}', b'{"statusCode": 200, "multiValueHeaders": {"a": "b"}}',
    b'{"statusCode": 200, "body": "%%%", "isBase64Encoded": true}',
    b'{"statusCode": 200, "isBase64Encoded": "yes"}',
])
def test_malformed_results_are_recognised(payload):
    assert response_from_result(payload) is None


# ---- results that must fit Lambda's 6 MB payload ---------------------------------------------

JSON_TYPE = [("Content-Type", "application/json")]


def test_small_text_answer_goes_as_text():
    result = proxy_result(200, JSON_TYPE, b'{"a": 1}')
    assert result["isBase64Encoded"] is False


def test_text_answer_too_large_to_be_sure_of_its_escaped_size_goes_base64_and_fits():
    body = b'"' * (2 * 1024 * 1024)  # every quote is escaped: twice its size as JSON text
    result = proxy_result(200, JSON_TYPE, body)
    assert result["isBase64Encoded"] is True
    assert base64.b64decode(result["body"]) == body
    assert len(json.dumps(result)) <= MAX_PAYLOAD_BYTES


@pytest.mark.parametrize("size", [MAX_PAYLOAD_BYTES * 3 // 4 - 4096, 4 * 1024 * 1024])
def test_binary_answer_that_fits_base64_is_relayed_and_the_result_fits(size):
    result = proxy_result(200, [("Content-Type", "application/octet-stream")], bytes(size))
    assert result["statusCode"] == 200
    assert len(json.dumps(result)) <= MAX_PAYLOAD_BYTES


def test_answer_that_cannot_fit_becomes_502_with_a_clear_message():
    result = proxy_result(200, [("Content-Type", "application/octet-stream")],
                          bytes(MAX_PAYLOAD_BYTES * 3 // 4 + 1))
    assert (result["statusCode"], json.loads(result["body"])) == (
        502, {"message": "Response payload too large"})
