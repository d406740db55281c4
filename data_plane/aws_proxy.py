"""The ``AWS_PROXY`` integration: API Gateway's Lambda proxy, served by the local gateway.

Per request, as API Gateway does for a REST API:

1. build the proxy event, payload version 1.0 (:func:`proxy_event`): ``resource``, ``path``
   (the raw request path, still percent-encoded, without the stage), ``httpMethod``,
   ``headers`` (last value of each) and ``multiValueHeaders`` (all values), the query string
   decoded into ``queryStringParameters`` / ``multiValueQueryStringParameters``,
   ``pathParameters`` (raw, as matched), ``stageVariables``, ``requestContext`` (account,
   API, stage, resource, request id and time, ``identity.sourceIp`` from the socket, and
   ``identity.apiKey`` / ``apiKeyId`` when the method takes an API key), ``body`` and
   ``isBase64Encoded``. Empty maps and bodies are ``null``. Hop-by-hop headers and
   ``Content-Length`` are dropped; ``X-Forwarded-For`` (with the socket peer appended),
   ``X-Forwarded-Proto`` and ``X-Forwarded-Port`` are set. The body goes base64 when the
   request's ``Content-Type`` matches the API's ``binaryMediaTypes``, else as UTF-8 text
   (:mod:`data_plane.binary_media`);
2. invoke the function named in the integration URI (``arn:aws:apigateway:<region>:lambda:
   path/2015-03-31/functions/<function ARN>/invocations``) through the Lambda ``Invoke`` API
   of the AWS endpoint (``AWS_ENDPOINT_URL``; under ``turnout up`` the local cloud runs the
   handler in its process), on a worker thread so the event loop keeps serving;
3. map the result back (:func:`response_from_result`): ``statusCode``, ``headers`` merged with
   ``multiValueHeaders`` (a pair present in both is sent once), ``body`` decoded from base64
   when ``isBase64Encoded`` and the first type in the client's ``Accept`` matches the API's
   ``binaryMediaTypes`` (else the client gets the base64 text, as from API Gateway),
   ``Content-Type`` ``application/json`` when the result sets none. A ``HEAD`` answer and a
   ``1xx``, ``204`` or ``304`` one carry no body, whatever the result says.

Failures, as API Gateway reports them: a function error or a malformed result (not a JSON
object, no integer ``statusCode``, a body that is not a string...) is 502
``{"message": "Internal server error"}``; no result within the integration's
``timeoutInMillis`` is 504; a function that cannot be invoked (unknown, not permitted) is 500;
an event larger than Lambda's 6 MB payload limit is 413 ``{"message":"Request Too Long"}``
(the body is read into one buffer and reading stops at the limit: a 10 MB upload is refused
after 6 MB, never held whole).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import boto3
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from data_plane.access_log import Exchange
from data_plane.binary_media import request_is_binary, response_is_decoded
from data_plane.gateway_config import GatewayConfig, Integration, MethodConfig
from data_plane.gateway_responses import (
    INTEGRATION_FAILURE,
    INTEGRATION_TIMEOUT,
    INTERNAL_SERVER_ERROR,
    GatewayResponse,
)
from data_plane.headers import response_headers_for_client, strip_hop_by_hop
from data_plane.routing import Match

LOG = logging.getLogger("turnout.gateway")

Header = tuple[str, str]
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
"""Lambda's limit for a synchronous invocation's payload."""
REQUEST_TOO_LONG = GatewayResponse(413, b'{"message":"Request Too Long"}')

_LAMBDA_URI = re.compile(
    r"arn:aws[a-z-]*:apigateway:[a-z0-9-]+:lambda:path/2015-03-31/functions/"
    r"(?P<function>arn:aws[a-z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):function:[^/]+)"
    r"/invocations"
)
_DROPPED_REQUEST_HEADERS = frozenset({"content-length", "x-forwarded-for", "x-forwarded-proto",
                                      "x-forwarded-port"})
_IDENTITY_FIELDS = ("accessKey", "accountId", "caller", "cognitoAuthenticationProvider",
                    "cognitoAuthenticationType", "cognitoIdentityId", "cognitoIdentityPoolId",
                    "principalOrgId", "user", "userArn")


@dataclass(frozen=True)
class LambdaTarget:
    """The function an integration URI names."""

    function_arn: str
    region: str
    account_id: str


def lambda_target(uri: str) -> LambdaTarget | None:
    """The function of a Lambda proxy integration URI, or None when it names none."""
    match = _LAMBDA_URI.fullmatch(uri)
    if match is None:
        return None
    return LambdaTarget(match["function"], match["region"], match["account"])


@dataclass(frozen=True)
class ClientRequest:
    """What the event is made of, as read from the client's request."""

    method: str
    raw_path: str
    raw_query: str
    headers: Sequence[Header]
    body: bytes | bytearray
    source_ip: str
    scheme: str
    port: int
    request_id: str
    received_at: datetime


def proxy_event(
    client: ClientRequest,
    *,
    resource_path: str,
    config: GatewayConfig,
    target: LambdaTarget,
    api_key: str | None = None,
    api_key_id: str | None = None,
) -> dict[str, Any]:
    """The API Gateway REST proxy event (payload 1.0) for ``client``'s request; the body goes
    base64 when its type is one of ``config.binary_media_types``."""
    headers = _event_headers(client)
    multi_headers: dict[str, list[str]] = {}
    spelled: dict[str, str] = {}
    for name, value in headers:
        multi_headers.setdefault(spelled.setdefault(name.lower(), name), []).append(value)
    query = parse_qsl(client.raw_query, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for name, value in query:
        multi_query.setdefault(name, []).append(value)
    host = next((v for n, v in reversed(headers) if n.lower() == "host"), "")
    user_agent = next((v for n, v in reversed(headers) if n.lower() == "user-agent"), None)
    identity: dict[str, Any] = dict.fromkeys(_IDENTITY_FIELDS)
    identity.update(sourceIp=client.source_ip, userAgent=user_agent)
    if api_key is not None:
        identity.update(apiKey=api_key, apiKeyId=api_key_id)
    body, is_base64 = _event_body(headers, client.body, config.binary_media_types)
    epoch_ms = int(client.received_at.timestamp() * 1000)
    return {
        "resource": resource_path,
        "path": client.raw_path,
        "httpMethod": client.method,
        "headers": {name: values[-1] for name, values in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {name: values[-1] for name, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": raw_path_parameters(resource_path, client.raw_path),
        "stageVariables": dict(config.stage_variables) or None,
        "requestContext": {
            "accountId": target.account_id,
            "apiId": config.rest_api_id,
            "deploymentId": config.deployment_id,
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
            "extendedRequestId": client.request_id,
            "httpMethod": client.method,
            "identity": identity,
            "path": f"/{config.stage_name}{client.raw_path}",
            "protocol": "HTTP/1.1",
            "requestId": client.request_id,
            "requestTime": client.received_at.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": epoch_ms,
            "resourceId": hashlib.sha256(resource_path.encode()).hexdigest()[:10],
            "resourcePath": resource_path,
            "stage": config.stage_name,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


def raw_path_parameters(resource_path: str, raw_path: str) -> dict[str, str] | None:
    """Path parameters as API Gateway passes them to a Lambda proxy: still percent-encoded."""
    trimmed = raw_path.lstrip("/").rstrip("/")
    segments = trimmed.split("/") if trimmed else []
    params: dict[str, str] = {}
    for index, part in enumerate(s for s in resource_path.split("/") if s):
        if part.startswith("{") and part.endswith("+}"):
            params[part[1:-2]] = "/".join(segments[index:])
            break
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = segments[index] if index < len(segments) else ""
    return params or None


def _event_headers(client: ClientRequest) -> list[Header]:
    chain = [hop.strip() for name, value in client.headers if name.lower() == "x-forwarded-for"
             for hop in value.split(",") if hop.strip()]
    chain.append(client.source_ip)
    kept = [(n, v) for n, v in strip_hop_by_hop(client.headers)
            if n.lower() not in _DROPPED_REQUEST_HEADERS]
    return [*kept, ("X-Forwarded-For", ", ".join(chain)), ("X-Forwarded-Port", str(client.port)),
            ("X-Forwarded-Proto", client.scheme)]


def _event_body(
    headers: Sequence[Header], body: bytes | bytearray, binary_media_types: Sequence[str]
) -> tuple[str | None, bool]:
    if not body:
        return None, False
    if request_is_binary(headers, binary_media_types):
        return base64.b64encode(body).decode("ascii"), True
    return body.decode("utf-8", errors="replace"), False


@dataclass(frozen=True)
class ProxyResponse:
    """A well-formed Lambda proxy result, ready to send."""

    status: int
    headers: list[Header]
    body: bytes


def response_from_result(payload: bytes, *, decode_base64: bool = True) -> ProxyResponse | None:
    """The response a Lambda proxy result describes, or None when it is malformed.

    ``decode_base64``: whether a base64 body is decoded for the client (see
    :func:`data_plane.binary_media.response_is_decoded`) or passed on as the text it is.
    """
    try:
        result = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(result, dict):
        return None
    status = _status(result.get("statusCode"))
    headers = _result_headers(result.get("headers"), result.get("multiValueHeaders"))
    body = result.get("body")
    is_base64 = result.get("isBase64Encoded", False)
    if status is None or headers is None or not isinstance(is_base64, bool):
        return None
    if body is None:
        raw = b""
    elif not isinstance(body, str):
        return None
    elif is_base64 and decode_base64:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return None
    else:
        raw = body.encode("utf-8")
    return ProxyResponse(status, headers, raw)


def _status(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and 100 <= value <= 599:
        return value
    return None


def _header_value(value: Any) -> str | None:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _result_headers(single: Any, multi: Any) -> list[Header] | None:
    if single is not None and not isinstance(single, Mapping):
        return None
    if multi is not None and not isinstance(multi, Mapping):
        return None
    headers: list[Header] = []
    for name, values in (multi or {}).items():
        if not isinstance(values, list):
            return None
        for value in values:
            text = _header_value(value)
            if text is None:
                return None
            headers.append((str(name), text))
    seen = {(name.lower(), value) for name, value in headers}
    for name, value in (single or {}).items():
        text = _header_value(value)
        if text is None:
            return None
        if (str(name).lower(), text) not in seen:
            headers.append((str(name), text))
    return headers


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _shared_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=256, thread_name_prefix="turnout-aws-proxy")
        return _executor


def _lambda_client(region: str) -> Any:
    return boto3.session.Session().client(
        "lambda",
        region_name=region,
        config=Config(
            retries={"total_max_attempts": 1},
            connect_timeout=2,
            read_timeout=60,
            max_pool_connections=256,
        ),
    )


class AwsProxyIntegration:
    """Serves resource methods whose integration type is ``AWS_PROXY`` (Lambda proxy)."""

    def __init__(
        self,
        *,
        executor: Executor | None = None,
        client_factory: Callable[[str], Any] = _lambda_client,
    ) -> None:
        self._executor = executor
        self._client_factory = client_factory
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    async def handle(
        self,
        request: web.Request,
        *,
        route: Match[MethodConfig],
        integration: Integration,
        config: GatewayConfig,
        exchange: Exchange,
    ) -> web.StreamResponse:
        """Invoke the integration's function with ``request`` as a proxy event."""
        target = lambda_target(integration.uri)
        if target is None:
            LOG.warning("request %s: %s %s: not a Lambda proxy URI", exchange.request_id,
                        route.method, route.resource_path)
            return INTERNAL_SERVER_ERROR.to_web_response()
        exchange.upstream_host = "lambda:" + target.function_arn.rsplit(":function:", 1)[1]
        body = await _read_body(request)
        if body is None:
            LOG.info("request %s: the body is larger than a Lambda event can carry", exchange.request_id)
            return REQUEST_TOO_LONG.to_web_response()
        client_request = _client_request(request, exchange, body)
        event = proxy_event(
            client_request,
            resource_path=route.resource_path,
            config=config,
            target=target,
            api_key=request.headers.get("x-api-key") if route.target.api_key_required else None,
            api_key_id=getattr(exchange, "api_key_id", None),
        )
        del body, client_request
        payload = json.dumps(event, separators=(",", ":")).encode()
        del event
        if len(payload) > MAX_PAYLOAD_BYTES:
            return REQUEST_TOO_LONG.to_web_response()
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(self._executor or _shared_executor(), self._invoke, target, payload)
        try:
            outcome = await asyncio.wait_for(call, timeout=integration.timeout_ms / 1000)
        except TimeoutError:
            LOG.info("request %s: the function did not answer within %d ms", exchange.request_id,
                     integration.timeout_ms)
            return INTEGRATION_TIMEOUT.to_web_response()
        if isinstance(outcome, GatewayResponse):
            return outcome.to_web_response()
        client_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]
        response = response_from_result(
            outcome, decode_base64=response_is_decoded(client_headers, config.binary_media_types))
        if response is None:
            LOG.warning("request %s: malformed Lambda proxy response", exchange.request_id)
            return INTEGRATION_FAILURE.to_web_response()
        return _web_response(response)

    def _invoke(self, target: LambdaTarget, payload: bytes) -> bytes | GatewayResponse:
        try:
            answer = self._client(target.region).invoke(
                FunctionName=target.function_arn, InvocationType="RequestResponse", Payload=payload
            )
            result = answer["Payload"].read()
        except ClientError as exc:
            LOG.warning("invoking %s failed: %s", target.function_arn,
                        exc.response.get("Error", {}).get("Code"))
            return INTERNAL_SERVER_ERROR
        except BotoCoreError as exc:
            LOG.warning("invoking %s failed: %s", target.function_arn, type(exc).__name__)
            return INTERNAL_SERVER_ERROR
        if answer.get("FunctionError"):
            LOG.warning("%s failed: %s", target.function_arn, answer["FunctionError"])
            return INTEGRATION_FAILURE
        return result

    def _client(self, region: str) -> Any:
        with self._clients_lock:
            client = self._clients.get(region)
            if client is None:
                client = self._clients[region] = self._client_factory(region)
            return client


async def _read_body(request: web.Request) -> bytearray | None:
    """The body in one buffer; None as soon as it is known to exceed the event limit."""
    body = bytearray()
    if not request.body_exists:
        return body
    if request.content_length is not None and request.content_length > MAX_PAYLOAD_BYTES:
        return None
    async for chunk in request.content.iter_chunked(64 * 1024):
        if len(body) + len(chunk) > MAX_PAYLOAD_BYTES:
            return None
        body += chunk
    return body


def _client_request(request: web.Request, exchange: Exchange, body: bytes | bytearray) -> ClientRequest:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport else None
    local = transport.get_extra_info("sockname") if transport else None
    return ClientRequest(
        method=request.method,
        raw_path=request.rel_url.raw_path,
        raw_query=request.rel_url.raw_query_string,
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers],
        body=body,
        source_ip=peer[0] if peer else "",
        scheme="https" if request.secure else "http",
        port=local[1] if local else 0,
        request_id=exchange.request_id,
        received_at=exchange.received_at,
    )


def _web_response(response: ProxyResponse) -> web.Response:
    answer = web.Response(status=response.status, body=response.body)
    answer.headers.pop("Content-Type", None)
    has_type = False
    for name, value in response_headers_for_client(response.headers):
        if name.lower() == "content-length":
            continue
        has_type = has_type or name.lower() == "content-type"
        answer.headers.add(name, value)
    if not has_type:
        answer.headers["Content-Type"] = "application/json"
    return answer

