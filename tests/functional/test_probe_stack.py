"""The template's prober: a function on a one-minute schedule, with a least-privilege role."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from local_cloud import patches
from local_cloud.deployer import deploy_stack
from local_cloud.emulator import Emulator

TEMPLATE = Path(__file__).resolve().parents[2] / "cloudformation" / "turnout.yaml"


@pytest.mark.slow  # a whole-template deploy
def test_the_stack_runs_the_prober_every_minute_with_its_own_role(aws):
    Emulator.attach(aws.url)
    patches.apply_patches()
    outputs = deploy_stack(TEMPLATE, endpoint_url=aws.url)

    lambda_ = aws.client("lambda")
    function = lambda_.get_function_configuration(FunctionName="turnout-probe")
    assert function["Handler"] == "control_plane.handlers.probe.handler"
    assert function["Timeout"] == 60
    variables = function["Environment"]["Variables"]
    assert variables["ROUTES_TABLE"] == outputs["RoutesTableName"]
    assert variables["STATE_TABLE"] == outputs["StateTableName"]
    assert variables["EVENT_BUS_NAME"] == outputs["EventBusName"]
    assert "TURNOUT_METRICS_MODE" not in variables  # embedded metric format on AWS
    invoke_config = lambda_.get_function_event_invoke_config(FunctionName="turnout-probe")
    assert invoke_config["MaximumRetryAttempts"] == 0

    events = aws.client("events")
    [rule] = [r for r in events.list_rules()["Rules"] if r.get("ScheduleExpression") == (
        "rate(1 minute)")]
    [target] = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == function["FunctionArn"]
    policy = json.loads(lambda_.get_policy(FunctionName="turnout-probe")["Policy"])
    assert any(s["Principal"] == {"Service": "events.amazonaws.com"}
               for s in policy["Statement"])

    iam = aws.client("iam")
    role_name = function["Role"].rsplit("/", 1)[1]
    [probe_policy] = [_document(iam.get_role_policy(RoleName=role_name, PolicyName=name))
                      for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]]
    statements = {s["Sid"]: s for s in probe_policy["Statement"]}
    assert statements["PutHealthMetric"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "Turnout"}}
    assert all(s["Resource"] != "*" for sid, s in statements.items() if sid != "PutHealthMetric")
    reconcile_role = lambda_.get_function_configuration(
        FunctionName="turnout-reconcile")["Role"].rsplit("/", 1)[1]
    alarms = _document(iam.get_role_policy(RoleName=reconcile_role, PolicyName="upstream-alarms"))
    [statement] = alarms["Statement"]
    assert "cloudwatch:PutMetricAlarm" in statement["Action"]
    assert statement["Resource"] == "arn:aws:cloudwatch:us-east-1:123456789012:alarm:turnout-*"


def _document(response: dict) -> dict:
    """The policy document (moto returns a role's inline ``Policies`` as a Python repr)."""
    document = response["PolicyDocument"]
    return ast.literal_eval(document) if isinstance(document, str) else document
