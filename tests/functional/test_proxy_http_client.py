"""The data plane's one HTTP client against real upstreams on 127.0.0.1: egress checks at
connect time, pooling, and failures classified by whether the request left."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import pytest

from data_plane.proxy.http_client import (
    EgressRefusedError,
    HttpClient,
    UpstreamConnectError,
    UpstreamResponseTooLarge,
    UpstreamTimeout,
)
from tests.functional.test_proxy_support import Upstream, closed_url


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream("up")
    yield server
    server.close()


def send(client: HttpClient, url: str, *, method: str = "GET", headers=(), timeout: float = 5.0):
    return client.send(method, url, list(headers), b"", timeout_seconds=timeout)


def test_loopback_upstream_is_refused_without_the_local_flag_and_nothing_is_sent(upstream):
    with pytest.raises(EgressRefusedError, match="loopback"):
        send(HttpClient(allow_loopback=False), upstream.url + "/x")
    assert upstream.requests == []


def test_name_that_resolves_to_a_refused_address_is_refused_at_connect_time(upstream):
    port = upstream.url.rsplit(":", 1)[1]
    with pytest.raises(EgressRefusedError):
        send(HttpClient(allow_loopback=False), f"http://localhost:{port}/x")
    assert upstream.requests == []


def test_connections_are_kept_and_reused_between_requests(upstream):
    client = HttpClient(allow_loopback=True)
    for _ in range(3):
        assert send(client, upstream.url + "/x").status == 200
    assert upstream.connections == 1


def test_no_header_is_added_and_bodies_pass_untouched(upstream):
    client = HttpClient(allow_loopback=True)
    echoed = send(client, upstream.url + "/x", headers=[("Host", "up.example")])
    names = [name.lower() for name, _ in json.loads(echoed.body)["headers"]]
    assert names == ["host"]
    zipped = send(client, upstream.url + "/gzip", headers=[("Accept-Encoding", "gzip")])
    assert ("Content-Encoding", "gzip") in zipped.headers
    assert gzip.decompress(zipped.body) == b"turnout " * 100


def test_redirect_is_returned_not_followed(upstream):
    reply = send(HttpClient(allow_loopback=True), upstream.url + "/redirect")
    assert reply.status == 302
    assert upstream.paths() == ["/redirect"]


def test_refused_connection_is_a_connect_error(upstream):
    with pytest.raises(UpstreamConnectError) as caught:
        send(HttpClient(allow_loopback=True), closed_url() + "/x")
    assert not isinstance(caught.value, EgressRefusedError)


def test_hanging_upstream_is_a_timeout(upstream):
    upstream.delay_seconds = 2
    with pytest.raises(UpstreamTimeout):
        send(HttpClient(allow_loopback=True), upstream.url + "/x", timeout=0.3)


def test_answer_too_large_for_a_proxy_result_is_refused(upstream):
    with pytest.raises(UpstreamResponseTooLarge):
        send(HttpClient(allow_loopback=True, max_body_bytes=100), upstream.url + "/binary")
