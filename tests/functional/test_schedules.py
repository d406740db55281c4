"""Scheduled EventBridge rules fire in the local cloud, with AWS's scheduled event."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from local_cloud.runtime import LocalCloud
from local_cloud.schedules import ScheduleRunner
from tests.functional import sample_handlers
from tests.functional.test_local_cloud import _function, _queue


@pytest.fixture
def cloud(aws):
    sample_handlers.forget()
    local = LocalCloud(template_path=None, emulator_url=aws.url, poll_interval_seconds=0.05)
    local.start()
    yield local
    local.stop()


def _wait_for(condition, timeout: float = 8.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_a_rate_rule_fires_its_lambda_target_soon_after_start_with_the_scheduled_event(
        aws, cloud):
    function = _function(aws, "ticker", "keep_event")
    events = aws.client("events")
    rule_arn = events.put_rule(Name="every-minute", ScheduleExpression="rate(1 minute)")["RuleArn"]
    events.put_targets(Rule="every-minute", Targets=[{"Id": "fn", "Arn": function}])

    [event] = _wait_for(lambda: sample_handlers.received("ticker"))

    assert event["source"] == "aws.events"
    assert event["detail-type"] == "Scheduled Event"
    assert event["resources"] == [rule_arn]
    assert event["detail"] == {}
    assert event["version"] == "0" and event["id"]
    assert event["account"] == "123456789012" and event["region"] == "us-east-1"
    fired = datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(fired - datetime.now(UTC)) < timedelta(minutes=1)
    time.sleep(1.2)  # more than a poll
    assert len(sample_handlers.received("ticker")) == 1  # once a minute, not once a poll


def test_a_constant_input_replaces_the_event_as_for_the_resync_schedule(aws, cloud):
    function = _function(aws, "resync", "keep_event")
    events = aws.client("events")
    events.put_rule(Name="resync", ScheduleExpression="rate(5 minutes)")
    events.put_targets(Rule="resync", Targets=[
        {"Id": "fn", "Arn": function, "Input": '{"action": "resync"}'}])

    assert _wait_for(lambda: sample_handlers.received("resync")) == [{"action": "resync"}]


def test_disabled_and_pattern_rules_do_not_fire(aws, cloud):
    function = _function(aws, "quiet", "keep_event")
    events = aws.client("events")
    events.put_rule(Name="off", ScheduleExpression="rate(1 minute)", State="DISABLED")
    events.put_rule(Name="pattern", EventPattern=json.dumps({"source": ["turnout"]}))
    for rule in ("off", "pattern"):
        events.put_targets(Rule=rule, Targets=[{"Id": "fn", "Arn": function}])
    loud = _function(aws, "loud", "keep_event")
    events.put_rule(Name="on", ScheduleExpression="rate(1 minute)")
    events.put_targets(Rule="on", Targets=[{"Id": "fn", "Arn": loud}])

    _wait_for(lambda: sample_handlers.received("loud"))
    assert sample_handlers.received("quiet") == []


def test_a_long_running_scheduled_function_holds_up_no_other_delivery(aws, cloud):
    sleeper = _function(aws, "sleeper", "sleep", Timeout=30)
    quick = _function(aws, "quick", "keep_event")
    events = aws.client("events")
    events.put_rule(Name="long-job", ScheduleExpression="rate(1 minute)")
    events.put_targets(Rule="long-job", Targets=[
        {"Id": "fn", "Arn": sleeper, "Input": '{"seconds": 10}'}])
    _wait_for(lambda: sample_handlers.received("sleeper"))
    events.create_event_bus(Name="turnout-events")
    events.put_rule(Name="ready", EventBusName="turnout-events",
                    EventPattern=json.dumps({"source": ["turnout"]}))
    events.put_targets(Rule="ready", EventBusName="turnout-events",
                       Targets=[{"Id": "fn", "Arn": quick}])

    events.put_events(Entries=[{"Source": "turnout", "DetailType": "Route Ready",
                                "EventBusName": "turnout-events", "Detail": "{}"}])

    assert cloud.wait_idle(5)
    assert len(sample_handlers.received("quick")) == 1


def test_rate_rules_fire_every_period_and_cron_rules_at_their_times(aws):
    sqs_url, sqs_arn = _queue(aws, "ticks")
    events = aws.client("events")
    for name, expression in (("rate", "rate(1 minute)"), ("cron", "cron(30 12 * * ? *)")):
        events.put_rule(Name=name, ScheduleExpression=expression)
        events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": sqs_arn}])
    clock = [datetime(2026, 12, 4, 12, 28, 10, tzinfo=UTC)]
    runner = ScheduleRunner(aws.url, dispatcher=None, now=lambda: clock[0])

    fired = {}
    for seconds in (0, 1, 30, 61, 121, 140, 181):
        clock[0] = datetime(2026, 12, 4, 12, 28, 10, tzinfo=UTC) + timedelta(seconds=seconds)
        fired[seconds] = runner.tick()

    assert fired == {0: 0, 1: 1, 30: 0, 61: 1, 121: 2, 140: 0, 181: 1}  # 121: 12:30:11
    bodies = []
    while messages := aws.client("sqs").receive_message(
            QueueUrl=sqs_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            aws.client("sqs").delete_message(QueueUrl=sqs_url,
                                             ReceiptHandle=message["ReceiptHandle"])
    times = sorted((b["resources"][0].rsplit("/", 1)[1], b["time"]) for b in bodies)
    assert times == [("cron", "2026-12-04T12:30:00Z"), ("rate", "2026-12-04T12:28:11Z"),
                     ("rate", "2026-12-04T12:29:11Z"), ("rate", "2026-12-04T12:30:11Z"),
                     ("rate", "2026-12-04T12:31:11Z")]
