"""Requests whose framing the gateway refuses before anything else looks at them.

aiohttp's HTTP parser (llhttp, strict) already answers 400 to the classic smuggling shapes:
``Content-Length`` together with ``Transfer-Encoding``, two lengths, a length that is not a
plain number, obs-fold, NUL / bare CR / control bytes in headers, bare LF line endings,
malformed or overflowing chunk sizes, a second ``Host``. :func:`refuse_ambiguous_framing`
refuses what it lets through but a front end must not pass on, because the gateway re-frames
every request towards the upstream and must not guess what the client meant:

- ``Transfer-Encoding`` on an HTTP/1.0 request: RFC 9112 section 6.1 says the framing is then
  faulty -> ``400``;
- a transfer coding other than exactly ``chunked`` (``gzip, chunked``...): the gateway does
  not decode transfer codings, so it would pass the still-encoded bytes on as the body; RFC
  9112 section 6.1 answers a coding the server does not implement with ``501``;
- an HTTP/0.9 request line (no headers, no framing at all) or a major version other than 1
  -> ``505``.

Each refusal closes the connection, so nothing the client sent after the refused request is
read as another request. The bodies follow API Gateway's ``{"message": ...}`` shape.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

_BAD_REQUEST = (400, b'{"message":"Bad Request"}')
_NOT_IMPLEMENTED = (501, b'{"message":"Transfer-Encoding not implemented"}')
_VERSION_NOT_SUPPORTED = (505, b'{"message":"HTTP Version Not Supported"}')


def framing_refusal(request: web.BaseRequest) -> tuple[int, bytes] | None:
    """The status and body to refuse ``request`` with, or None when its framing is sound."""
    version = request.version
    if version.major != 1:
        return _VERSION_NOT_SUPPORTED
    encodings = request.headers.getall("Transfer-Encoding", [])
    if not encodings:
        return None
    if version.minor == 0:
        return _BAD_REQUEST
    codings = [c.strip().lower() for value in encodings for c in value.split(",")]
    if codings != ["chunked"]:
        return _NOT_IMPLEMENTED
    return None


@web.middleware
async def refuse_ambiguous_framing(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer a request with unsound framing itself (connection closed); pass the rest on."""
    refusal = framing_refusal(request)
    if refusal is None:
        return await handler(request)
    status, body = refusal
    response = web.Response(status=status, body=body, content_type="application/json")
    response.force_close()
    return response
