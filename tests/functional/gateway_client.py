"""A raw HTTP client for the local gateway: exact method, target, headers and body on the wire."""

from __future__ import annotations

import http.client

from data_plane.local_gateway import LocalGateway


def call(gateway: LocalGateway, method: str, target: str, *, headers=(), body: bytes | None = None,
         timeout: float = 20):
    """One request on a fresh connection: (status, header pairs, body)."""
    return call_port(gateway.port, method, target, headers=headers, body=body, timeout=timeout)


def call_port(port: int, method: str, target: str, *, headers=(), body: bytes | None = None,
              timeout: float = 20):
    """One request to 127.0.0.1:``port`` on a fresh connection: (status, header pairs, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


def values(headers, name: str) -> list[str]:
    """Every value of header ``name`` (any case), in order."""
    return [v for k, v in headers if k.lower() == name.lower()]
