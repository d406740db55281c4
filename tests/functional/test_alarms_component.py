"""The reconciler keeps one CloudWatch alarm per upstream on the prober's metric."""

from __future__ import annotations

from tests.functional.stack import route


def alarms(stack) -> dict[str, dict]:
    found = stack.aws.client("cloudwatch").describe_alarms(AlarmNamePrefix="turnout-")
    return {a["AlarmName"]: a for a in found["MetricAlarms"]}


def tags(stack, alarm: dict) -> dict[str, str]:
    raw = stack.aws.client("cloudwatch").list_tags_for_resource(ResourceARN=alarm["AlarmArn"])
    return {t["Key"]: t["Value"] for t in raw["Tags"]}


def cloudwatch_writes(harness) -> list[str]:
    return [c for c in harness.calls if c.startswith("cloudwatch.")
            and not c.split(".", 1)[1].startswith(("Describe", "List", "Get"))]


def test_each_upstream_gets_an_alarm_on_its_health_metric(stack, harness):
    stack.put_route(route("payments", "/payments", "https://a.example", "https://b.example",
                          health_check={"interval_seconds": 5, "timeout_ms": 1000}))
    harness.run()

    found = alarms(stack)
    assert set(found) == {"turnout-payments.u0", "turnout-payments.u1"}
    alarm = found["turnout-payments.u0"]
    assert alarm["Namespace"] == "Turnout" and alarm["MetricName"] == "UpstreamHealthy"
    assert alarm["Dimensions"] == [{"Name": "Route", "Value": "payments"},
                                   {"Name": "Upstream", "Value": "u0"}]
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Minimum", 10, 1.0)
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (1, 1)
    assert alarm["TreatMissingData"] == "missing"
    assert tags(stack, alarm) == {"turnout:route-id": "payments", "turnout:upstream": "u0",
                                  "turnout:rest-api-id": stack.rest_api_id}
    assert stack.status("payments")["phase"] == "READY"


def test_a_longer_probe_interval_gets_a_period_that_holds_a_probe(stack, harness):
    stack.put_route(route("slow", "/slow", "https://a.example",
                          health_check={"interval_seconds": 45, "timeout_ms": 5000}))
    harness.run()
    assert alarms(stack)["turnout-slow.u0"]["Period"] == 60


def test_an_unchanged_route_makes_no_alarm_writes(stack, harness):
    doc = route("payments", "/payments", "https://a.example")
    stack.put_route(doc)
    harness.run()
    assert cloudwatch_writes(harness) == ["cloudwatch.PutMetricAlarm"]

    stack.put_route(doc)
    harness.run()
    assert cloudwatch_writes(harness) == []
    assert harness.resync()["writes"] == 0


def test_changed_health_check_updates_the_alarm_and_a_removed_upstream_loses_its_alarm(
        stack, harness):
    stack.put_route(route("svc", "/svc", "https://a.example", "https://b.example"))
    harness.run()
    stack.put_route(route("svc", "/svc", "https://a.example",
                          health_check={"interval_seconds": 30, "timeout_ms": 5000}))
    harness.run()

    assert {n: a["Period"] for n, a in alarms(stack).items()} == {"turnout-svc.u0": 30}
    assert sorted(cloudwatch_writes(harness)) == ["cloudwatch.DeleteAlarms",
                                                   "cloudwatch.PutMetricAlarm"]


def test_alarm_changed_by_hand_is_repaired_by_the_next_resync(stack, harness):
    stack.put_route(route("svc", "/svc", "https://a.example"))
    harness.run()
    cloudwatch = stack.aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(**{**{k: alarms(stack)["turnout-svc.u0"][k] for k in (
        "AlarmName", "Namespace", "MetricName", "Dimensions", "Statistic", "Period",
        "EvaluationPeriods", "ComparisonOperator", "TreatMissingData")},
        "Threshold": 0.5})

    harness.resync()

    assert alarms(stack)["turnout-svc.u0"]["Threshold"] == 1.0


def test_deleting_a_route_deletes_its_alarms_only(stack, harness):
    stack.put_route(route("keep", "/keep", "https://k.example"))
    stack.put_route(route("gone", "/gone", "https://g.example", "https://h.example"))
    harness.run()
    stack.delete_route("gone")
    harness.run()
    assert set(alarms(stack)) == {"turnout-keep.u0"}


def test_resync_sweeps_alarms_of_routes_that_are_gone_but_not_another_stacks(stack, harness):
    stack.put_route(route("live", "/live", "https://l.example"))
    harness.run()
    cloudwatch = stack.aws.client("cloudwatch")
    base = {"Namespace": "Turnout", "MetricName": "UpstreamHealthy", "Statistic": "Minimum",
            "Period": 10, "EvaluationPeriods": 1, "Threshold": 1.0,
            "ComparisonOperator": "LessThanThreshold"}
    cloudwatch.put_metric_alarm(AlarmName="turnout-orphan.u0", **base, Tags=[
        {"Key": "turnout:rest-api-id", "Value": stack.rest_api_id}])
    cloudwatch.put_metric_alarm(AlarmName="turnout-elsewhere.u0", **base, Tags=[
        {"Key": "turnout:rest-api-id", "Value": "another-stacks-api"}])
    cloudwatch.put_metric_alarm(AlarmName="my-own-alarm", **base)

    harness.resync()

    assert set(alarms(stack)) == {"turnout-live.u0", "turnout-elsewhere.u0"}
    names = {a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert "my-own-alarm" in names


def test_similar_route_and_upstream_names_never_share_an_alarm(stack, harness):
    stack.put_route({"route_id": "a-b", "path": "/ab",
                     "upstreams": [{"name": "c", "url": "https://c.example", "priority": 0}]})
    stack.put_route({"route_id": "a", "path": "/a",
                     "upstreams": [{"name": "b-c", "url": "https://bc.example", "priority": 0}]})
    harness.run()
    found = alarms(stack)
    assert set(found) == {"turnout-a-b.c", "turnout-a.b-c"}
    harness.run({"action": "resync"})
    assert cloudwatch_writes(harness) == []


def test_throttled_alarm_write_fails_the_record_and_converges_on_retry(stack, harness):
    stack.put_route(route("svc", "/svc", "https://a.example"))
    event = stack.next_event()
    harness.fail_next["cloudwatch.PutMetricAlarm"] = 1
    result = harness.run(event)
    assert len(result["batchItemFailures"]) == 1

    harness.run(event)
    assert set(alarms(stack)) == {"turnout-svc.u0"}
    assert stack.status("svc")["phase"] == "READY"
