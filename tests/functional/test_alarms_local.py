"""The local cloud evaluates CloudWatch alarms from metric data, as CloudWatch does, and
publishes AWS's state-change event on the default bus."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest

from local_cloud.alarms import AlarmEvaluator
from local_cloud.runtime import LocalCloud

ALARM_NAME = "turnout-payments.primary"
DIMENSIONS = [{"Name": "Route", "Value": "payments"}, {"Name": "Upstream", "Value": "primary"}]
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000")


@pytest.fixture
def alarm_events(aws) -> str:
    """A queue that a default-bus rule fills with every alarm state change, as a user would."""
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="alarm-changes")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    events = aws.client("events")
    events.put_rule(Name="alarm-changes", EventPattern=json.dumps({
        "source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]}))
    events.put_targets(Rule="alarm-changes", Targets=[{"Id": "q", "Arn": arn}])
    return url


def received(aws, queue_url: str) -> list[dict]:
    sqs = aws.client("sqs")
    out = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            return out
        for message in messages:
            out.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def put_alarm(aws, **changes) -> None:
    aws.client("cloudwatch").put_metric_alarm(**{
        "AlarmName": ALARM_NAME, "AlarmDescription": "primary is unhealthy",
        "Namespace": "Turnout", "MetricName": "UpstreamHealthy", "Dimensions": DIMENSIONS,
        "Statistic": "Minimum", "Period": 10, "EvaluationPeriods": 1, "DatapointsToAlarm": 1,
        "Threshold": 1.0, "ComparisonOperator": "LessThanThreshold",
        "TreatMissingData": "missing", **changes})


def put_health(aws, at: datetime, value: float) -> None:
    aws.client("cloudwatch").put_metric_data(Namespace="Turnout", MetricData=[{
        "MetricName": "UpstreamHealthy", "Dimensions": DIMENSIONS, "Timestamp": at,
        "Value": value, "StorageResolution": 1}])


def state_of(aws) -> dict:
    [alarm] = aws.client("cloudwatch").describe_alarms(AlarmNames=[ALARM_NAME])["MetricAlarms"]
    return alarm


@pytest.fixture
def t0() -> datetime:
    """The start of a 10-second period two minutes ago."""
    now = int(time.time()) - 120
    return datetime.fromtimestamp(now - now % 10, UTC)


def at(t0: datetime, seconds: float) -> datetime:
    return t0 + timedelta(seconds=seconds)


def test_alarm_goes_to_alarm_and_back_to_ok_and_each_change_is_an_aws_shaped_event(
        aws, alarm_events, t0):
    put_alarm(aws)
    evaluator = AlarmEvaluator(aws.url)
    assert evaluator.evaluate_once(at(t0, 0.6)) == []
    assert state_of(aws)["StateValue"] == "INSUFFICIENT_DATA"  # as AWS starts an alarm

    put_health(aws, at(t0, 1), 1.0)
    put_health(aws, at(t0, 5), 0.0)   # the prober judged the upstream unhealthy
    assert [c.state for c in evaluator.evaluate_once(at(t0, 10.6))] == ["ALARM"]
    put_health(aws, at(t0, 12), 1.0)
    put_health(aws, at(t0, 19), 1.0)
    assert [c.state for c in evaluator.evaluate_once(at(t0, 20.6))] == ["OK"]

    alarm = state_of(aws)
    assert alarm["StateValue"] == "OK"
    to_alarm, to_ok = received(aws, alarm_events)
    for event in (to_alarm, to_ok):
        assert event["source"] == "aws.cloudwatch"
        assert event["detail-type"] == "CloudWatch Alarm State Change"
        assert event["resources"] == [alarm["AlarmArn"]]
        assert event["region"] == "us-east-1"
        detail = event["detail"]
        assert detail["alarmName"] == ALARM_NAME
        assert TIMESTAMP.fullmatch(detail["state"]["timestamp"])
        assert TIMESTAMP.fullmatch(detail["previousState"]["timestamp"])
        assert detail["configuration"]["description"] == "primary is unhealthy"
        [metric] = detail["configuration"]["metrics"]
        assert metric["returnData"] is True and metric["id"]
        assert metric["metricStat"] == {
            "metric": {"dimensions": {"Route": "payments", "Upstream": "primary"},
                       "name": "UpstreamHealthy", "namespace": "Turnout"},
            "period": 10, "stat": "Minimum"}
    assert to_alarm["detail"]["previousState"] == {
        "value": "INSUFFICIENT_DATA", "reason": "Unchecked: Initial alarm creation",
        "timestamp": to_alarm["detail"]["previousState"]["timestamp"]}
    state = to_alarm["detail"]["state"]
    assert state["value"] == "ALARM"
    assert state["reason"].startswith(
        "Threshold Crossed: 1 out of the last 1 datapoint [0.0 (")
    reason_data = json.loads(state["reasonData"])
    assert reason_data["recentDatapoints"] == [0.0] and reason_data["threshold"] == 1.0
    assert reason_data["period"] == 10 and reason_data["statistic"] == "Minimum"
    assert to_ok["detail"]["previousState"]["value"] == "ALARM"
    assert to_ok["detail"]["previousState"]["reason"] == state["reason"]
    assert to_ok["detail"]["state"]["value"] == "OK"
    assert "was not less than the threshold" in to_ok["detail"]["state"]["reason"]


def test_a_prober_that_stops_publishing_never_raises_the_alarm(aws, alarm_events, t0):
    put_alarm(aws)
    evaluator = AlarmEvaluator(aws.url)
    put_health(aws, at(t0, 3), 1.0)
    assert [c.state for c in evaluator.evaluate_once(at(t0, 10.6))] == ["OK"]

    assert evaluator.evaluate_once(at(t0, 30.6)) == []  # a gap: the last datapoint holds
    assert [c.state for c in evaluator.evaluate_once(at(t0, 40.6))] == ["INSUFFICIENT_DATA"]
    assert [e["detail"]["state"]["value"] for e in received(aws, alarm_events)] == [
        "OK", "INSUFFICIENT_DATA"]


def test_m_out_of_n_needs_m_breaching_periods(aws, alarm_events, t0):
    put_alarm(aws, EvaluationPeriods=3, DatapointsToAlarm=2)
    evaluator = AlarmEvaluator(aws.url)
    for second, value in ((5, 1.0), (15, 0.0), (25, 1.0)):
        put_health(aws, at(t0, second), value)
    assert [c.state for c in evaluator.evaluate_once(at(t0, 30.6))] == ["OK"]
    put_health(aws, at(t0, 35), 0.0)
    assert [c.state for c in evaluator.evaluate_once(at(t0, 40.6))] == ["ALARM"]


def test_an_alarm_is_evaluated_once_per_period_not_on_every_pass(aws, alarm_events, t0):
    put_alarm(aws)
    evaluator = AlarmEvaluator(aws.url)
    put_health(aws, at(t0, 2), 1.0)
    evaluator.evaluate_once(at(t0, 10.6))
    put_health(aws, at(t0, 11), 0.0)
    assert evaluator.evaluate_once(at(t0, 15.0)) == []   # the period is not over yet
    assert [c.state for c in evaluator.evaluate_once(at(t0, 20.6))] == ["ALARM"]


def test_updating_an_alarm_keeps_its_state_as_on_aws(aws, alarm_events, t0):
    put_alarm(aws)
    evaluator = AlarmEvaluator(aws.url)
    put_health(aws, at(t0, 2), 0.0)
    evaluator.evaluate_once(at(t0, 10.6))
    received(aws, alarm_events)

    put_alarm(aws, AlarmDescription="a new description")  # moto would say OK from here
    assert evaluator.evaluate_once(at(t0, 11.0)) == []

    assert state_of(aws)["StateValue"] == "ALARM"
    assert received(aws, alarm_events) == []


def test_a_state_set_by_hand_is_announced_like_any_change(aws, alarm_events, t0):
    put_alarm(aws)
    evaluator = AlarmEvaluator(aws.url)
    put_health(aws, at(t0, 2), 1.0)
    evaluator.evaluate_once(at(t0, 10.6))
    received(aws, alarm_events)

    aws.client("cloudwatch").set_alarm_state(AlarmName=ALARM_NAME, StateValue="ALARM",
                                             StateReason="testing the failover")
    assert [c.state for c in evaluator.evaluate_once(at(t0, 12.0))] == ["ALARM"]
    [event] = received(aws, alarm_events)
    assert event["detail"]["state"]["reason"] == "testing the failover"
    assert event["detail"]["previousState"]["value"] == "OK"


def test_the_running_local_cloud_evaluates_alarms_on_its_own(aws, alarm_events):
    put_health(aws, datetime.now(UTC) - timedelta(seconds=15), 0.0)
    with LocalCloud(template_path=None, emulator_url=aws.url):
        put_alarm(aws)
        deadline = time.monotonic() + 10
        events: list[dict] = []
        while not events and time.monotonic() < deadline:
            time.sleep(0.1)
            events = received(aws, alarm_events)
    [event] = events
    assert event["detail"]["previousState"]["value"] == "INSUFFICIENT_DATA"
    assert event["detail"]["state"]["value"] == "ALARM"
    assert state_of(aws)["StateValue"] == "ALARM"
