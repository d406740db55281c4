"""What ``turnout deploy`` tells a user when a stack cannot be deployed or a deployment fails."""

from __future__ import annotations

import pytest

from control_plane.cli.change_sets import changes_rows, failure_message, not_deployable_message
from control_plane.plan.alarms import alarm_period


def _event(resource: str, status: str, reason: str = "", kind: str = "AWS::SQS::Queue") -> dict:
    return {"LogicalResourceId": resource, "ResourceStatus": status, "ResourceType": kind,
            "ResourceStatusReason": reason}


def test_failed_create_names_the_failing_resource_and_says_to_delete_the_stack():
    events = [
        _event("turnout", "CREATE_IN_PROGRESS", "User Initiated", "AWS::CloudFormation::Stack"),
        _event("ProbeFunction", "CREATE_FAILED", "Specified ReservedConcurrentExecutions for "
               "function decreases account's UnreservedConcurrentExecution below its minimum"),
        _event("RoutesTable", "CREATE_FAILED", "Resource creation cancelled"),
        _event("turnout", "ROLLBACK_COMPLETE", "", "AWS::CloudFormation::Stack"),
    ]

    message = failure_message({"StackName": "turnout", "StackStatus": "ROLLBACK_COMPLETE"},
                              events, region="eu-west-1")

    assert "ProbeFunction" in message and "UnreservedConcurrentExecution" in message
    assert "aws cloudformation delete-stack --stack-name turnout --region eu-west-1" in message


def test_cancelled_resources_are_not_blamed_when_the_real_cause_comes_later():
    events = [_event("RoutesTable", "CREATE_FAILED", "Resource creation cancelled"),
              _event("EventBus", "CREATE_FAILED", "Bus name already exists")]

    message = failure_message({"StackName": "t", "StackStatus": "ROLLBACK_COMPLETE"}, events,
                              region="us-east-1")

    assert "EventBus" in message and "RoutesTable" not in message


@pytest.mark.parametrize(("status", "advice"), [
    ("UPDATE_ROLLBACK_COMPLETE", "back on its previous template"),
    ("UPDATE_ROLLBACK_FAILED", "continue-update-rollback"),
    ("UPDATE_FAILED", "describe-stack-events"),
])
def test_failed_update_says_what_to_do_next(status, advice):
    message = failure_message({"StackName": "turnout", "StackStatus": status,
                               "StackStatusReason": "something broke"}, [], region="us-east-1")

    assert status in message and advice in message and "something broke" in message


@pytest.mark.parametrize(("status", "blocked"), [
    ("CREATE_COMPLETE", False), ("UPDATE_COMPLETE", False), ("UPDATE_ROLLBACK_COMPLETE", False),
    ("REVIEW_IN_PROGRESS", False), ("UPDATE_IN_PROGRESS", True), ("ROLLBACK_COMPLETE", True),
    ("UPDATE_ROLLBACK_FAILED", True),
])
def test_only_settled_stacks_take_a_change_set(status, blocked):
    message = not_deployable_message({"StackName": "turnout", "StackStatus": status},
                                     region="us-east-1")
    assert (message is not None) == blocked


def test_change_table_shows_replacement_only_for_modified_resources():
    rows = changes_rows({"Changes": [
        {"ResourceChange": {"Action": "Modify", "LogicalResourceId": "RoutesTable",
                            "ResourceType": "AWS::DynamoDB::Table", "Replacement": "True"}},
        {"ResourceChange": {"Action": "Add", "LogicalResourceId": "Queue",
                            "ResourceType": "AWS::SQS::Queue"}},
    ]})
    assert [(r.action, r.logical_id, r.replacement) for r in rows] == [
        ("Modify", "RoutesTable", "True"), ("Add", "Queue", "")]


@pytest.mark.parametrize(("interval", "shortest", "period"), [
    (5, 10, 10), (5, 60, 60), (15, 10, 20), (15, 30, 30), (45, 10, 60), (45, 20, 60),
    (90, 60, 120),
])
def test_alarm_period_is_at_least_the_stacks_shortest_period(interval, shortest, period):
    assert alarm_period(interval, shortest) == period
