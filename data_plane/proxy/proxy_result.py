"""Lambda proxy results: the upstream's answer, or the function's own error (pure).

A result is ``statusCode``, ``headers`` (the headers that have one value), ``multiValueHeaders``
(every header with all its values, in order; API Gateway merges the two, keeping one copy of a
pair present in both), ``body`` and ``isBase64Encoded``.

The body goes as text only when it is plainly text: no ``Content-Encoding`` (a gzip body stays
gzip, byte for byte), a textual ``Content-Type`` (``text/*``, JSON, XML, JavaScript, form data)
and valid UTF-8. Anything else goes base64. Hop-by-hop headers and ``Content-Length`` are
dropped: the framing is redone by API Gateway.

The function's own errors say nothing about why: 502 ``{"message":"Bad Gateway"}`` and 504
``{"message":"Gateway Timeout"}``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from data_plane.headers import strip_hop_by_hop

Header = tuple[str, str]

_TEXT_SUBTYPES = frozenset({"json", "xml", "javascript", "x-www-form-urlencoded", "ecmascript"})
_JSON = (("Content-Type", "application/json"),)


def proxy_result(status: int, headers: Sequence[Header], body: bytes) -> dict[str, Any]:
    """The proxy result relaying an upstream answer."""
    kept = [(name, value) for name, value in strip_hop_by_hop(headers) if name.lower() != "content-length"]
    multi: dict[str, list[str]] = {}
    spelled: dict[str, str] = {}
    for name, value in kept:
        key = spelled.setdefault(name.lower(), name)
        multi.setdefault(key, []).append(value)
    single = {name: values[0] for name, values in multi.items() if len(values) == 1}
    text = _as_text(kept, body)
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


def gateway_timeout() -> dict[str, Any]:
    """The last upstream tried did not answer in time."""
    return error_result(504, "Gateway Timeout")


def _as_text(headers: Sequence[Header], body: bytes) -> str | None:
    if not body:
        return ""
    encoding = _last(headers, "content-encoding")
    if encoding is not None and encoding.strip().lower() not in ("", "identity"):
        return None
    content_type = _last(headers, "content-type")
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


def _last(headers: Sequence[Header], wanted: str) -> str | None:
    found = None
    for name, value in headers:
        if name.lower() == wanted:
            found = value
    return found
