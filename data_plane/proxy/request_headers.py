"""The headers a proxied request carries to the upstream (pure).

From the client's headers, as API Gateway passed them on:

- hop-by-hop headers are dropped (``Connection``, ``Keep-Alive``, ``TE``, ``Upgrade``,
  ``Transfer-Encoding``... and every header named in ``Connection``);
- so are ``x-api-key`` (the client's key to turnout, never the upstream's business),
  ``Host`` (it names the upstream instead), ``Content-Length`` (recomputed from the body)
  and ``Expect``;
- with ``upstream_auth``, every client header of that name is replaced by the credential;
- ``X-Forwarded-For`` keeps the chain and ends with the client address API Gateway saw
  (appended unless API Gateway already put it last); ``X-Forwarded-Proto`` says how the client
  reached the gateway (``https`` when API Gateway did not say).
"""

from __future__ import annotations

from collections.abc import Sequence

from data_plane.headers import strip_hop_by_hop

Header = tuple[str, str]

DROPPED = frozenset({"x-api-key", "host", "content-length", "expect"})
_FORWARDING = frozenset({"x-forwarded-for", "x-forwarded-proto"})


def upstream_headers(
    headers: Sequence[Header],
    *,
    upstream_authority: str,
    source_ip: str | None,
    credential: Header | None = None,
) -> list[Header]:
    """The headers to send upstream for a request that arrived with ``headers``."""
    replaced = credential[0].lower() if credential else None
    chain = [
        hop.strip()
        for name, value in headers
        if name.lower() == "x-forwarded-for"
        for hop in value.split(",")
        if hop.strip()
    ]
    if source_ip and (not chain or chain[-1] != source_ip):
        chain.append(source_ip)
    proto = next(
        (value.strip() for name, value in reversed(headers) if name.lower() == "x-forwarded-proto"),
        "",
    ) or "https"
    kept = [
        (name, value)
        for name, value in strip_hop_by_hop(headers)
        if name.lower() not in DROPPED and name.lower() not in _FORWARDING and name.lower() != replaced
    ]
    result: list[Header] = [("Host", upstream_authority), *kept]
    if chain:
        result.append(("X-Forwarded-For", ", ".join(chain)))
    result.append(("X-Forwarded-Proto", proto))
    if credential is not None:
        result.append(credential)
    return result
