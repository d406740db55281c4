"""The real prober handler against real upstreams on 127.0.0.1, on the embedded AWS."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tests.functional.probe_harness import ProbeHarness, route_doc
from tests.functional.probe_upstreams import HangingUpstream, StatusUpstream, refusing_url


@pytest.fixture
def upstreams():
    made: list = []

    def make(kind: str, status: int = 200):
        upstream = HangingUpstream() if kind == "hanging" else StatusUpstream(status)
        made.append(upstream)
        return upstream

    yield make
    for upstream in made:
        upstream.close()


@pytest.fixture
def prober(stack, monkeypatch) -> ProbeHarness:
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack.aws.url)
    return ProbeHarness(stack)


def test_dead_failing_and_hanging_upstreams_are_unhealthy_with_reasons_and_the_live_one_is_not(
        stack, prober, upstreams):
    healthy, failing, hanging = upstreams("status", 200), upstreams("status", 500), upstreams("hanging")
    stack.put_route(route_doc("shop", [("live", healthy.url), ("failing", failing.url),
                                       ("refusing", refusing_url()), ("hanging", hanging.url)],
                              path="/health"))

    summary = prober.run(seconds=2.9)

    assert summary["routes"] == 1 and summary["upstreams"] == 4
    live = prober.health("shop", "live")
    assert live["healthy"] is True and live["consecutive_failures"] == 0
    assert live["consecutive_successes"] >= 2 and "last_error" not in live
    assert live["upstream_kind"] == "url" and live["url"] == healthy.url
    assert live["targets"] == {} and live["last_probe_time"] == live["updated_at"]
    expected_errors = {"failing": "status 500", "refusing": "connection refused",
                       "hanging": "timed out after 500 ms"}
    for name, error in expected_errors.items():
        item = prober.health("shop", name)
        assert item["healthy"] is False, name
        assert item["last_error"] == error
        assert item["consecutive_failures"] >= 2 and item["consecutive_successes"] == 0
        assert item["last_change_time"] > prober.health("shop", "live")["last_change_time"]
    assert healthy.paths and set(healthy.paths) == {"/health"}
    assert hanging.accepted, "the hanging upstream was probed"

    rounds = summary["rounds"] // 4
    assert prober.metric_stats("shop", "live") == {
        "SampleCount": rounds, "Sum": rounds, "Minimum": 1.0, "Maximum": 1.0}
    for name in expected_errors:  # fall 2: the first failed probe still counts as healthy
        stats = prober.metric_stats("shop", name)
        assert stats == {"SampleCount": rounds, "Sum": 1.0, "Minimum": 0.0, "Maximum": 1.0}, name

    events = prober.health_events()
    assert sorted(e["detail"]["upstream"] for e in events) == ["failing", "hanging", "refusing"]
    for event in events:
        jsonschema.validate(event, prober.schema(),
                            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        detail = event["detail"]
        assert detail["healthy"] is False and detail["previous_healthy"] is True
        assert detail["reason"] == "UpstreamUnhealthy"
        assert detail["last_error"] == expected_errors[detail["upstream"]]
        assert detail["consecutive_failures"] == 2
        assert detail["spec_hash"] == prober.health("shop", detail["upstream"])["spec_hash"]


def test_a_hanging_upstream_does_not_delay_the_probes_of_the_others(stack, prober, upstreams):
    live, hanging = upstreams("status", 200), upstreams("hanging")
    stack.put_route(route_doc("slow", [("stuck", hanging.url)], interval=3, timeout_ms=2500))
    stack.put_route(route_doc("fast", [("live", live.url)], interval=1, timeout_ms=500))

    prober.run(seconds=4.5)

    assert len(hanging.accepted) == 1 and hanging.closed, "one probe, given up at its timeout"
    probes_while_stuck = [t for t, _, _ in live.requests if t < hanging.closed[0]]
    assert len(probes_while_stuck) >= 2  # one at a time would allow one at most
    assert prober.health("slow", "stuck")["last_error"] == "timed out after 2500 ms"
    assert prober.health("fast", "live")["healthy"] is True


def test_the_next_invocation_continues_the_failure_streak(stack, prober, upstreams):
    failing = upstreams("status", 503)
    stack.put_route(route_doc("api", [("main", failing.url)], fall=3))

    prober.run(seconds=2.3)  # two probes: not yet unhealthy
    first = prober.health("api", "main")
    assert first["healthy"] is True and first["consecutive_failures"] == 2
    assert prober.health_events() == []

    prober.run(seconds=2.2)  # one more: the third failure in a row
    second = prober.health("api", "main")
    assert second["healthy"] is False and second["consecutive_failures"] >= 3
    [event] = prober.health_events()
    assert event["detail"]["last_error"] == "status 503"
    assert event["detail"]["consecutive_failures"] == 3


def test_recovery_needs_healthy_threshold_successes_and_is_announced(stack, prober, upstreams):
    flaky = upstreams("status", 500)
    stack.put_route(route_doc("api", [("main", flaky.url)], fall=1, rise=3))
    prober.run(seconds=1.6)
    assert prober.health("api", "main")["healthy"] is False
    prober.health_events()

    flaky.status = 200
    prober.run(seconds=4.2)

    stats = prober.metric_stats("api", "main")  # the failure, two successes, then healthy
    assert stats["SampleCount"] >= 4 and stats["Sum"] == stats["SampleCount"] - 3
    item = prober.health("api", "main")
    assert item["healthy"] is True and "last_error" not in item
    [event] = prober.health_events()
    assert event["detail"]["reason"] == "UpstreamHealthy"
    assert event["detail"]["consecutive_successes"] == 3


def test_health_items_are_not_written_on_every_probe(stack, prober, upstreams):
    live = upstreams("status", 200)
    stack.put_route(route_doc("api", [("main", live.url)]))

    summary = prober.run(seconds=3.6)

    assert summary["rounds"] >= 3
    assert summary["writes"] == 2  # the first record and, at the end, the streaks
    assert summary["datapoints"] == summary["rounds"]
    assert prober.health("api", "main")["consecutive_successes"] == summary["rounds"]


def test_invalid_routes_are_skipped_and_the_valid_ones_probed(stack, prober, upstreams):
    live = upstreams("status", 200)
    stack.put_route(route_doc("good", [("main", live.url)]))
    stack.put_route({"route_id": "broken", "path": "/broken"})

    summary = prober.run(seconds=1.2)

    assert (summary["routes"], summary["skipped_routes"]) == (1, 1)
    assert prober.health("good", "main")["healthy"] is True
    assert prober.health("broken", "main") is None


def test_loopback_upstreams_are_not_probed_without_the_local_flag(stack, monkeypatch, upstreams):
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack.aws.url)
    prober = ProbeHarness(stack, loopback=False)
    live = upstreams("status", 200)
    stack.put_route(route_doc("local", [("main", live.url)]))

    summary = prober.run(seconds=1.2)

    assert summary["skipped_routes"] == 1 and live.requests == []


def test_on_aws_datapoints_are_embedded_metric_format_lines_with_exactly_the_alarms_dimensions(
        stack, monkeypatch, upstreams, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack.aws.url)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "turnout-probe")  # must not become a dimension
    prober = ProbeHarness(stack, metrics="emf")
    live = upstreams("status", 200)
    stack.put_route(route_doc("api", [("main", live.url)]))

    summary = prober.run(seconds=1.2)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()
             if '"UpstreamHealthy"' in line]
    assert len(lines) == summary["rounds"] >= 1
    emf = lines[0]
    [directive] = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Turnout"
    assert directive["Dimensions"] == [["Route", "Upstream"]]
    assert directive["Metrics"] == [{"Name": "UpstreamHealthy", "Unit": "Count",
                                     "StorageResolution": 1}]
    assert (emf["Route"], emf["Upstream"], emf["UpstreamHealthy"]) == ("api", "main", [1.0])
    assert "cloudwatch.PutMetricData" not in prober.calls


def test_targets_are_probed_one_by_one_and_recorded_for_the_local_alb(stack, prober, upstreams):
    from control_plane.model.health import UpstreamHealth

    good, bad = upstreams("status", 200), upstreams("status", 500)
    stack.put_route({
        "route_id": "orders", "path": "/orders", "methods": ["GET"],
        "upstreams": [{"name": "blue", "priority": 0,
                       "targets": [{"ip": "127.0.0.1", "port": good.port},
                                   {"ip": "127.0.0.1", "port": bad.port}]}],
        "health_check": {"path": "/ready", "interval_seconds": 5, "timeout_ms": 2000,
                         "unhealthy_threshold": 2, "healthy_threshold": 2},
    })

    summary = prober.run(seconds=2.6)

    assert summary["probes"] == 2 and summary["rounds"] == 1
    item = prober.health("orders", "blue")
    good_key, bad_key = f"127.0.0.1:{good.port}", f"127.0.0.1:{bad.port}"
    assert item["upstream_kind"] == "targets" and item["healthy"] is True
    assert item["targets"] == {good_key: "healthy", bad_key: "healthy"}  # fall 2: one failure
    assert item["target_probes"][bad_key]["consecutive_failures"] == 1
    assert item["target_probes"][bad_key]["last_error"] == "status 500"
    assert "last_error" not in item["target_probes"][good_key]
    assert "last_error" not in item  # the upstream answered through one of its targets
    assert good.paths == ["/ready"] and bad.paths == ["/ready"]
    view = UpstreamHealth.from_item(item)
    assert view.is_healthy("127.0.0.1", good.port) and view.is_healthy("127.0.0.1", bad.port)
