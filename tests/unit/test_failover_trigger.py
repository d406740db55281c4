"""Alarm state changes -> one workflow execution per change, under a deterministic name."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from control_plane.handlers.failover import initial_state, moved_message, normalise_trigger
from control_plane.handlers.failover_trigger import (
    Change,
    execution_arn,
    execution_name,
    workflow_input,
)

EVENT = {
    "version": "0", "id": "e1", "detail-type": "CloudWatch Alarm State Change",
    "source": "aws.cloudwatch", "time": "2030-01-01T00:00:05Z",
    "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:turnout-pay.primary"],
    "detail": {
        "alarmName": "turnout-pay.primary",
        "state": {"value": "ALARM", "reason": "Threshold Crossed",
                  "timestamp": "2030-01-01T00:00:04.500+0000"},
        "previousState": {"value": "OK", "timestamp": "2029-12-31T23:00:00.000+0000"},
    },
}
NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:turnout-failover"


def change(**detail) -> Change:
    event = {**EVENT, "detail": {**EVENT["detail"], **detail}}
    parsed = Change.from_event(event)
    assert parsed is not None
    return parsed


def test_alarm_event_is_read_as_cloudwatch_publishes_it():
    parsed = change()
    assert (parsed.source, parsed.alarm_name, parsed.state, parsed.note) == (
        "alarm", "turnout-pay.primary", "ALARM", "Threshold Crossed")
    assert parsed.alarm_arn.endswith(":alarm:turnout-pay.primary")
    assert parsed.time == "2030-01-01T00:00:04.500+0000"


def test_the_same_state_change_always_gets_the_same_execution_name():
    assert execution_name("pay", change()) == execution_name("pay", change())
    assert NAME.match(execution_name("pay", change()))


def test_another_state_or_another_change_gets_another_name():
    first = execution_name("pay", change())
    ok = execution_name("pay", change(state={"value": "OK",
                                             "timestamp": "2030-01-01T00:00:04.500+0000"}))
    later = execution_name("pay", change(state={"value": "ALARM",
                                                "timestamp": "2030-01-01T00:09:00.000+0000"}))
    assert len({first, ok, later}) == 3


def test_execution_names_fit_step_functions_for_the_longest_route_id():
    assert NAME.match(execution_name("r" * 63, change()))


def test_execution_arn_is_the_one_step_functions_gives():
    assert execution_arn(MACHINE, "pay-alarm-1") == (
        "arn:aws:states:us-east-1:123456789012:execution:turnout-failover:pay-alarm-1")


def test_prober_verdict_event_is_a_change_of_its_route_and_upstream():
    event = {"source": "turnout", "detail-type": "Upstream Health Changed",
             "detail": {"route_id": "pay", "upstream": "primary", "healthy": False,
                        "message": "connection refused", "time": "2030-01-01T00:00:02.000Z"}}
    parsed = Change.from_event(event)
    assert (parsed.source, parsed.route_id, parsed.upstream, parsed.state) == (
        "health", "pay", "primary", "UNHEALTHY")
    name = execution_name("pay", parsed)
    assert name.startswith("pay-down-") and name != execution_name("pay", change())
    assert workflow_input("pay", "primary", parsed, "arn:x", datetime(2030, 1, 1, tzinfo=UTC))[
        "trigger"]["type"] == "health"


def test_not_an_alarm_event_is_none():
    assert Change.from_event({"detail": {}}) is None
    assert Change.from_event({"source": "turnout"}) is None


def test_workflow_input_is_ready_for_the_lock():
    now = datetime(2030, 1, 1, tzinfo=UTC)
    document = workflow_input("pay", "primary", change(), execution_arn(MACHINE, "n"), now)
    assert document["lock"] == {"owner": execution_arn(MACHINE, "n"),
                                "now": str(int(now.timestamp())),
                                "expires_at": str(int(now.timestamp()) + 120)}
    assert document["trigger"]["alarm_name"] == "turnout-pay.primary"
    assert document["decision"]["spec_hash"] is None  # every path the workflow reads exists


def test_trigger_is_normalised_with_every_field_present():
    trigger = normalise_trigger({"type": "manual", "target": "b", "extra": "dropped"})
    assert trigger == {"type": "manual", "upstream": None, "state": None, "alarm_name": None,
                       "time": None, "target": "b", "force": False, "requested_by": None,
                       "note": None}
    assert normalise_trigger(None)["type"] == "alarm"


def test_initial_state_has_what_every_failure_path_reads():
    state = initial_state("pay", {"type": "manual"}, "arn:x", datetime(2030, 1, 1, tzinfo=UTC))
    for key in ("spec_hash", "kind", "from", "to", "action"):
        assert key in state["decision"]
    assert state["attempts"] == {"n": 0}


def test_status_message_names_the_new_upstream_only_when_it_named_the_old_one():
    message = "Serving GET /pay from upstream 'primary'."
    assert moved_message(message, "primary", "backup") == "Serving GET /pay from upstream 'backup'."
    assert moved_message("something else", "primary", "backup") is None
    assert moved_message(None, "primary", "backup") is None
