"""Header hygiene between the client, the gateway and the upstream (pure functions).

Headers travel as ordered ``(name, value)`` pairs so repeated headers
(``Set-Cookie``, ``Via``...) and their order survive. Names compare
case-insensitively and keep their original spelling.

Towards the upstream (:func:`request_headers_for_upstream`):

* hop-by-hop headers are dropped: ``Connection``, ``Keep-Alive``,
  ``Proxy-Authenticate``, ``Proxy-Authorization``, ``Proxy-Connection``, ``TE``,
  ``Trailer``, ``Transfer-Encoding``, ``Upgrade`` and every header named in
  ``Connection``;
* so are the ones API Gateway never forwards: ``Expect``, ``Max-Forwards``,
  ``Content-MD5``, ``Server`` and ``WWW-Authenticate``;
* ``Content-Length`` is dropped when the client also sent ``Transfer-Encoding``
  (the framing is re-done hop by hop, and the pair is a smuggling vector);
* ``Host`` names the upstream; ``X-Forwarded-For`` gets the socket peer appended
  to what the client sent; ``X-Forwarded-Proto`` and ``X-Forwarded-Port`` say how
  the client reached the gateway (client-sent values are replaced).

Towards the client (:func:`response_headers_for_client`): hop-by-hop headers
are dropped, and ``Date``, ``Server`` and ``x-amzn-RequestId`` from the upstream
are renamed ``x-amzn-Remapped-<name>`` as API Gateway does for proxy
integrations, because the gateway sends its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Header = tuple[str, str]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
NOT_FORWARDED_BY_API_GATEWAY = frozenset(
    {"expect", "max-forwards", "content-md5", "server", "www-authenticate"}
)
FORWARDED_BY_GATEWAY = frozenset({"host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-port"})
REMAPPED_FROM_UPSTREAM = frozenset({"date", "server", "x-amzn-requestid"})


def connection_tokens(headers: Iterable[Header]) -> frozenset[str]:
    """Lower-cased header names listed in every ``Connection`` header."""
    return frozenset(
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
        if token.strip()
    )


def strip_hop_by_hop(headers: Sequence[Header]) -> list[Header]:
    """The headers without hop-by-hop ones, including those named in ``Connection``."""
    dropped = HOP_BY_HOP | connection_tokens(headers)
    return [(name, value) for name, value in headers if name.lower() not in dropped]


def request_headers_for_upstream(
    headers: Sequence[Header],
    *,
    upstream_authority: str,
    peer_address: str | None,
    client_scheme: str,
    gateway_port: int,
) -> list[Header]:
    """The headers to send upstream for a client request carrying ``headers``."""
    chunked = any(name.lower() == "transfer-encoding" for name, _ in headers)
    forwarded_for = [
        value.strip() for name, value in headers if name.lower() == "x-forwarded-for" and value.strip()
    ]
    if peer_address:
        forwarded_for.append(peer_address)
    kept = [
        (name, value)
        for name, value in strip_hop_by_hop(headers)
        if name.lower() not in NOT_FORWARDED_BY_API_GATEWAY
        and name.lower() not in FORWARDED_BY_GATEWAY
        and not (chunked and name.lower() == "content-length")
    ]
    result: list[Header] = [("Host", upstream_authority), *kept]
    if forwarded_for:
        result.append(("X-Forwarded-For", ", ".join(forwarded_for)))
    result.append(("X-Forwarded-Proto", client_scheme))
    result.append(("X-Forwarded-Port", str(gateway_port)))
    return result


def response_headers_for_client(headers: Sequence[Header]) -> list[Header]:
    """The upstream's response headers as the client should see them."""
    return [
        (f"x-amzn-Remapped-{name}", value) if name.lower() in REMAPPED_FROM_UPSTREAM else (name, value)
        for name, value in strip_hop_by_hop(headers)
    ]


def last_header(headers: Sequence[Header], wanted: str) -> str | None:
    """The value of the last ``wanted`` header (lower-case name), or None."""
    found = None
    for name, value in headers:
        if name.lower() == wanted:
            found = value
    return found


def authority(scheme: str, host: str, port: int | None) -> str:
    """``host[:port]`` for a ``Host`` header, leaving out the scheme's default port."""
    shown = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}.get(scheme.lower())
    return shown if port is None or port == default else f"{shown}:{port}"
