"""Test support: the parts of turnout's stack the reconciler touches, created on the embedded
AWS endpoint with the same shape as ``cloudformation/turnout.yaml``, plus a reader that turns
the routes table's real stream records into the Lambda event AWS would deliver."""

from __future__ import annotations

import json
import types
from dataclasses import dataclass, field

import boto3
from botocore.exceptions import ClientError

from control_plane.handlers.route_stream import Dependencies, make_handler
from control_plane.model.item import to_item
from control_plane.settings import Settings, function_environment
from local_cloud.stream_records import lambda_record


@dataclass
class Stack:
    aws: object
    routes_table: str = "turnout-routes"
    state_table: str = "turnout-state"
    bus: str = "turnout-events"
    stage: str = "live"
    rest_api_id: str = ""
    stream_arn: str = ""
    events_queue_url: str = ""
    _iterators: dict = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {
            "ROUTES_TABLE": self.routes_table,
            "STATE_TABLE": self.state_table,
            "REST_API_ID": self.rest_api_id,
            "STAGE_NAME": self.stage,
            "EVENT_BUS_NAME": self.bus,
            "POWERTOOLS_SERVICE_NAME": "turnout-reconcile",
            "TURNOUT_APIGW_RATE_PER_SECOND": "1000",
            "TURNOUT_APIGW_BURST": "1000",
        }

    def create(self) -> Stack:
        ddb = self.aws.client("dynamodb")
        table = ddb.create_table(
            TableName=self.routes_table,
            AttributeDefinitions=[{"AttributeName": "route_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "route_id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        self.stream_arn = table["TableDescription"]["LatestStreamArn"]
        ddb.create_table(
            TableName=self.state_table,
            AttributeDefinitions=[{"AttributeName": "route_id", "AttributeType": "S"},
                                  {"AttributeName": "kind", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "route_id", "KeyType": "HASH"},
                       {"AttributeName": "kind", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.rest_api_id = self.aws.client("apigateway").create_rest_api(
            name="turnout-gateway", endpointConfiguration={"types": ["REGIONAL"]})["id"]
        events = self.aws.client("events")
        events.create_event_bus(Name=self.bus)
        sqs = self.aws.client("sqs")
        self.events_queue_url = sqs.create_queue(QueueName="turnout-events-test")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.events_queue_url,
                                       AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="all-turnout", EventBusName=self.bus,
                        EventPattern=json.dumps({"source": ["turnout"]}))
        events.put_targets(Rule="all-turnout", EventBusName=self.bus,
                           Targets=[{"Id": "q", "Arn": arn}])
        return self

    # ---- writing routes like a user ---------------------------------------------------

    def put_route(self, doc: dict) -> None:
        self.aws.client("dynamodb").put_item(TableName=self.routes_table, Item=to_item(doc))

    def delete_route(self, route_id: str) -> None:
        self.aws.client("dynamodb").delete_item(TableName=self.routes_table,
                                                Key={"route_id": {"S": route_id}})

    # ---- the stream, as Lambda would deliver it --------------------------------------

    def next_event(self) -> dict:
        """Every stream record written since the previous call, as a Lambda event."""
        streams = self.aws.client("dynamodbstreams")
        shards = streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        records = []
        for shard in shards:
            sid = shard["ShardId"]
            it = self._iterators.get(sid) or streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=sid, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            while True:
                page = streams.get_records(ShardIterator=it, Limit=1000)
                it = page["NextShardIterator"]
                records.extend(page["Records"])
                if not page["Records"]:
                    break
            self._iterators[sid] = it
        return {"Records": [lambda_record(r, self.stream_arn) for r in records]}

    # ---- reading the world back ------------------------------------------------------

    def status(self, route_id: str) -> dict | None:
        item = self.aws.client("dynamodb").get_item(
            TableName=self.state_table,
            Key={"route_id": {"S": route_id}, "kind": {"S": "status"}}).get("Item")
        if item is None:
            return None
        return boto3.dynamodb.types.TypeDeserializer().deserialize({"M": item})

    def published_events(self) -> list[dict]:
        sqs = self.aws.client("sqs")
        out = []
        while True:
            msgs = sqs.receive_message(QueueUrl=self.events_queue_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0).get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.events_queue_url, ReceiptHandle=m["ReceiptHandle"])

    def api_methods(self) -> dict[tuple[str, str], dict]:
        apigw = self.aws.client("apigateway")
        items = apigw.get_resources(restApiId=self.rest_api_id, embed=["methods"])["items"]
        return {(r["path"], m): body for r in items for m, body in (r.get("resourceMethods") or {}).items()}

    def api_paths(self) -> set[str]:
        apigw = self.aws.client("apigateway")
        return {r["path"] for r in apigw.get_resources(restApiId=self.rest_api_id)["items"]}

    def stage_variables(self) -> dict[str, str] | None:
        apigw = self.aws.client("apigateway")
        try:
            return apigw.get_stage(restApiId=self.rest_api_id, stageName=self.stage).get("variables", {})
        except apigw.exceptions.NotFoundException:
            return None


CONTEXT = types.SimpleNamespace(
    function_name="turnout-reconcile",
    aws_request_id="test",
    memory_limit_in_mb=512,
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:turnout-reconcile",
    get_remaining_time_in_millis=lambda: 300000,
)


def route(route_id: str, path: str, *urls: str, methods=("GET", "POST"), **extra) -> dict:
    return {
        "route_id": route_id,
        "path": path,
        "methods": list(methods),
        "upstreams": [{"name": f"u{i}", "url": u, "priority": i} for i, u in enumerate(urls)],
        **extra,
    }


class Harness:
    """Runs the real handler the way Lambda would, counting every AWS call it makes."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.calls: list[str] = []
        self.fail_next: dict[str, int] = {}
        session = boto3.Session(region_name=stack.aws.region)
        session.events.register("before-call", self._on_call)
        self.session_events = session.events
        env = dict(stack.env, AWS_ENDPOINT_URL=stack.aws.url)
        self.env = env
        self.handler = make_handler(
            lambda: Dependencies.from_session(session, Settings.from_env(env))
        )

    def _on_call(self, model, **kwargs):
        service = model.service_model.service_name
        name = f"{service}.{model.name}"
        self.calls.append(name)
        if self.fail_next.get(name):
            self.fail_next[name] -= 1
            raise ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "Too Many Requests"},
                               "ResponseMetadata": {"HTTPStatusCode": 429}}, model.name)

    def resync(self) -> dict:
        """What the schedule does: reconcile everything, remove what no route owns."""
        return self.run({"action": "resync"})

    def run(self, event: dict | None = None) -> dict:
        event = self.stack.next_event() if event is None else event
        token = function_environment.set(self.env)
        try:
            self.calls.clear()
            return self.handler(event, CONTEXT)
        finally:
            function_environment.reset(token)

    def apigateway_writes(self) -> list[str]:
        return [c for c in self.calls if c.startswith("apigateway.")
                and not c.split(".", 1)[1].startswith(("Get", "List"))]
