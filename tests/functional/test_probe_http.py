"""One probe under the egress policy: the addresses a name resolves to are checked before any
connection, and the probe connects only to an address that passed."""

from __future__ import annotations

import pytest

from control_plane.health.http_probe import probe
from control_plane.health.jobs import target_endpoint, url_endpoint
from tests.functional.probe_upstreams import StatusUpstream


@pytest.fixture
def upstream():
    server = StatusUpstream(200)
    yield server
    server.close()


def resolving_to(*addresses: str):
    return lambda host, port: list(addresses)


def test_a_name_that_resolves_to_loopback_is_refused_without_connecting(upstream):
    endpoint = url_endpoint(f"http://upstream.example:{upstream.port}", "/health")
    result = probe(endpoint, timeout_seconds=1, expected_statuses=[200],
                   resolver=resolving_to("127.0.0.1"))
    assert (result.success, result.error) == (False, "address not allowed: loopback")
    assert upstream.requests == []


def test_a_name_that_resolves_to_the_metadata_service_is_refused():
    endpoint = url_endpoint("https://metadata.example", "/latest/meta-data/")
    result = probe(endpoint, timeout_seconds=1, expected_statuses=[200],
                   resolver=resolving_to("169.254.169.254"))
    assert not result.success
    assert result.error == "address not allowed: link-local (the instance metadata service)"


def test_only_an_allowed_address_of_a_name_is_connected_to(upstream):
    endpoint = url_endpoint(f"http://upstream.example:{upstream.port}/base", "/health")
    result = probe(endpoint, timeout_seconds=1, expected_statuses=[200], allow_loopback=True,
                   resolver=resolving_to("169.254.169.254", "127.0.0.1"))
    assert result.success and result.status == 200
    [(_, path, headers)] = upstream.requests
    assert path == "/base/health"
    assert headers["Host"] == f"upstream.example:{upstream.port}"
    assert headers["User-Agent"].startswith("turnout-prober/")


def test_an_unexpected_status_fails_the_probe(upstream):
    upstream.status = 204
    endpoint = url_endpoint(upstream.url, "/health")
    assert probe(endpoint, timeout_seconds=1, expected_statuses=[200],
                 allow_loopback=True).error == "status 204"
    assert probe(endpoint, timeout_seconds=1, expected_statuses=[200, 204],
                 allow_loopback=True).success


def test_a_name_that_does_not_resolve_fails_the_probe():
    endpoint = url_endpoint("https://nowhere.example", "/health")
    result = probe(endpoint, timeout_seconds=1, expected_statuses=[200], resolver=resolving_to())
    assert result.error == "the host name does not resolve"


def test_a_target_must_be_a_private_address(upstream):
    endpoint = target_endpoint("127.0.0.1", upstream.port, "/health")
    refused = probe(endpoint, timeout_seconds=1, expected_statuses=[200])
    assert refused.error == "address not allowed: not a private address"
    assert upstream.requests == []
    assert probe(endpoint, timeout_seconds=1, expected_statuses=[200], allow_loopback=True).success


def test_https_to_a_server_without_tls_fails_with_a_tls_error(upstream):
    endpoint = url_endpoint(f"https://127.0.0.1:{upstream.port}", "/health")
    result = probe(endpoint, timeout_seconds=1, expected_statuses=[200], allow_loopback=True)
    assert not result.success and result.error.startswith("TLS handshake failed")
