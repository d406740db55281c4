"""The local cloud runs the stack's handlers in this process, the way AWS would run them.

Every test uses the session's embedded AWS (reset per test) with a :class:`LocalCloud`
attached to it, and the small handlers of ``sample_handlers``.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local_cloud.emulator import Emulator, EmulatorError
from local_cloud.runtime import LocalCloud
from tests.conftest import free_port
from tests.functional import sample_handlers

HANDLERS = "tests.functional.sample_handlers"


@pytest.fixture
def cloud(aws) -> Iterator[LocalCloud]:
    sample_handlers.forget()
    local = LocalCloud(template_path=None, emulator_url=aws.url, poll_interval_seconds=0.05)
    local.start()
    yield local
    local.stop()


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "")
    return buffer.getvalue()


def _role(aws) -> str:
    iam = aws.client("iam")
    try:
        return iam.get_role(RoleName="lambda-role")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName="lambda-role",
                               AssumeRolePolicyDocument="{}")["Role"]["Arn"]


def _function(aws, name: str, handler: str, **config: Any) -> str:
    return aws.client("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=_role(aws),
        Handler=f"{HANDLERS}.{handler}", Code={"ZipFile": _dummy_zip()}, **config,
    )["FunctionArn"]


def _stream_table(aws, name: str) -> str:
    return aws.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]["LatestStreamArn"]


def _queue(aws, name: str) -> tuple[str, str]:
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    return url, arn


def _map(aws, function: str, stream_arn: str, **settings: Any) -> None:
    aws.client("lambda").create_event_source_mapping(
        FunctionName=function, EventSourceArn=stream_arn, StartingPosition="TRIM_HORIZON",
        **settings)


def _put(aws, table: str, key: str, **attributes: dict[str, Any]) -> None:
    aws.client("dynamodb").put_item(TableName=table, Item={"pk": {"S": key}, **attributes})


def _stream_sequence_numbers(aws, stream_arn: str) -> list[str]:
    streams = aws.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]
    return [r["dynamodb"]["SequenceNumber"] for r in records]


def _failure_messages(aws, queue_url: str) -> list[dict[str, Any]]:
    messages = aws.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                                 WaitTimeSeconds=0).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def _wait_for(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_writes_reach_the_handler_as_real_stream_events_in_order(aws, cloud):
    function = _function(aws, "in-order", "record_stream")
    stream_arn = _stream_table(aws, "routes")
    _map(aws, function, stream_arn)
    dynamodb = aws.client("dynamodb")
    before = datetime.now(UTC).timestamp()

    _put(aws, "routes", "payments", upstream={"S": "blue"})
    dynamodb.update_item(TableName="routes", Key={"pk": {"S": "payments"}},
                         UpdateExpression="SET upstream = :u",
                         ExpressionAttributeValues={":u": {"S": "green"}})
    dynamodb.delete_item(TableName="routes", Key={"pk": {"S": "payments"}})
    _put(aws, "routes", "orders", upstream={"S": "red"})
    assert cloud.wait_idle(10)

    records = [r for event in sample_handlers.received("in-order") for r in event["Records"]]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE", "INSERT"]
    assert [r["dynamodb"]["Keys"] for r in records] == [
        {"pk": {"S": "payments"}}] * 3 + [{"pk": {"S": "orders"}}]
    insert, modify, remove, _ = records
    assert insert["dynamodb"]["NewImage"] == {"pk": {"S": "payments"}, "upstream": {"S": "blue"}}
    assert "OldImage" not in insert["dynamodb"]
    assert modify["dynamodb"]["OldImage"]["upstream"] == {"S": "blue"}
    assert modify["dynamodb"]["NewImage"]["upstream"] == {"S": "green"}
    assert remove["dynamodb"]["OldImage"]["upstream"] == {"S": "green"}
    assert "NewImage" not in remove["dynamodb"]
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequence == sorted(sequence) and len(set(sequence)) == 4
    for record in records:
        assert record["eventSource"] == "aws:dynamodb"
        assert record["eventSourceARN"] == stream_arn
        assert record["awsRegion"] == "us-east-1"
        assert record["eventID"] and record["eventVersion"]
        assert record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert isinstance(record["dynamodb"]["SizeBytes"], int)
        created = record["dynamodb"]["ApproximateCreationDateTime"]
        assert before - 2 <= created <= time.time() + 2


def test_reported_item_failure_is_retried_without_redelivering_earlier_records(aws, cloud):
    function = _function(aws, "partial", "record_stream")
    stream_arn = _stream_table(aws, "routes")
    _map(aws, function, stream_arn, BatchSize=10, MaximumBatchingWindowInSeconds=1,
         FunctionResponseTypes=["ReportBatchItemFailures"])

    for index in range(5):
        extra = {"fail": {"S": "once"}} if index == 2 else {}
        _put(aws, "routes", f"route-{index}", **extra)
    assert cloud.wait_idle(10)

    s = _stream_sequence_numbers(aws, stream_arn)
    assert sample_handlers.sequence_batches("partial") == [s, s[2:]]


def test_bisect_splits_a_failing_batch_until_the_poison_record_is_alone(aws, cloud):
    function = _function(aws, "bisect", "raise_on_poison")
    stream_arn = _stream_table(aws, "routes")
    queue_url, queue_arn = _queue(aws, "reconcile-failures")
    _map(aws, function, stream_arn, BatchSize=4, MaximumBatchingWindowInSeconds=1,
         BisectBatchOnFunctionError=True, MaximumRetryAttempts=1,
         DestinationConfig={"OnFailure": {"Destination": queue_arn}})

    for index in range(4):
        extra = {"poison": {"BOOL": True}} if index == 1 else {}
        _put(aws, "routes", f"route-{index}", **extra)
    assert cloud.wait_idle(10)

    s = _stream_sequence_numbers(aws, stream_arn)
    assert sample_handlers.sequence_batches("bisect") == [
        s, s[:2], s[:1], s[1:2], s[1:2], s[2:]]
    [failure] = _failure_messages(aws, queue_url)
    assert failure["DDBStreamBatchInfo"]["startSequenceNumber"] == s[1]
    assert failure["DDBStreamBatchInfo"]["batchSize"] == 1


def test_poison_record_lands_on_the_failure_queue_and_later_records_still_flow(aws, cloud):
    function = _function(aws, "poison", "raise_on_poison")
    stream_arn = _stream_table(aws, "routes")
    queue_url, queue_arn = _queue(aws, "reconcile-failures")
    _map(aws, function, stream_arn, BatchSize=1, MaximumRetryAttempts=2,
         DestinationConfig={"OnFailure": {"Destination": queue_arn}})

    _put(aws, "routes", "bad", poison={"BOOL": True})
    _put(aws, "routes", "good-1")
    _put(aws, "routes", "good-2")
    assert cloud.wait_idle(10)

    poison, good_1, good_2 = _stream_sequence_numbers(aws, stream_arn)
    assert sample_handlers.sequence_batches("poison") == [
        [poison], [poison], [poison], [good_1], [good_2]]
    [failure] = _failure_messages(aws, queue_url)
    shard_id = aws.client("dynamodbstreams").describe_stream(StreamArn=stream_arn)[
        "StreamDescription"]["Shards"][0]["ShardId"]
    assert failure["requestContext"]["functionArn"] == function
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 3
    assert failure["requestContext"]["requestId"]
    assert failure["responseContext"] == {
        "statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert failure["version"] == "1.0"
    assert datetime.strptime(failure["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
    info = failure["DDBStreamBatchInfo"]
    assert info["shardId"] == shard_id
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == poison
    assert info["batchSize"] == 1
    assert info["streamArn"] == stream_arn
    assert datetime.strptime(info["approximateArrivalOfFirstRecord"], "%Y-%m-%dT%H:%M:%SZ")
    assert datetime.strptime(info["approximateArrivalOfLastRecord"], "%Y-%m-%dT%H:%M:%SZ")


def test_mapping_batch_size_and_batching_window_shape_the_batches(aws, cloud):
    function = _function(aws, "batches", "record_stream")
    stream_arn = _stream_table(aws, "routes")
    _map(aws, function, stream_arn, BatchSize=3, MaximumBatchingWindowInSeconds=1)

    for index in range(7):
        _put(aws, "routes", f"route-{index}")
    assert cloud.wait_idle(10)

    assert [len(b) for b in sample_handlers.sequence_batches("batches")] == [3, 3, 1]


def test_disabled_mapping_holds_records_until_enabled_again(aws, cloud):
    function = _function(aws, "paused", "record_stream")
    stream_arn = _stream_table(aws, "routes")
    _map(aws, function, stream_arn, Enabled=False)
    mapping = aws.client("lambda").list_event_source_mappings()["EventSourceMappings"][0]

    _put(aws, "routes", "waiting")
    assert cloud.wait_idle(10)
    assert sample_handlers.received("paused") == []

    aws.client("lambda").update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
    assert cloud.wait_idle(10)
    assert sample_handlers.sequence_batches("paused") == [_stream_sequence_numbers(aws,
                                                                                  stream_arn)]


def test_lambda_invoke_runs_the_handler_with_its_configuration(aws, cloud):
    _function(aws, "describe", "describe_invocation", MemorySize=256, Timeout=30,
              Environment={"Variables": {"GREETING": "hello"}})

    response = aws.client("lambda").invoke(FunctionName="describe",
                                           Payload=json.dumps({"route_id": "payments"}))

    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    payload = json.loads(response["Payload"].read())
    assert payload["event"] == {"route_id": "payments"}
    assert payload["greeting"] == "hello"
    assert payload["memory_limit_in_mb"] == 256
    assert payload["function_name"] == "describe"
    assert payload["invoked_function_arn"].endswith(":function:describe")
    assert 25_000 < payload["remaining_ms"] <= 30_000
    assert payload["loopback_allowed"] is None
    assert os.environ.get("GREETING") is None


def test_loopback_flag_reaches_the_functions_environment(aws):
    _function(aws, "describe", "describe_invocation")
    with LocalCloud(template_path=None, emulator_url=aws.url,
                    allow_loopback_upstreams=True) as local:
        payload = json.loads(aws.client("lambda").invoke(FunctionName="describe")[
            "Payload"].read())
        assert local.functions.invoke("describe", {})["loopback_allowed"] == "true"
    assert payload["loopback_allowed"] == "true"


def test_handler_exception_comes_back_as_an_unhandled_function_error(aws, cloud):
    _function(aws, "crash", "crash")
    changes: list[tuple[str, Any]] = []
    cloud.on_change = lambda name, result: changes.append((name, result))

    response = aws.client("lambda").invoke(FunctionName="crash", Payload=b"{}")

    assert response["FunctionError"] == "Unhandled"
    payload = json.loads(response["Payload"].read())
    assert payload["errorType"] == "RuntimeError"
    assert payload["errorMessage"] == "the upstream table is on fire"
    assert payload["stackTrace"]
    assert [name for name, _ in changes] == ["crash"]


def test_handler_running_past_its_timeout_fails_as_timed_out(aws, cloud):
    _function(aws, "slow", "sleep", Timeout=1)

    started = time.monotonic()
    response = aws.client("lambda").invoke(FunctionName="slow", Payload=b'{"seconds": 1.5}')

    assert time.monotonic() - started < 1.4
    assert response["FunctionError"] == "Unhandled"
    payload = json.loads(response["Payload"].read())
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]


def test_reserved_concurrency_queues_background_invocations_and_throttles_synchronous_ones(
        aws, cloud):
    _function(aws, "single", "overlap", Timeout=30)
    lambda_ = aws.client("lambda")
    lambda_.put_function_concurrency(FunctionName="single", ReservedConcurrentExecutions=1)

    def in_background(n: int, **event: Any) -> None:
        lambda_.invoke(FunctionName="single", InvocationType="Event",
                       Payload=json.dumps({"n": n, **event}))

    in_background(0, until_released=True)
    _wait_for(lambda: sample_handlers.MOST_AT_ONCE["single"] == 1)
    for n in (1, 2, 3):
        in_background(n, seconds=0.2)
    with pytest.raises(ClientError) as throttled:  # the first still runs: no room for a caller
        lambda_.invoke(FunctionName="single", Payload=json.dumps({"n": "sync"}))
    sample_handlers.RELEASE.set()

    error = throttled.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error["Error"]["Code"] == "TooManyRequestsException"
    _wait_for(lambda: len(sample_handlers.received("single")) == 4)
    assert sorted(e["n"] for e in sample_handlers.received("single")) == [0, 1, 2, 3]
    assert sample_handlers.MOST_AT_ONCE["single"] == 1


def test_without_reserved_concurrency_invocations_run_side_by_side(aws, cloud):
    _function(aws, "many", "overlap", Timeout=30)
    for n in range(4):
        aws.client("lambda").invoke(FunctionName="many", InvocationType="Event",
                                    Payload=json.dumps({"n": n, "seconds": 0.5}))
    _wait_for(lambda: len(sample_handlers.received("many")) == 4)
    assert sample_handlers.MOST_AT_ONCE["many"] > 1


def test_aws_cli_lambda_invoke_gets_the_handler_payload(aws, cloud, tmp_path: Path):
    _function(aws, "describe", "describe_invocation")
    out_file = tmp_path / "response.json"

    completed = subprocess.run(
        [str(Path(sys.executable).parent / "aws"), "lambda", "invoke",
         "--endpoint-url", aws.url, "--region", "us-east-1", "--function-name", "describe",
         "--payload", '{"from": "cli"}', str(out_file)],
        capture_output=True, text=True, timeout=60, check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["StatusCode"] == 200
    assert json.loads(out_file.read_text())["event"] == {"from": "cli"}


def test_step_functions_lambda_tasks_run_the_handler(aws, cloud):
    function = _function(aws, "describe", "describe_invocation")
    stepfunctions = aws.client("stepfunctions")
    definition = {
        "StartAt": "Optimised",
        "States": {
            "Optimised": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function, "Payload.$": "$"},
                "ResultSelector": {"greeting_event.$": "$.Payload.event"},
                "ResultPath": "$.optimised", "Next": "ByArn",
            },
            "ByArn": {"Type": "Task", "Resource": function, "ResultPath": "$.by_arn",
                      "End": True},
        },
    }
    machine = stepfunctions.create_state_machine(
        name="failover", definition=json.dumps(definition), roleArn=_role(aws))[
        "stateMachineArn"]

    execution = stepfunctions.start_execution(
        stateMachineArn=machine, name="route-payments",
        input=json.dumps({"route_id": "payments"}))["executionArn"]

    done = _wait_for(lambda: (d := stepfunctions.describe_execution(executionArn=execution))[
        "status"] != "RUNNING" and d)
    assert done["status"] == "SUCCEEDED"
    output = json.loads(done["output"])
    assert output["optimised"] == {"greeting_event": {"route_id": "payments"}}
    assert output["by_arn"]["function_name"] == "describe"
    assert output["by_arn"]["event"]["route_id"] == "payments"


def test_put_events_reaches_step_functions_and_lambda_targets(aws, cloud):
    function = _function(aws, "on-event", "keep_event")
    stepfunctions = aws.client("stepfunctions")
    machine = stepfunctions.create_state_machine(
        name="on-event", roleArn=_role(aws),
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
    )["stateMachineArn"]
    events = aws.client("events")
    events.create_event_bus(Name="turnout-events")
    events.put_rule(Name="route-ready", EventBusName="turnout-events",
                    EventPattern=json.dumps({"source": ["turnout"],
                                             "detail-type": ["Route Ready"]}))
    events.put_targets(Rule="route-ready", EventBusName="turnout-events", Targets=[
        {"Id": "workflow", "Arn": machine, "RoleArn": _role(aws), "InputPath": "$.detail"},
        {"Id": "function", "Arn": function},
    ])

    response = events.put_events(Entries=[
        {"Source": "turnout", "DetailType": "Route Ready", "EventBusName": "turnout-events",
         "Detail": json.dumps({"route_id": "payments"})},
        {"Source": "turnout", "DetailType": "Route Rejected", "EventBusName": "turnout-events",
         "Detail": json.dumps({"route_id": "orders"})},
    ])
    assert cloud.wait_idle(10)

    assert response["FailedEntryCount"] == 0
    [event] = sample_handlers.received("on-event")
    assert event["detail"] == {"route_id": "payments"}
    assert event["detail-type"] == "Route Ready"
    assert event["id"] == response["Entries"][0]["EventId"]
    assert datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")
    [execution] = stepfunctions.list_executions(stateMachineArn=machine)["executions"]
    assert execution["name"].startswith(response["Entries"][0]["EventId"])
    described = stepfunctions.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {"route_id": "payments"}


def test_local_cloud_serves_boto3_through_aws_endpoint_url_on_its_own_port(aws):
    port = free_port()
    moto_port_before = os.environ.get("MOTO_PORT")
    endpoint_before = os.environ.get("AWS_ENDPOINT_URL")

    with LocalCloud(aws_port=port, template_path=None) as local:
        assert local.endpoint_url == f"http://127.0.0.1:{port}"
        assert os.environ["MOTO_PORT"] == str(port)
        assert os.environ["AWS_ENDPOINT_URL"] == local.endpoint_url  # before any call
        identity = boto3.client("sts", region_name="us-east-1").get_caller_identity()
        assert identity["Account"] == "123456789012"

    assert os.environ.get("MOTO_PORT") == moto_port_before
    assert os.environ.get("AWS_ENDPOINT_URL") == endpoint_before
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # the endpoint released its port


def test_aws_endpoint_refuses_a_port_already_in_use_with_a_clear_error(aws):
    port = int(aws.url.rsplit(":", 1)[1])

    with pytest.raises(EmulatorError, match=f"127.0.0.1:{port}"):
        Emulator(port=port).start()
