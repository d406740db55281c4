"""The API Gateway REST proxy event (payload version 1.0), read into a :class:`ProxyRequest`.

What the event carries and how it is read:

- ``resource`` (the matched resource path, e.g. ``/orders/{proxy+}``) and ``httpMethod``;
- ``path``: the request path as the client sent it (still percent-encoded), without the stage;
- ``multiValueHeaders`` (every value, in order), else ``headers`` (the last value of each);
- ``multiValueQueryStringParameters``, else ``queryStringParameters``: already decoded;
- ``body`` (``null`` when empty), base64 when ``isBase64Encoded``;
- ``requestContext.identity.sourceIp``: the client address API Gateway saw on the socket;
- ``requestContext.requestTimeEpoch``: when API Gateway received the request (ms since the
  epoch), from which its integration timeout runs.

Anything else in the event (the API key value in ``requestContext.identity``, stage variables,
authorizer output) is not read.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Header = tuple[str, str]


class InvalidEventError(ValueError):
    """The event is not an API Gateway REST proxy event this function can serve."""


@dataclass(frozen=True)
class ProxyRequest:
    """One client request, as API Gateway handed it over."""

    resource: str
    method: str
    path: str
    headers: tuple[Header, ...]
    query: tuple[tuple[str, str], ...]
    body: bytes
    source_ip: str | None = None
    request_id: str | None = None
    received_epoch_ms: int | None = None


def read_event(event: object) -> ProxyRequest:
    """The request ``event`` describes; :class:`InvalidEventError` when it is not a proxy event."""
    if not isinstance(event, Mapping):
        raise InvalidEventError("the event is not a JSON object")
    resource = event.get("resource")
    method = event.get("httpMethod")
    path = event.get("path")
    if not isinstance(resource, str) or not isinstance(method, str) or not isinstance(path, str):
        raise InvalidEventError("resource, httpMethod and path must be strings")
    context = event.get("requestContext") if isinstance(event.get("requestContext"), Mapping) else {}
    identity = context.get("identity") if isinstance(context.get("identity"), Mapping) else {}
    source_ip = identity.get("sourceIp")
    request_id = context.get("requestId")
    received = context.get("requestTimeEpoch")
    return ProxyRequest(
        resource=resource,
        method=method.upper(),
        path=path if path.startswith("/") else "/" + path,
        headers=tuple(_pairs(event.get("multiValueHeaders"), event.get("headers"))),
        query=tuple(
            _pairs(event.get("multiValueQueryStringParameters"), event.get("queryStringParameters"))
        ),
        body=_body(event.get("body"), event.get("isBase64Encoded")),
        source_ip=source_ip if isinstance(source_ip, str) and source_ip else None,
        request_id=request_id if isinstance(request_id, str) else None,
        received_epoch_ms=received if isinstance(received, int) and not isinstance(received, bool) else None,
    )


def _pairs(multi: Any, single: Any) -> list[tuple[str, str]]:
    """``(name, value)`` pairs from the multi-value map, else from the single-value one."""
    pairs: list[tuple[str, str]] = []
    if isinstance(multi, Mapping) and multi:
        for name, values in multi.items():
            if isinstance(values, list):
                pairs.extend((str(name), str(value)) for value in values if value is not None)
            elif values is not None:
                pairs.append((str(name), str(values)))
        return pairs
    if isinstance(single, Mapping):
        pairs.extend((str(name), str(value)) for name, value in single.items() if value is not None)
    return pairs


def _body(body: Any, is_base64: Any) -> bytes:
    if body is None or body == "":
        return b""
    if not isinstance(body, str):
        raise InvalidEventError("body must be a string or null")
    if is_base64 is True:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidEventError("isBase64Encoded is true but the body is not base64") from exc
    return body.encode("utf-8")
