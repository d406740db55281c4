"""Every value of the template's per-account parameters deploys (here: into the local cloud).

The default values (WAF on, a new VPC) are what ``test_local_cloud_deploy.py`` deploys; these
tests deploy the other values and check what they change.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local_cloud import patches
from local_cloud.deployer import deploy_stack
from local_cloud.emulator import Emulator
from tests.functional.stack import route

TEMPLATE = Path(__file__).resolve().parents[2] / "cloudformation" / "turnout.yaml"


@pytest.fixture
def emulator(aws) -> Iterator[object]:
    Emulator.attach(aws.url)
    patches.apply_patches()
    yield aws


def _environment(aws, function: str) -> dict[str, str]:
    return aws.client("lambda").get_function_configuration(
        FunctionName=function)["Environment"]["Variables"]


def _policy_actions(aws, role_name_part: str, policy: str) -> set[str]:
    iam = aws.client("iam")
    role = next(r["RoleName"] for r in iam.list_roles()["Roles"] if role_name_part in r["RoleName"])
    document = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
    actions: set[str] = set()
    for statement in document["Statement"]:
        listed = statement["Action"]
        actions.update([listed] if isinstance(listed, str) else listed)
    return actions


def test_waf_off_deploys_without_a_web_acl_and_the_reconciler_is_told(emulator):
    aws = emulator

    outputs = deploy_stack(TEMPLATE, endpoint_url=aws.url,
                           parameters={"EnableWaf": "false", "AlarmPeriodSeconds": "60",
                                       "LogRetentionDays": "7"})

    assert "WebAclArn" not in outputs
    assert aws.client("wafv2").list_web_acls(Scope="REGIONAL")["WebACLs"] == []
    environment = _environment(aws, "turnout-reconcile")
    assert environment["WEB_ACL_ARN"] == ""
    assert str(environment["ALARM_PERIOD_SECONDS"]) == "60"  # moto keeps a Number typed
    actions = _policy_actions(aws, "ReconcileRole", "reconcile-security")
    assert not any(action.startswith("wafv2:") for action in actions)
    assert "apigateway:SetWebACL" not in actions
    groups = aws.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/turnout-")
    assert {g["retentionInDays"] for g in groups["logGroups"]} == {7}


def test_waf_on_deploys_the_web_acl_the_reconciler_associates(emulator):
    aws = emulator

    outputs = deploy_stack(TEMPLATE, endpoint_url=aws.url, parameters={"EnableWaf": "true"})

    [acl] = aws.client("wafv2").list_web_acls(Scope="REGIONAL")["WebACLs"]
    assert outputs["WebAclArn"] == acl["ARN"]
    assert _environment(aws, "turnout-reconcile")["WEB_ACL_ARN"] == acl["ARN"]
    assert "wafv2:AssociateWebACL" in _policy_actions(aws, "ReconcileRole", "reconcile-security")


def test_an_existing_vpc_and_subnets_are_used_instead_of_a_new_vpc(emulator):
    aws = emulator
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"][
        "SubnetId"] for cidr, zone in (("10.9.0.0/20", "us-east-1a"),
                                       ("10.9.16.0/20", "us-east-1b"))]
    vpcs_before = {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}

    outputs = deploy_stack(TEMPLATE, endpoint_url=aws.url,
                           parameters={"VpcId": vpc, "SubnetIds": ",".join(subnets)})

    assert {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]} == vpcs_before
    assert outputs["TargetsVpcId"] == vpc
    [balancer] = aws.client("elbv2").describe_load_balancers(
        LoadBalancerArns=[outputs["TargetsLoadBalancerArn"]])["LoadBalancers"]
    assert balancer["VpcId"] == vpc
    assert sorted(zone["SubnetId"] for zone in balancer["AvailabilityZones"]) == sorted(subnets)
    assert _environment(aws, "turnout-reconcile")["VPC_ID"] == vpc
    assert _environment(aws, "turnout-failover")["VPC_ID"] == vpc


def test_alarm_period_parameter_sets_the_shortest_alarm_period(stack, harness):
    harness.env["ALARM_PERIOD_SECONDS"] = "60"
    stack.put_route(route("payments", "/payments", "https://a.example",
                          health_check={"interval_seconds": 5, "timeout_ms": 1000}))

    harness.run()

    alarms = stack.aws.client("cloudwatch").describe_alarms(AlarmNamePrefix="turnout-payments")
    assert [a["Period"] for a in alarms["MetricAlarms"]] == [60]
