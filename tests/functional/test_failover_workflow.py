"""The failover workflow as the template deploys it, run by moto's Step Functions interpreter.

Alarm state changes are published to the default bus as CloudWatch publishes them; health is
written to the state table as the prober writes it. Everything else is real: the EventBridge
rule, the trigger function, the state machine and its Lambda tasks, the stage, the tables.
One deployment serves the module; each test has its own route.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from botocore.awsrequest import AWSResponse
from urllib3 import HTTPResponse

from tests.functional.failover_stack import FailoverStack, failover_stack, interpreter_events

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def stack(aws_server, tmp_path_factory) -> Iterator[FailoverStack]:
    aws_server.reset()
    with failover_stack(aws_server, tmp_path_factory.mktemp("failover")) as deployed:
        yield deployed


def route(route_id: str, *, mode: str = "direct", **failover) -> dict:
    return {
        "route_id": route_id, "path": f"/{route_id}/{{proxy+}}", "methods": ["GET"],
        "mode": mode,
        "upstreams": [{"name": "primary", "url": f"https://{route_id}-a.example", "priority": 0},
                      {"name": "backup", "url": f"https://{route_id}-b.example/v2",
                       "priority": 1}],
        "health_check": {"interval_seconds": 1, "timeout_ms": 500, "unhealthy_threshold": 2,
                         "healthy_threshold": 2},
        "failover": {"min_hold_seconds": 0, **failover},
    }


def primary_down(stack: FailoverStack, route_id: str) -> None:
    stack.set_health(route_id, "primary", False, failures=2)
    stack.set_health(route_id, "backup", True, successes=5)


def events_of(stack: FailoverStack, route_id: str) -> list[dict]:
    return [e for e in stack.events() if e["detail"].get("route_id") == route_id]


def executions_of(stack: FailoverStack, route_id: str) -> list[dict]:
    return stack.wait_for_executions(route_id)


def decisions(stack: FailoverStack, execution_arn: str) -> list[dict]:
    """What every ``Decide`` step of the execution returned, from its history."""
    out = []
    for event in stack.history(execution_arn):
        details = event.get("lambdaFunctionSucceededEventDetails")
        if details:
            output = json.loads(details["output"])
            if "action" in output and "reason" in output:
                out.append(output)
    return out


def test_alarm_on_the_active_primary_moves_the_stage_variable_to_the_secondary(stack):
    stack.serve(route("pay"))
    assert stack.stage_variables()["pay"] == "pay-a.example"
    primary_down(stack, "pay")

    stack.alarm("pay", "primary", "ALARM")
    [execution] = executions_of(stack, "pay")

    assert execution["status"] == "SUCCEEDED"
    assert stack.stage_variables()["pay"] == "pay-b.example/v2"
    status = stack.status("pay")
    assert status["active_upstream"] == "backup"
    assert status["active_url"] == "https://pay-b.example/v2"
    assert status["message"].endswith("from upstream 'backup'.")
    [audit] = stack.audit("pay")
    assert (audit["from_upstream"], audit["to_upstream"], audit["switch_kind"]) == (
        "primary", "backup", "failover")
    assert audit["who"] == "alarm turnout-pay.primary"
    assert audit["trigger_alarm"] == "turnout-pay.primary"
    assert audit["execution_arn"] == execution["executionArn"]
    assert "'primary' is unhealthy" in audit["why"]
    assert [e["detail-type"] for e in events_of(stack, "pay")] == [
        "Failover Started", "Failover Completed"]  # each validated against its schema
    completed = events_of(stack, "pay")[-1]["detail"]
    assert (completed["from_upstream"], completed["to_upstream"], completed["mode"]) == (
        "primary", "backup", "direct")
    assert completed["execution_arn"] == execution["executionArn"]


def test_execution_history_says_why_traffic_moved(stack):
    stack.serve(route("why"))
    primary_down(stack, "why")

    stack.alarm("why", "primary", "ALARM")
    [execution] = executions_of(stack, "why")

    [decided] = decisions(stack, execution["executionArn"])
    assert decided["action"] == "switch" and decided["reason"] == "ActiveUpstreamUnhealthy"
    assert "2 consecutive failed probes" in decided["message"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in stack.history(
        execution["executionArn"]) if "stateEnteredEventDetails" in e]
    assert entered == ["Start", "Lock", "Decide", "WhatNow", "AnnounceStart", "Switch", "Audit",
                       "AnnounceSwitch", "Unlock", "Done"]
    output = json.loads(execution["output"])
    assert output["reason"] == "ActiveUpstreamUnhealthy"
    assert (output["from_upstream"], output["to_upstream"]) == ("primary", "backup")
    assert output["trigger"]["alarm_name"] == "turnout-why.primary"


def contend(stack: FailoverStack, route_id: str, changes: int) -> list[dict]:
    """``changes`` distinct alarm state changes at once: as many executions race for the lock."""
    stack.serve(route(route_id))
    primary_down(stack, route_id)
    for i in range(changes):
        stack.alarm(route_id, "primary", "ALARM",
                    timestamp=f"2030-01-01T00:00:{i:02d}.000+0000")
    return executions_of(stack, route_id)


def assert_one_switch(stack: FailoverStack, route_id: str) -> None:
    assert len(stack.audit(route_id)) == 1
    assert stack.stage_variables()[route_id] == f"{route_id}-b.example/v2"
    completed = [e for e in events_of(stack, route_id) if e["detail-type"] == "Failover Completed"]
    assert len(completed) == 1
    record = stack.item(route_id, "failover")
    assert "lock_owner" not in record and "pending_since" not in record


def test_fifty_deliveries_of_an_alarm_at_once_make_exactly_one_switch(stack):
    stack.serve(route("dup"))
    primary_down(stack, "dup")

    stack.alarm("dup", "primary", "ALARM", timestamp="2030-01-01T00:00:00.000+0000", copies=50)

    [execution] = executions_of(stack, "dup")  # one state change, one execution name
    assert execution["status"] == "SUCCEEDED"
    assert_one_switch(stack, "dup")


def test_concurrent_alarm_changes_for_one_route_make_exactly_one_switch(stack):
    executions = contend(stack, "race", 10)

    assert len(executions) == 10
    assert all(e["status"] == "SUCCEEDED" for e in executions)
    handed_over = [e for e in executions
                   if json.loads(e["output"])["outcome"] == "HandedToLockHolder"]
    assert handed_over, "the executions that found the lock held left the route to its holder"
    assert_one_switch(stack, "race")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_fifty_distinct_alarm_changes_at_once_make_exactly_one_switch(stack):
    executions = contend(stack, "burst", 50)

    assert len(executions) == 50
    assert all(e["status"] == "SUCCEEDED" for e in executions)
    assert_one_switch(stack, "burst")


def test_prober_verdict_moves_traffic_before_the_alarm_fires(stack):
    stack.serve(route("quick"))
    stack.set_health("quick", "backup", True, successes=5)

    stack.verdict("quick", "primary", healthy=False)
    [execution] = executions_of(stack, "quick")

    assert execution["status"] == "SUCCEEDED"
    assert stack.stage_variables()["quick"] == "quick-b.example/v2"
    [audit] = stack.audit("quick")
    assert audit["who"] == "prober: upstream 'primary' unhealthy"
    assert "trigger_alarm" not in audit


def test_alarm_for_the_standby_upstream_moves_nothing(stack):
    stack.serve(route("standby"))
    stack.set_health("standby", "primary", True, successes=9)
    stack.set_health("standby", "backup", False, failures=4)

    stack.alarm("standby", "backup", "ALARM")
    [execution] = executions_of(stack, "standby")

    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["reason"] == "ActiveUpstreamHealthy"
    assert stack.stage_variables()["standby"] == "standby-a.example"
    assert stack.audit("standby") == []
    assert events_of(stack, "standby") == []


def test_stale_alarm_for_a_healthy_primary_moves_nothing(stack):
    stack.serve(route("stale"))
    stack.set_health("stale", "primary", True, successes=3)
    stack.set_health("stale", "backup", True, successes=3)

    stack.alarm("stale", "primary", "ALARM")
    [execution] = executions_of(stack, "stale")

    assert json.loads(execution["output"])["reason"] == "ActiveUpstreamHealthy"
    assert stack.status("stale")["active_upstream"] == "primary"


def test_failback_waits_for_the_hold_time_then_moves_traffic_back(stack):
    stack.serve(route("back", min_hold_seconds=3))
    primary_down(stack, "back")
    stack.alarm("back", "primary", "ALARM")
    executions_of(stack, "back")
    assert stack.status("back")["active_upstream"] == "backup"

    stack.set_health("back", "primary", True, successes=2)
    stack.alarm("back", "primary", "OK")
    [waiting] = stack.running("back")
    stack.wait_for_state(waiting["executionArn"], "WaitToLookAgain")
    assert stack.status("back")["active_upstream"] == "backup"  # held: no failback yet

    executions = executions_of(stack, "back")
    [failback] = [e for e in executions if json.loads(e["input"])["trigger"]["state"] == "OK"]
    assert failback["status"] == "SUCCEEDED"
    reasons = [d["reason"] for d in decisions(stack, failback["executionArn"])]
    assert reasons[0] == "HoldTime" and reasons[-1] == "BetterUpstreamHealthy"
    assert stack.stage_variables()["back"] == "back-a.example"
    assert stack.status("back")["active_upstream"] == "primary"
    assert [a["switch_kind"] for a in stack.audit("back")] == ["failover", "failback"]
    kinds = [e["detail-type"] for e in events_of(stack, "back")]
    assert kinds[-1] == "Failback Completed"
    completed = events_of(stack, "back")[-1]["detail"]
    assert (completed["from_upstream"], completed["to_upstream"]) == ("backup", "primary")


def test_failback_waits_for_healthy_threshold_good_probes(stack):
    stack.serve(route("rise"))
    primary_down(stack, "rise")
    stack.alarm("rise", "primary", "ALARM")
    executions_of(stack, "rise")

    stack.set_health("rise", "primary", True, successes=1)  # healthy_threshold is 2
    stack.alarm("rise", "primary", "OK")
    [waiting] = stack.running("rise")
    stack.wait_for_state(waiting["executionArn"], "WaitToLookAgain")
    assert stack.status("rise")["active_upstream"] == "backup"
    stack.set_health("rise", "primary", True, successes=2)

    stack.wait_for_executions("rise")
    reasons = [d["reason"] for d in decisions(stack, waiting["executionArn"])]
    assert reasons[0] == "HealthyThreshold" and reasons[-1] == "BetterUpstreamHealthy"
    assert stack.status("rise")["active_upstream"] == "primary"


def test_every_upstream_down_keeps_traffic_and_is_announced_once(stack):
    stack.serve(route("dark"))
    stack.set_health("dark", "primary", False, failures=3)
    stack.set_health("dark", "backup", False, failures=3)

    stack.alarm("dark", "primary", "ALARM")
    executions_of(stack, "dark")
    stack.alarm("dark", "backup", "ALARM")
    stack.alarm("dark", "primary", "ALARM", timestamp="2030-01-01T00:00:00.000+0000")
    executions = executions_of(stack, "dark")

    assert len(executions) == 3 and all(e["status"] == "SUCCEEDED" for e in executions)
    assert stack.stage_variables()["dark"] == "dark-a.example"  # fail static
    assert stack.audit("dark") == []
    announced = [e for e in events_of(stack, "dark")
                 if e["detail-type"] == "All Upstreams Unhealthy"]
    assert len(announced) == 1
    assert announced[0]["detail"]["active_upstream"] == "primary"
    assert [u["healthy"] for u in announced[0]["detail"]["upstreams"]] == [False, False]

    stack.set_health("dark", "backup", True, successes=2)  # one recovers: the next outage counts
    stack.alarm("dark", "backup", "OK")
    executions_of(stack, "dark")
    assert "all_unhealthy_since" not in stack.item("dark", "failover")


def test_route_with_automatic_false_moves_only_by_hand(stack):
    stack.serve(route("manual", automatic=False))
    primary_down(stack, "manual")

    stack.alarm("manual", "primary", "ALARM")
    [automatic] = executions_of(stack, "manual")
    assert json.loads(automatic["output"])["reason"] == "AutomaticFailoverDisabled"
    assert stack.stage_variables()["manual"] == "manual-a.example"

    arn = stack.start_manual("manual", "backup", note="maintenance")
    [by_hand] = [e for e in executions_of(stack, "manual") if e["executionArn"] == arn]
    assert by_hand["status"] == "SUCCEEDED"
    assert stack.stage_variables()["manual"] == "manual-b.example/v2"
    [audit] = stack.audit("manual")
    assert (audit["switch_kind"], audit["who"], audit["to_upstream"]) == (
        "manual", "tester", "backup")
    assert stack.item("manual", "failover")["manual_choice"] == "backup"


def test_manual_switch_to_an_unhealthy_upstream_is_refused_unless_forced(stack):
    stack.serve(route("careful"))
    stack.set_health("careful", "primary", True, successes=3)
    stack.set_health("careful", "backup", False, failures=3)

    refused = stack.start_manual("careful", "backup")
    stack.wait_for_executions("careful")
    forced = stack.start_manual("careful", "backup", force=True)
    by_arn = {e["executionArn"]: e for e in executions_of(stack, "careful")}

    assert json.loads(by_arn[refused]["output"])["reason"] == "TargetUnhealthy"
    assert json.loads(by_arn[forced]["output"])["reason"] == "ManualSwitch"
    assert stack.status("careful")["active_upstream"] == "backup"


def test_proxy_route_fails_over_through_the_status_the_data_plane_reads(stack):
    stack.serve(route("prox", mode="proxy"))
    assert stack.status("prox")["phase"] == "READY"
    primary_down(stack, "prox")

    stack.alarm("prox", "primary", "ALARM")
    [execution] = executions_of(stack, "prox")

    assert execution["status"] == "SUCCEEDED"
    assert stack.status("prox")["active_upstream"] == "backup"
    [audit] = stack.audit("prox")
    assert audit["mode"] == "proxy" and audit["changed"] == ["status.active_upstream"]
    completed = events_of(stack, "prox")[-1]
    assert completed["detail-type"] == "Failover Completed"
    assert completed["detail"]["mode"] == "proxy"


# ---- the operator's commands ----------------------------------------------------------------


def turnout(stack: FailoverStack, capsys, *args: str) -> tuple[int, str, str]:
    from control_plane.cli import main

    capsys.readouterr()
    code = main([*args, "--endpoint-url", stack.aws.url])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_turnout_status_shows_health_last_probe_and_the_last_failover(stack, capsys):
    stack.serve(route("shown"))
    primary_down(stack, "shown")
    stack.alarm("shown", "primary", "ALARM")
    [execution] = executions_of(stack, "shown")

    code, out, _ = turnout(stack, capsys, "status", "shown")

    assert code == 0
    assert "active upstream:  backup  (https://shown-b.example/v2)" in out
    primary_line = next(line for line in out.splitlines() if line.strip().startswith("primary"))
    assert "unhealthy" in primary_line and "2 failed" in primary_line
    assert "from -> to: primary -> backup" in out
    assert "'primary' is unhealthy" in out
    assert "who:        alarm turnout-shown.primary" in out
    assert execution["executionArn"] in out

    code, out, _ = turnout(stack, capsys, "status", "shown", "-o", "json")
    report = json.loads(out)
    assert report["active_upstream"] == "backup"
    assert [(u["name"], u["healthy"]) for u in report["upstreams"]] == [
        ("primary", False), ("backup", True)]
    assert report["upstreams"][0]["last_probe_time"]
    assert report["last_failover"]["execution_arn"] == execution["executionArn"]
    assert (report["last_failover"]["from_upstream"], report["last_failover"]["to_upstream"]) == (
        "primary", "backup")


def test_turnout_status_lists_every_route_with_its_active_upstream(stack, capsys):
    stack.serve(route("listed"))

    code, out, _ = turnout(stack, capsys, "status")

    assert code == 0
    assert out.splitlines()[0].split() == ["ROUTE", "PHASE", "ACTIVE", "UPSTREAMS", "LAST", "SWITCH"]
    listed = next(line for line in out.splitlines() if line.startswith("listed "))
    assert listed.split()[:3] == ["listed", "READY", "primary"]
    shown = next(line for line in out.splitlines() if line.startswith("shown "))
    assert "primary->backup (failover)" in shown


def test_turnout_failover_switches_by_hand_through_the_workflow(stack, capsys):
    stack.serve(route("byhand"))
    stack.set_health("byhand", "primary", True, successes=3)
    stack.set_health("byhand", "backup", True, successes=3)

    code, out, err = turnout(stack, capsys, "failover", "byhand", "--to", "backup",
                             "--note", "primary maintenance")

    assert code == 0, err
    assert "switched byhand: primary -> backup" in out
    assert stack.stage_variables()["byhand"] == "byhand-b.example/v2"
    [audit] = stack.audit("byhand")
    assert audit["switch_kind"] == "manual"
    assert audit["who"].startswith("arn:aws:")  # the caller's identity
    [execution] = executions_of(stack, "byhand")
    assert execution["executionArn"] in out
    assert json.loads(execution["input"])["trigger"]["note"] == "primary maintenance"
    kinds = [e["detail-type"] for e in events_of(stack, "byhand")]
    assert kinds == ["Failover Started", "Failover Completed"]

    code, out, _ = turnout(stack, capsys, "failover", "byhand", "--to", "backup")
    assert code == 0 and "AlreadyActive" in out


def test_turnout_failover_to_an_unknown_upstream_starts_nothing(stack, capsys):
    stack.serve(route("typo"))

    code, _, err = turnout(stack, capsys, "failover", "typo", "--to", "bakup")

    assert code == 1
    assert "has no upstream 'bakup' (it has: primary, backup)" in err
    assert stack.executions("typo") == []


def test_turnout_failover_to_an_unhealthy_upstream_exits_1_and_says_why(stack, capsys):
    stack.serve(route("sick"))
    stack.set_health("sick", "primary", True, successes=3)
    stack.set_health("sick", "backup", False, failures=3)

    code, out, _ = turnout(stack, capsys, "failover", "sick", "--to", "backup")

    assert code == 1
    assert "not switched: TargetUnhealthy" in out and "pass --force" in out
    assert stack.status("sick")["active_upstream"] == "primary"


def test_targets_route_fails_over_by_the_listener_rule_weights(stack):
    doc = route("vpc")
    doc["upstreams"] = [
        {"name": "blue", "priority": 0, "targets": [{"ip": "10.0.1.12", "port": 8080}]},
        {"name": "green", "priority": 1, "targets": [{"ip": "10.0.2.12", "port": 8080}]},
    ]
    doc["health_check"] = {"interval_seconds": 5, "timeout_ms": 2000, "unhealthy_threshold": 2,
                           "healthy_threshold": 2}
    assert stack.serve(doc, targets=True)["phase"] == "READY"
    assert stack.rule_weights("vpc") == {"blue": 1, "green": 0}
    stack.set_health("vpc", "blue", False, failures=2)
    stack.set_health("vpc", "green", True, successes=3)

    stack.alarm("vpc", "blue", "ALARM")
    [execution] = executions_of(stack, "vpc")

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert stack.rule_weights("vpc") == {"blue": 0, "green": 1}
    assert stack.status("vpc")["active_upstream"] == "green"
    [audit] = stack.audit("vpc")
    assert audit["mode"] == "targets" and "listener rule weights" in audit["changed"]


def test_failure_inside_the_switch_announces_failover_failed_and_releases_the_lock(stack):
    stack.serve(route("broken"))
    primary_down(stack, "broken")
    apigateway = stack.aws.client("apigateway")
    apigateway.delete_stage(restApiId=stack.rest_api_id, stageName=stack.stage)  # by hand

    stack.alarm("broken", "primary", "ALARM")
    [execution] = executions_of(stack, "broken")

    assert execution["status"] == "FAILED"
    assert execution["error"] == "NotFoundException"
    [failed] = [e["detail"] for e in events_of(stack, "broken")
                if e["detail-type"] == "Failover Failed"]
    assert failed["error"] == "NotFoundException"
    assert "UpdateStage" in failed["message"] or "GetStage" in failed["message"]
    assert (failed["from_upstream"], failed["to_upstream"]) == ("primary", "backup")
    record = stack.item("broken", "failover")
    assert "lock_owner" not in record and "pending_since" not in record
    assert "Failover Completed" not in [e["detail-type"] for e in events_of(stack, "broken")]


@contextmanager
def audit_writes_denied(stack: FailoverStack, route_id: str) -> Iterator[list[str]]:
    """The state machine may not ``PutItem`` the route's items (its only ``PutItem`` is the
    audit item): AccessDenied, as IAM answers a role without that action.

    The hook sits on the DynamoDB client moto's Step Functions interpreter sends its tasks
    through; the tables and every other call stay real. Yields the refused item kinds.
    """
    refused: list[str] = []

    def deny(request, **kwargs):
        body = json.loads(request.body or b"{}")
        item = body.get("Item") or {}
        if (body.get("TableName") == stack.state_table
                and item.get("route_id", {}).get("S") == route_id):
            refused.append(item["kind"]["S"])
            message = (f"User: arn:aws:sts::123456789012:assumed-role/turnout-failover/{route_id}"
                       " is not authorized to perform: dynamodb:PutItem")
            payload = json.dumps({"__type": "com.amazon.coral.service#AccessDeniedException",
                                  "message": message}).encode()
            return AWSResponse(request.url, 400, {
                "x-amzn-RequestId": "denied", "Content-Type": "application/x-amz-json-1.0"},
                HTTPResponse(body=io.BytesIO(payload), status=400, preload_content=False))
        return None

    events = interpreter_events("dynamodb", stack.aws.region)
    events.register("before-send.dynamodb.PutItem", deny)
    try:
        yield refused
    finally:
        events.unregister("before-send.dynamodb.PutItem", deny)


def test_audit_write_failing_after_the_switch_announces_it_and_ends_switched_not_audited(stack):
    stack.serve(route("unaudited"))
    primary_down(stack, "unaudited")

    with audit_writes_denied(stack, "unaudited") as refused:
        stack.alarm("unaudited", "primary", "ALARM")
        [execution] = executions_of(stack, "unaudited")

    assert refused and all(kind.startswith("failover#") for kind in refused)
    assert stack.stage_variables()["unaudited"] == "unaudited-b.example/v2"  # traffic moved
    assert stack.status("unaudited")["active_upstream"] == "backup"
    assert stack.audit("unaudited") == []
    assert [e["detail-type"] for e in events_of(stack, "unaudited")] == [
        "Failover Started", "Failover Completed"]  # never "Failover Failed"
    completed = events_of(stack, "unaudited")[-1]["detail"]
    assert (completed["from_upstream"], completed["to_upstream"]) == ("primary", "backup")
    assert execution["status"] == "FAILED"  # an alarm on failed executions still fires
    assert execution["error"] == "SwitchedNotAudited"
    assert "audit item could not be written" in execution["cause"]
    [ending] = [json.loads(e["stateEnteredEventDetails"]["input"])
                for e in stack.history(execution["executionArn"])
                if e.get("stateEnteredEventDetails", {}).get("name") == "SwitchedNotAudited"]
    assert ending["audit_error"]["Error"] == "DynamoDB.AccessDeniedException"
    assert "lock_owner" not in stack.item("unaudited", "failover")

    stack.set_health("unaudited", "primary", True, successes=3)  # the lock is free: switch back
    arn = stack.start_manual("unaudited", "primary")
    [back] = [e for e in executions_of(stack, "unaudited") if e["executionArn"] == arn]
    assert back["status"] == "SUCCEEDED", back.get("cause")
    assert stack.stage_variables()["unaudited"] == "unaudited-a.example"
    [audit] = stack.audit("unaudited")
    assert (audit["from_upstream"], audit["to_upstream"]) == ("backup", "primary")
