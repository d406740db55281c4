"""Test support: the parts of turnout's stack the reconciler touches, created on the embedded
AWS endpoint with the same shape as ``cloudformation/turnout.yaml``, plus a reader that turns
the routes table's real stream records into the Lambda event AWS would deliver."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import boto3

from control_plane.model.item import to_item
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
