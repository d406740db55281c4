"""The data plane's one HTTP client against real upstreams on 127.0.0.1: egress checks at
connect time, pooling, and failures classified by whether the request left."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import tracemalloc
from collections.abc import Iterator

import pytest

from data_plane.proxy.http_client import (
    MAX_BODY_BYTES,
    Cancellation,
    EgressRefusedError,
    HttpClient,
    UpstreamCancelled,
    UpstreamConnectError,
    UpstreamResponseTooLarge,
    UpstreamTimeout,
)
from tests.functional.bulk_service import bulk_service
from tests.functional.test_proxy_support import Upstream, closed_url

MB = 1024 * 1024


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


@pytest.fixture(scope="module")
def bulk() -> Iterator[str]:
    """A service streaming large bodies, in its own process."""
    with bulk_service() as url:
        yield url


def peak_while(action) -> int:
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        action()
        return tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()


def test_ten_megabyte_chunked_answer_is_refused_as_soon_as_it_passes_the_limit(bulk):
    def fetch():
        with pytest.raises(UpstreamResponseTooLarge):
            send(HttpClient(allow_loopback=True), f"{bulk}/source/{10 * MB}")
    peak = peak_while(fetch)
    assert peak < MAX_BODY_BYTES + MB, f"{peak / MB:.1f} MB held for a 10 MB answer"


def test_answer_declaring_a_length_over_the_limit_is_refused_before_its_body_is_read(bulk):
    def fetch():
        with pytest.raises(UpstreamResponseTooLarge):
            send(HttpClient(allow_loopback=True), f"{bulk}/source/{10 * MB}?length=1")
    assert peak_while(fetch) < MB


def test_answer_just_under_the_limit_is_read_into_one_buffer(bulk):
    reply = send(HttpClient(allow_loopback=True), f"{bulk}/source/{MAX_BODY_BYTES}", timeout=30)
    assert reply.status == 200
    assert len(reply.body) == MAX_BODY_BYTES


@pytest.fixture
def early_hints() -> Iterator[str]:
    """A raw HTTP/1.1 server whose answer is preceded by two interim 1xx answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                         b"HTTP/1.1 102 Processing\r\n\r\n"
                         b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nfinal")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    listener.close()


def test_interim_1xx_answers_are_read_past_and_the_final_answer_is_returned(early_hints):
    reply = send(HttpClient(allow_loopback=True), early_hints + "/x")
    assert reply.status == 200
    assert bytes(reply.body) == b"final"


def test_cancelled_exchange_stops_waiting_on_a_hung_upstream(upstream):
    upstream.delay_seconds = 30
    cancellation = Cancellation()
    client = HttpClient(allow_loopback=True)
    timer = threading.Timer(0.2, cancellation.cancel)
    timer.start()
    with pytest.raises(UpstreamCancelled):
        client.send("GET", upstream.url + "/x", [], b"", timeout_seconds=30, cancellation=cancellation)
    timer.join()
