"""Lambda proxy results: the upstream's answer, or the function's own error (pure).

A result is ``statusCode``, ``headers`` (the headers that have one value), ``multiValueHeaders``
(every header with all its values, in order; API Gateway merges the two, keeping one copy of a
pair present in both), ``body`` and ``isBase64Encoded``.

The body goes as text only when it is plainly text: no ``Content-Encoding`` (a gzip body stays
gzip, byte for byte), a textual ``Content-Type`` (``text/*``, JSON, XML, JavaScript, form data)
and valid UTF-8. Anything else goes base64 (API Gateway decodes it for the client when the
API's ``binaryMediaTypes`` cover the request's ``Accept``; turnout's API lists ``*/*``).
Hop-by-hop headers and ``Content-Length`` are dropped: the framing is redone by API Gateway.

A result must fit Lambda's 6 MB response payload (``MAX_PAYLOAD_BYTES``, the result as JSON).
A text body goes base64 when even its worst-case JSON escaping (6 bytes per byte) might not
fit, since base64's size is exact; an answer that does not fit even then becomes 502
``{"message":"Response payload too large"}``: on AWS, a larger result would fail the invocation
and API Gateway would answer 502 anyway, without saying why.

The function's other errors say nothing about why: 502 ``{"message":"Bad Gateway"}`` and 504
``{"message":"Gateway Timeout"}``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from data_plane.headers import Header, last_header, strip_hop_by_hop

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
"""Lambda's limit for a synchronous invocation's response payload (and for its event)."""
_ENVELOPE_BYTES = 256
"""More than the JSON of a result without its headers and body takes."""
_WORST_JSON_ESCAPE = 6
_TEXT_SUBTYPES = frozenset({"json", "xml", "javascript", "x-www-form-urlencoded", "ecmascript"})
_JSON = (("Content-Type", "application/json"),)


def proxy_result(
    status: int,
    headers: Sequence[Header],
    body: bytes | bytearray,
    *,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
) -> dict[str, Any]:
    """The proxy result relaying an upstream answer (502 when it cannot fit the payload)."""
    kept = [(name, value) for name, value in strip_hop_by_hop(headers) if name.lower() != "content-length"]
    multi: dict[str, list[str]] = {}
    spelled: dict[str, str] = {}
    for name, value in kept:
        key = spelled.setdefault(name.lower(), name)
        multi.setdefault(key, []).append(value)
    single = {name: values[0] for name, values in multi.items() if len(values) == 1}
    framing = len(json.dumps(single)) + len(json.dumps(multi)) + _ENVELOPE_BYTES
    text = _as_text(kept, body)
    if text is not None and framing + _WORST_JSON_ESCAPE * len(body) > max_payload_bytes:
        text = None
    if text is None and framing + base64_length(len(body)) > max_payload_bytes:
        return response_too_large()
    return {
        "statusCode": status,
        "headers": single,
        "multiValueHeaders": multi,
        "body": text if text is not None else base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": text is None,
    }


def error_result(status: int, message: str) -> dict[str, Any]:
    """The function's own answer: ``status`` with ``{"message": message}``."""
    return proxy_result(status, _JSON, json.dumps({"message": message}).encode())


def bad_gateway() -> dict[str, Any]:
    """No upstream gave a usable answer."""
    return error_result(502, "Bad Gateway")


def response_too_large() -> dict[str, Any]:
    """The upstream's answer is larger than a Lambda proxy result can carry."""
    return error_result(502, "Response payload too large")


def base64_length(size: int) -> int:
    """How long ``size`` bytes are once base64-encoded."""
    return 4 * ((size + 2) // 3)


def gateway_timeout() -> dict[str, Any]:
    """The last upstream tried did not answer in time."""
    return error_result(504, "Gateway Timeout")


def _as_text(headers: Sequence[Header], body: bytes | bytearray) -> str | None:
    if not body:
        return ""
    encoding = last_header(headers, "content-encoding")
    if encoding is not None and encoding.strip().lower() not in ("", "identity"):
        return None
    content_type = last_header(headers, "content-type")
    if content_type is None or not is_text_type(content_type):
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def is_text_type(content_type: str) -> bool:
    """Whether a ``Content-Type`` value names text (``text/*``, JSON, XML, JS, form data)."""
    media = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = media.partition("/")
    if kind == "text":
        return True
    return subtype in _TEXT_SUBTYPES or subtype.endswith(("+json", "+xml"))
