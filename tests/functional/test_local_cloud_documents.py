"""The documents the local cloud builds and reads, checked without any AWS endpoint."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from local_cloud.eventbridge import execution_name, target_input
from local_cloud.intrinsics import Evaluator, UnresolvableError
from local_cloud.moto_template import (
    ResourceValues,
    TemplateNotSupportedLocally,
    adapt_for_moto,
)
from local_cloud.stream_records import first_failed_index, lambda_record
from local_cloud.stream_shard import MappingSettings, ShardPosition

SEQUENCES = ["100", "101", "102", "103"]


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (None, None),
        ({}, None),
        ({"batchItemFailures": []}, None),
        ({"batchItemFailures": None}, None),
        ({"batchItemFailures": [{"itemIdentifier": "102"}]}, 2),
        ({"batchItemFailures": [{"itemIdentifier": "103"}, {"itemIdentifier": "101"}]}, 1),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, 0),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, 0),
        ({"batchItemFailures": [{}]}, 0),
        ({"batchItemFailures": [{"itemIdentifier": "999"}]}, 0),
        ({"batchItemFailures": "everything"}, 0),
    ],
)
def test_batch_response_says_where_the_retry_starts(response, expected):
    assert first_failed_index(response, SEQUENCES) == expected


def test_binary_attributes_reach_the_handler_base64_encoded_like_on_aws():
    record = {
        "eventID": "e1", "eventName": "INSERT", "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": {"pk": {"B": b"\x00\x01"}},
            "NewImage": {"pk": {"B": b"\x00\x01"},
                         "nested": {"M": {"blobs": {"BS": [b"hi"]}, "list": {"L": [{"B": b"x"}]}}}},
            "SequenceNumber": "100", "SizeBytes": 12, "StreamViewType": "NEW_IMAGE",
        },
    }

    converted = lambda_record(record, "arn:aws:dynamodb:us-east-1:1:table/t/stream/s")

    assert converted["dynamodb"]["Keys"] == {"pk": {"B": "AAE="}}
    assert converted["dynamodb"]["NewImage"]["nested"] == {
        "M": {"blobs": {"BS": ["aGk="]}, "list": {"L": [{"B": "eA=="}]}}}
    assert converted["eventSourceARN"] == "arn:aws:dynamodb:us-east-1:1:table/t/stream/s"
    json.dumps(converted)


EVENT = {"id": "6f0c", "source": "turnout", "detail-type": "Route Ready",
         "detail": {"route_id": "payments", "upstream": {"name": "primary"}}}


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ({}, EVENT),
        ({"Input": '{"fixed": true}'}, {"fixed": True}),
        ({"InputPath": "$.detail.upstream"}, {"name": "primary"}),
        ({"InputTransformer": {"InputPathsMap": {"r": "$.detail.route_id"},
                               "InputTemplate": '{"route": "<r>"}'}}, {"route": "payments"}),
    ],
)
def test_event_target_receives_what_its_input_settings_select(target, expected):
    assert target_input({"Arn": "arn:aws:lambda:us-east-1:1:function:f", **target},
                        EVENT) == expected


def test_execution_names_are_stable_per_event_rule_and_target_and_valid():
    name = execution_name("6f0c1d2e-aaaa-bbbb-cccc-0123456789ab",
                          "arn:aws:events:us-east-1:1:rule/bus/alarm", "failover")

    assert name == execution_name("6f0c1d2e-aaaa-bbbb-cccc-0123456789ab",
                                  "arn:aws:events:us-east-1:1:rule/bus/alarm", "failover")
    assert name != execution_name("6f0c1d2e-aaaa-bbbb-cccc-0123456789ab",
                                  "arn:aws:events:us-east-1:1:rule/bus/alarm", "audit")
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", name)


TEMPLATE = {
    "Parameters": {"Stage": {"Type": "String", "Default": "live"}},
    "Conditions": {"IsLive": {"Fn::Equals": [{"Ref": "Stage"}, "live"]}},
    "Resources": {
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
        "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "bus"}},
    },
}


def _lookup(logical_id, attribute):
    values = {("Table", None): "routes-1", ("Table", "Arn"): "arn:aws:dynamodb:::table/routes-1"}
    if (logical_id, attribute) not in values:
        raise UnresolvableError(logical_id)
    return values[(logical_id, attribute)]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ({"Ref": "Table"}, "routes-1"),
        ({"Fn::Sub": "https://${Table}.${AWS::Region}/${Stage}"}, "https://routes-1.eu-west-1/live"),
        ({"Fn::Sub": ["${A}-${Table.Arn}", {"A": {"Ref": "Stage"}}]},
         "live-arn:aws:dynamodb:::table/routes-1"),
        ({"Fn::Sub": "${!Literal}"}, "${Literal}"),
        ({"Fn::Join": ["/", ["a", {"Ref": "Stage"}]]}, "a/live"),
        ({"Fn::Select": [1, {"Fn::Split": [",", "x,y,z"]}]}, "y"),
        ({"Fn::If": ["IsLive", "yes", "no"]}, "yes"),
        ({"List": ["a", {"Ref": "AWS::NoValue"}]}, {"List": ["a"]}),
        ({"Statement": [{"Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]},
         {"Statement": [{"Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}),
    ],
)
def test_outputs_evaluate_like_cloudformation(expression, expected):
    evaluator = Evaluator(TEMPLATE, parameters={"Stage": "live"},
                          pseudo={"AWS::Region": "eu-west-1"}, resources=_lookup)
    assert evaluator.evaluate(expression) == expected


def _adapt(resources, outputs=None, created_before=None):
    template = {"Resources": resources, **({"Outputs": outputs} if outputs else {})}
    return adapt_for_moto(template, created_before=created_before or {},
                          template_dir=Path("."), read_s3_object=lambda bucket, key: b"")


def test_constructs_moto_crashes_on_are_rewritten_to_equivalents():
    adapted = _adapt(
        {
            "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "b"}},
            "Sm": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
                "RoleArn": "arn:aws:iam::1:role/r",
                "Definition": {"StartAt": "P", "States": {"P": {
                    "Type": "Pass", "Result": "${Greeting}", "End": True}}},
                "DefinitionSubstitutions": {"Greeting": {"Fn::GetAtt": ["Bus", "Name"]}}}},
            "Rule": {"Type": "AWS::Events::Rule", "Properties": {
                "EventBusName": {"Ref": "Bus"},
                "Targets": [{"Id": "t", "Arn": {"Fn::GetAtt": ["Sm", "Arn"]}}]}},
        },
        outputs={"Arn": {"Value": {"Fn::Sub": "${Sm.Arn} on ${Bus}"}}},
    )

    rule = adapted["Resources"]["Rule"]["Properties"]
    assert rule["EventBusName"] == {"Fn::GetAtt": ["Bus", "Name"]}
    assert rule["Targets"][0]["Arn"] == {"Ref": "Sm"}
    machine = adapted["Resources"]["Sm"]["Properties"]
    assert "Definition" not in machine and "DefinitionSubstitutions" not in machine
    assert machine["DefinitionString"] == {"Fn::ToJsonString": {"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Result": {"Fn::Join": ["", [{"Fn::GetAtt": ["Bus", "Name"]}]]},
              "End": True}}}}
    assert adapted["Outputs"]["Arn"]["Value"] == {"Fn::Sub": "${Sm} on ${Bus.Name}"}


def test_definition_string_substitutions_keep_unquoted_numbers_as_numbers():
    adapted = _adapt({"Sm": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
        "DefinitionString": '{"Seconds": ${Wait}, "Name": "${Name}"}',
        "DefinitionSubstitutions": {"Wait": 10, "Name": "failover"}}}})

    definition = adapted["Resources"]["Sm"]["Properties"]["DefinitionString"]
    assert json.loads(definition) == {"Seconds": 10, "Name": "failover"}


def test_resources_moto_ignores_are_taken_out_and_their_values_filled_in():
    adapted = _adapt(
        {
            "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {}},
            "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {}},
            "Queue": {"Type": "AWS::SQS::Queue", "DependsOn": ["Alarm"], "Properties": {
                "Tags": [{"Key": "secret", "Value": {"Ref": "Secret"}}]}},
        },
        outputs={"AlarmArn": {"Value": {"Fn::GetAtt": ["Alarm", "Arn"]}}},
        created_before={"Secret": ResourceValues(ref="arn:aws:secretsmanager:::secret:s-1")},
    )

    assert set(adapted["Resources"]) == {"Queue"}
    assert "DependsOn" not in adapted["Resources"]["Queue"]
    assert adapted["Resources"]["Queue"]["Properties"]["Tags"][0]["Value"] == (
        "arn:aws:secretsmanager:::secret:s-1")
    assert "Outputs" not in adapted


def test_stack_resource_cannot_depend_on_one_created_after_the_stack():
    with pytest.raises(TemplateNotSupportedLocally, match="Queue: Alarm"):
        _adapt({
            "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {}},
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {
                "QueueName": {"Ref": "Alarm"}}},
        })


def _pending(count: int, *, created: datetime | None = None):
    return [{"dynamodb": {"SequenceNumber": str(100 + i),
                          **({"ApproximateCreationDateTime": created} if created else {})}}
            for i in range(count)]


def test_bisection_isolates_a_failing_record_then_spends_its_retry_budget():
    settings = MappingSettings(uuid="m", function_arn="f", stream_arn="s", enabled=True,
                               batch_size=4, bisect_on_error=True, maximum_retry_attempts=1)
    shard = ShardPosition(shard_id="shard", iterator="it")
    shard.add(_pending(4), now=0.0)
    sizes = []

    def fail_head(now: float) -> None:
        batch = shard.next_batch(settings, now)
        sizes.append(len(batch))
        shard.failed(settings, len(batch), 0, now=now, base_delay_seconds=1.0,
                     max_delay_seconds=5.0)

    fail_head(0.0)
    fail_head(0.0)
    fail_head(0.0)
    assert shard.next_batch(settings, 0.5) is None  # backing off before the retry
    fail_head(1.0)

    assert sizes == [4, 2, 1, 1]
    assert shard.exhausted
    assert len(shard.next_batch(settings, 1.0)) == 1
    shard.done(1)
    assert not shard.exhausted and shard.planned_sizes == [1, 2]
    assert [p.record["dynamodb"]["SequenceNumber"] for p in shard.next_batch(settings, 1.0)] == [
        "101"]


def test_batching_window_holds_a_short_batch_until_it_fills_or_the_window_ends():
    settings = MappingSettings(uuid="m", function_arn="f", stream_arn="s", enabled=True,
                               batch_size=3, batching_window_seconds=1.0)
    shard = ShardPosition(shard_id="shard", iterator="it")
    shard.add(_pending(2), now=10.0)

    assert shard.next_batch(settings, 10.5) is None
    assert len(shard.next_batch(settings, 11.0)) == 2


def test_records_past_the_maximum_age_are_counted_from_the_oldest():
    settings = MappingSettings(uuid="m", function_arn="f", stream_arn="s", enabled=True,
                               maximum_record_age_seconds=60)
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    shard = ShardPosition(shard_id="shard", iterator="it")
    shard.add(_pending(2, created=now - timedelta(seconds=90)), now=0.0)
    shard.add(_pending(1, created=now - timedelta(seconds=30)), now=0.0)

    assert shard.expired(settings, now) == 2
    assert shard.expired(replace(settings, maximum_record_age_seconds=-1), now) == 0
