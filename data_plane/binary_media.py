"""The REST API's ``binaryMediaTypes``, as API Gateway applies them to Lambda proxy integrations
(pure functions).

- Request: the body reaches the function base64-encoded (``isBase64Encoded: true``) when the
  request's ``Content-Type`` matches an entry; otherwise it goes as UTF-8 text (bytes that are
  not UTF-8 do not survive). A request without ``Content-Type`` counts as ``application/json``,
  the type API Gateway assumes.
- Response: a result with ``isBase64Encoded: true`` is decoded into bytes for the client when
  the *first* media type of the request's ``Accept`` header matches an entry; otherwise the
  client gets the base64 text itself. A request without ``Accept`` counts as ``*/*``, which
  only the entry ``*/*`` matches. That is why turnout's API lists ``*/*``: every base64 result
  of the data-plane function reaches every client as bytes.

An entry is ``type/subtype`` where either part may be ``*``; parameters (``; charset=...``) and
case are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from data_plane.headers import Header, last_header

DEFAULT_REQUEST_TYPE = "application/json"
ANY_TYPE = "*/*"


def media_type(value: str) -> str:
    """``type/subtype`` of a header value, lower-cased, without parameters."""
    return value.split(";", 1)[0].strip().lower()


def matches(value: str, binary_media_types: Iterable[str]) -> bool:
    """Whether the media type ``value`` is one of ``binary_media_types`` (wildcards allowed)."""
    kind, _, subtype = media_type(value).partition("/")
    for entry in binary_media_types:
        want_kind, _, want_subtype = media_type(entry).partition("/")
        if want_kind in ("*", kind) and want_subtype in ("*", subtype):
            return True
    return False


def request_is_binary(headers: Sequence[Header], binary_media_types: Sequence[str]) -> bool:
    """Whether a request body with these headers goes to the function base64-encoded."""
    content_type = last_header(headers, "content-type") or DEFAULT_REQUEST_TYPE
    return matches(content_type, binary_media_types)


def response_is_decoded(headers: Sequence[Header], binary_media_types: Sequence[str]) -> bool:
    """Whether a base64 result is decoded into bytes for a request with these headers."""
    accept = last_header(headers, "accept")
    first = accept.split(",", 1)[0] if accept and accept.strip() else ANY_TYPE
    return matches(first, binary_media_types)
