"""Header hygiene between client, gateway and upstream."""

from __future__ import annotations

import pytest

from data_plane.headers import (
    Header,
    authority,
    connection_tokens,
    request_headers_for_upstream,
    response_headers_for_client,
    strip_hop_by_hop,
)


def upstream_headers(headers: list[Header], **overrides: object) -> list[Header]:
    options: dict[str, object] = {
        "upstream_authority": "backend.example:8443",
        "peer_address": "127.0.0.1",
        "client_scheme": "http",
        "gateway_port": 8080,
    }
    options.update(overrides)
    return request_headers_for_upstream(headers, **options)  # type: ignore[arg-type]


def names(headers: list[Header]) -> list[str]:
    return [name.lower() for name, _ in headers]


def values(headers: list[Header], name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name.lower()]


@pytest.mark.parametrize(
    "hop",
    [
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "keep-alive",
        "CONNECTION",
    ],
)
def test_hop_by_hop_header_is_not_forwarded_either_way(hop: str) -> None:
    headers = [("Accept", "*/*"), (hop, "x"), ("X-Kept", "1")]

    assert hop.lower() not in names(upstream_headers(headers))
    assert hop.lower() not in names(response_headers_for_client(headers))
    assert values(upstream_headers(headers), "X-Kept") == ["1"]


def test_headers_named_in_connection_are_not_forwarded() -> None:
    headers = [
        ("Connection", "keep-alive, X-Private"),
        ("Connection", " x-other ,"),
        ("X-Private", "secret"),
        ("X-Other", "secret"),
        ("X-Public", "fine"),
    ]

    assert connection_tokens(headers) == {"keep-alive", "x-private", "x-other"}
    assert strip_hop_by_hop(headers) == [("X-Public", "fine")]
    assert "x-private" not in names(upstream_headers(headers))
    assert "x-other" not in names(response_headers_for_client(headers))


@pytest.mark.parametrize("dropped", ["Expect", "Max-Forwards", "Content-MD5", "Server", "WWW-Authenticate"])
def test_headers_api_gateway_never_forwards_stay_behind(dropped: str) -> None:
    assert dropped.lower() not in names(upstream_headers([(dropped, "v")]))


def test_end_to_end_headers_keep_their_order_spelling_and_repeats() -> None:
    headers = [
        ("Accept", "application/json"),
        ("X-Custom", "a"),
        ("Cookie", "a=1"),
        ("X-Custom", "b"),
        ("Content-Type", "text/plain"),
        ("Content-Length", "5"),
        ("Authorization", "Bearer t"),
    ]

    forwarded = upstream_headers(headers)

    assert [h for h in forwarded if h[0] != "Host" and not h[0].startswith("X-Forwarded")] == headers


def test_host_names_the_upstream_not_the_gateway() -> None:
    forwarded = upstream_headers([("Host", "127.0.0.1:8080"), ("host", "evil")])

    assert values(forwarded, "Host") == ["backend.example:8443"]
    assert forwarded[0] == ("Host", "backend.example:8443")


def test_forwarded_for_appends_the_socket_peer() -> None:
    forwarded = upstream_headers(
        [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-For", "198.51.100.7, 10.0.0.1")],
        peer_address="127.0.0.1",
    )

    assert values(forwarded, "X-Forwarded-For") == ["203.0.113.9, 198.51.100.7, 10.0.0.1, 127.0.0.1"]


def test_forwarded_for_starts_with_the_peer_when_the_client_sent_none() -> None:
    assert values(upstream_headers([]), "X-Forwarded-For") == ["127.0.0.1"]


def test_forwarded_proto_and_port_say_how_the_client_reached_the_gateway() -> None:
    forwarded = upstream_headers(
        [("X-Forwarded-Proto", "https"), ("X-Forwarded-Port", "443")],
        client_scheme="http",
        gateway_port=8080,
    )

    assert values(forwarded, "X-Forwarded-Proto") == ["http"]
    assert values(forwarded, "X-Forwarded-Port") == ["8080"]


def test_content_length_is_dropped_when_the_body_is_chunked() -> None:
    forwarded = upstream_headers([("Transfer-Encoding", "chunked"), ("Content-Length", "10")])

    assert "content-length" not in names(forwarded)
    assert "transfer-encoding" not in names(forwarded)


def test_content_length_is_kept_for_a_sized_body() -> None:
    assert values(upstream_headers([("Content-Length", "10")]), "Content-Length") == ["10"]


def test_upstream_date_server_and_request_id_are_remapped_for_the_client() -> None:
    headers = [
        ("Date", "Mon, 01 Jan 2024 00:00:00 GMT"),
        ("Server", "upstream/1.0"),
        ("x-amzn-RequestId", "upstream-id"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Content-Encoding", "gzip"),
        ("Content-Length", "20"),
    ]

    assert response_headers_for_client(headers) == [
        ("x-amzn-Remapped-Date", "Mon, 01 Jan 2024 00:00:00 GMT"),
        ("x-amzn-Remapped-Server", "upstream/1.0"),
        ("x-amzn-Remapped-x-amzn-RequestId", "upstream-id"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Content-Encoding", "gzip"),
        ("Content-Length", "20"),
    ]


@pytest.mark.parametrize(
    ("scheme", "host", "port", "expected"),
    [
        ("http", "127.0.0.1", 80, "127.0.0.1"),
        ("https", "api.example", 443, "api.example"),
        ("http", "127.0.0.1", 8443, "127.0.0.1:8443"),
        ("https", "api.example", 80, "api.example:80"),
        ("https", "api.example", None, "api.example"),
        ("http", "::1", 9000, "[::1]:9000"),
    ],
)
def test_authority_leaves_out_the_default_port(
    scheme: str, host: str, port: int | None, expected: str
) -> None:
    assert authority(scheme, host, port) == expected
