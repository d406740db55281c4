"""The same CloudFormation template deploys into the embedded AWS and means the same thing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_cloud import patches
from local_cloud.deployer import deploy_stack
from local_cloud.emulator import Emulator
from local_cloud.runtime import LocalCloud

TEMPLATE = Path(__file__).resolve().parents[2] / "cloudformation" / "turnout.yaml"
OUTPUT_NAMES = {
    "RoutesTableName", "StateTableName", "RestApiId", "StageName", "EventBusName",
    "GatewayUrl", "ReconcileFunctionName", "ReconcileFailureQueueUrl",
    "TargetsVpcId", "TargetsLoadBalancerArn", "TargetsLoadBalancerDnsName", "TargetsListenerArn",
    "TargetsVpcLinkId", "WebAclArn", "DataPlaneFunctionArn", "FailoverStateMachineArn",
}


@pytest.fixture
def emulator(aws) -> Iterator[object]:
    Emulator.attach(aws.url)
    patches.apply_patches()
    yield aws


@pytest.fixture
def small_source_tree(tmp_path: Path) -> Path:
    """A source tree that nobody edits while the test runs."""
    root = tmp_path / "src"
    (root / "control_plane").mkdir(parents=True)
    (root / "control_plane" / "__init__.py").write_text('"""stand-in package"""\n')
    return root


def test_turnout_template_deploys_with_every_output(emulator):
    aws = emulator
    progress: list[str] = []

    outputs = deploy_stack(TEMPLATE, endpoint_url=aws.url, on_progress=progress.append)

    stack = aws.client("cloudformation").describe_stacks(StackName="turnout")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert set(outputs) == OUTPUT_NAMES
    dynamodb = aws.client("dynamodb")
    routes = dynamodb.describe_table(TableName=outputs["RoutesTableName"])["Table"]
    assert routes["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    ttl = dynamodb.describe_time_to_live(TableName=outputs["StateTableName"])
    assert ttl["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED",
                                            "AttributeName": "expires_at"}
    api = aws.client("apigateway").get_rest_api(restApiId=outputs["RestApiId"])
    assert api["name"] == "turnout-gateway"
    assert outputs["StageName"] == "live"
    assert outputs["GatewayUrl"] == (
        f"https://{outputs['RestApiId']}.execute-api.us-east-1.amazonaws.com/live")
    assert aws.client("events").describe_event_bus(Name=outputs["EventBusName"])["Name"] == (
        "turnout-events")
    aws.client("sqs").get_queue_attributes(QueueUrl=outputs["ReconcileFailureQueueUrl"],
                                           AttributeNames=["QueueArn"])
    function = aws.client("lambda").get_function_configuration(
        FunctionName=outputs["ReconcileFunctionName"])
    assert function["Handler"] == "control_plane.handlers.route_stream.handler"
    assert function["Environment"]["Variables"]["ROUTES_TABLE"] == outputs["RoutesTableName"]
    assert function["Environment"]["Variables"]["EVENT_BUS_NAME"] == "turnout-events"
    [mapping] = aws.client("lambda").list_event_source_mappings()["EventSourceMappings"]
    assert mapping["EventSourceArn"] == routes["LatestStreamArn"]
    assert any("StateTable: time to live on expires_at" in m for m in progress)


def test_route_written_after_deploy_stays_readable_on_the_stream(emulator):
    aws = emulator
    outputs = deploy_stack(TEMPLATE, endpoint_url=aws.url)
    dynamodb = aws.client("dynamodb")

    dynamodb.put_item(TableName=outputs["RoutesTableName"],
                      Item={"route_id": {"S": "payments"}})

    stream_arn = dynamodb.describe_table(TableName=outputs["RoutesTableName"])["Table"][
        "LatestStreamArn"]
    streams = aws.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    [record] = streams.get_records(ShardIterator=iterator)["Records"]
    assert record["eventName"] == "INSERT"
    assert record["dynamodb"]["Keys"] == {"route_id": {"S": "payments"}}


def test_redeploy_changes_only_what_the_template_or_parameters_change(emulator,
                                                                      small_source_tree):
    aws = emulator
    first = deploy_stack(TEMPLATE, endpoint_url=aws.url, source_root=small_source_tree)
    progress: list[str] = []

    again = deploy_stack(TEMPLATE, endpoint_url=aws.url, source_root=small_source_tree,
                         on_progress=progress.append)

    cloudformation = aws.client("cloudformation")
    assert again == first
    assert "stack turnout is up to date" in progress
    assert cloudformation.describe_stacks(StackName="turnout")["Stacks"][0][
        "StackStatus"] == "CREATE_COMPLETE"

    resized = deploy_stack(TEMPLATE, parameters={"StreamBatchSize": 10}, endpoint_url=aws.url,
                           source_root=small_source_tree)

    assert resized == first
    assert cloudformation.describe_stacks(StackName="turnout")["Stacks"][0][
        "StackStatus"] == "UPDATE_COMPLETE"
    [mapping] = aws.client("lambda").list_event_source_mappings()["EventSourceMappings"]
    assert mapping["BatchSize"] == 10
    assert len(aws.client("dynamodb").list_tables()["TableNames"]) == 2


WORKFLOW_TEMPLATE = """
Resources:
  Bus:
    Type: AWS::Events::EventBus
    Properties:
      Name: !Sub "${AWS::StackName}-bus"
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: 2012-10-17
        Statement:
          - Effect: Allow
            Principal: {Service: [states.amazonaws.com, lambda.amazonaws.com]}
            Action: sts:AssumeRole
  Workflow:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      RoleArn: !GetAtt Role.Arn
      DefinitionString: >-
        {"StartAt": "Report", "States": {"Report": {"Type": "Pass",
        "Parameters": {"bus": "${BusName}", "answer": ${Answer}, "route.$": "$.detail.route_id"},
        "End": true}}}
      DefinitionSubstitutions:
        BusName: !GetAtt Bus.Name
        Answer: 42
  OnRouteReady:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref Bus
      EventPattern: {source: [turnout], detail-type: [Route Ready]}
      Targets:
        - Id: workflow
          Arn: !GetAtt Workflow.Arn
          RoleArn: !GetAtt Role.Arn
  UpstreamSecret:
    Type: AWS::SecretsManager::Secret
    Properties:
      GenerateSecretString:
        SecretStringTemplate: '{"user": "turnout"}'
        GenerateStringKey: password
        PasswordLength: 24
  Prober:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: tests.functional.sample_handlers.describe_invocation
      Code: ../build/lambda
      Role: !GetAtt Role.Arn
      Environment:
        Variables:
          SECRET_ARN: !Ref UpstreamSecret
  UpstreamAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: !Sub "${AWS::StackName}-payments-primary"
      Namespace: turnout
      MetricName: UpstreamHealthy
      Dimensions: [{Name: route_id, Value: payments}]
      Statistic: Minimum
      Period: 10
      EvaluationPeriods: 3
      Threshold: 1
      ComparisonOperator: LessThanThreshold
      AlarmActions: [!Ref Bus]
  WebAcl:
    Type: AWS::WAFv2::WebACL
    Properties:
      Scope: REGIONAL
      DefaultAction: {Allow: {}}
      VisibilityConfig: {SampledRequestsEnabled: false, CloudWatchMetricsEnabled: false,
                         MetricName: acl}
  Keyspace:
    Type: AWS::Cassandra::Keyspace
    Properties:
      KeyspaceName: wf
Outputs:
  WorkflowArn:
    Value: !GetAtt Workflow.Arn
  BusName:
    Value: !Ref Bus
  AlarmArn:
    Value: !GetAtt UpstreamAlarm.Arn
  SecretArn:
    Value: !Ref UpstreamSecret
"""


def test_template_constructs_moto_cannot_take_still_deploy_with_their_aws_meaning(
        emulator, small_source_tree, tmp_path):
    aws = emulator
    template = tmp_path / "cloudformation" / "workflow.yaml"
    template.parent.mkdir()
    template.write_text(WORKFLOW_TEMPLATE)
    progress: list[str] = []

    with LocalCloud(template_path=template, stack_name="wf", emulator_url=aws.url,
                    source_root=small_source_tree, on_progress=progress.append) as cloud:
        outputs = cloud.outputs
        aws.client("events").put_events(Entries=[{
            "Source": "turnout", "DetailType": "Route Ready", "EventBusName": "wf-bus",
            "Detail": json.dumps({"route_id": "payments"})}])
        assert cloud.wait_idle(10)

    stepfunctions = aws.client("stepfunctions")
    [machine] = stepfunctions.list_state_machines()["stateMachines"]
    assert outputs["WorkflowArn"] == machine["stateMachineArn"]
    assert outputs["BusName"] == "wf-bus"
    [alarm] = aws.client("cloudwatch").describe_alarms(
        AlarmNames=["wf-payments-primary"])["MetricAlarms"]
    assert outputs["AlarmArn"] == alarm["AlarmArn"]
    assert alarm["Period"] == 10 and alarm["Dimensions"] == [
        {"Name": "route_id", "Value": "payments"}]
    secrets = aws.client("secretsmanager")
    assert secrets.describe_secret(SecretId=outputs["SecretArn"])["ARN"] == outputs["SecretArn"]
    secret = json.loads(secrets.get_secret_value(SecretId=outputs["SecretArn"],
                                                 VersionStage="AWSCURRENT")["SecretString"])
    assert secret["user"] == "turnout" and len(secret["password"]) == 24
    [function] = aws.client("lambda").list_functions()["Functions"]
    assert function["Environment"]["Variables"]["SECRET_ARN"] == outputs["SecretArn"]
    assert any("Keyspace (AWS::Cassandra::Keyspace): not emulated locally" in m for m in progress)
    [acl] = aws.client("wafv2").list_web_acls(Scope="REGIONAL")["WebACLs"]
    assert acl["Name"] == "wf-WebAcl"

    [execution] = stepfunctions.list_executions(stateMachineArn=machine["stateMachineArn"])[
        "executions"]
    deadline = time.monotonic() + 10
    while (described := stepfunctions.describe_execution(
            executionArn=execution["executionArn"]))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"bus": "wf-bus", "answer": 42,
                                               "route": "payments"}
