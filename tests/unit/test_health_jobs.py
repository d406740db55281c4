"""What the prober probes for a route: the health path under each upstream's URL, every target."""

from __future__ import annotations

import pytest

from control_plane.health.jobs import jobs_for, url_endpoint
from control_plane.model.route import Route


@pytest.mark.parametrize(("url", "path", "expected"), [
    ("https://api.example", "/health", ("https", "api.example", 443, "/health")),
    ("https://api.example/v2", "/health", ("https", "api.example", 443, "/v2/health")),
    ("https://api.example/v2/", "/", ("https", "api.example", 443, "/v2/")),
    ("http://127.0.0.1:9001", "/ping?full=1", ("http", "127.0.0.1", 9001, "/ping?full=1")),
    ("https://[2001:db8::1]:8443/base", "/h", ("https", "2001:db8::1", 8443, "/base/h")),
])
def test_health_path_is_requested_under_the_upstream_url(url, path, expected):
    endpoint = url_endpoint(url, path)
    assert (endpoint.scheme, endpoint.host, endpoint.port, endpoint.path) == expected
    assert endpoint.key == url and not endpoint.is_target


def test_every_upstream_of_a_route_is_a_job_with_the_routes_health_check():
    route = Route.model_validate({
        "route_id": "orders", "path": "/orders",
        "upstreams": [{"name": "blue", "priority": 0,
                       "targets": [{"ip": "10.0.1.12", "port": 8443},
                                   {"ip": "fd00::12", "port": 8443}]},
                      {"name": "green", "priority": 1, "targets": [{"ip": "10.0.2.7", "port": 80}]}],
        "health_check": {"path": "/ready", "interval_seconds": 5, "timeout_ms": 2000,
                         "unhealthy_threshold": 2, "healthy_threshold": 3,
                         "expected_statuses": [200, 204]},
    })
    blue, green = jobs_for(route)
    assert (blue.route_id, blue.upstream, blue.kind) == ("orders", "blue", "targets")
    assert [e.key for e in blue.endpoints] == ["10.0.1.12:8443", "[fd00::12]:8443"]
    assert all(e.is_target and e.scheme == "http" and e.path == "/ready" for e in blue.endpoints)
    assert (blue.interval_seconds, blue.timeout_seconds) == (5.0, 2.0)
    assert (blue.unhealthy_threshold, blue.healthy_threshold) == (2, 3)
    assert blue.expected_statuses == frozenset({200, 204})
    assert blue.spec_hash == route.spec_hash() == green.spec_hash
    assert green.fingerprint == ("targets", "10.0.2.7:80")
