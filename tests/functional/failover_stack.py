"""Test support: the failover part of ``cloudformation/turnout.yaml`` deployed on the embedded AWS.

:func:`failover_template` keeps the template's failover resources and everything they refer
to (tables, bus, REST API, parameters), so the workflow deploys exactly as the template says
while the rest of the stack is elsewhere. :class:`FailoverStack` runs it in a
:class:`~local_cloud.runtime.LocalCloud` (the state machine on moto's interpreter, its Lambda
tasks in this process), serves routes through the real reconciler core, and reads back what a
user would look at: the stage variable, the status, audit items, events, executions.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
from boto3.dynamodb.types import TypeDeserializer

from control_plane.adapters.apigateway import ApiGatewayAdapter
from control_plane.adapters.events import EventPublisher
from control_plane.adapters.route_store import RouteStore
from control_plane.model.health_signals import alarm_name
from control_plane.model.item import from_item, to_item
from control_plane.reconcile.reconciler import ReconcileSession
from control_plane.reconcile.targets import TargetsComponent
from control_plane.settings import Settings
from local_cloud import patches
from local_cloud.emulator import Emulator
from local_cloud.intrinsics import references
from local_cloud.runtime import LocalCloud
from local_cloud.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "cloudformation" / "turnout.yaml"
SCHEMAS = ROOT / "schemas" / "events"
STACK = "turnout"
PROXY_FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:turnout-data-plane"


def failover_template() -> dict:
    """The template's ``Failover*`` resources and their transitive dependencies."""
    template = load_template(TEMPLATE)
    resources = template["Resources"]
    wanted = [name for name in resources if name.startswith("Failover")]
    kept: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in kept or name not in resources:
            continue
        kept.add(name)
        resource = resources[name]
        depends = resource.get("DependsOn") or []
        wanted += [depends] if isinstance(depends, str) else list(depends)
        wanted += sorted(references(resource.get("Properties") or {}))
    outputs = {name: o for name, o in (template.get("Outputs") or {}).items()
               if references(o.get("Value")) <= kept | set(template.get("Parameters") or {})}
    return {**{k: v for k, v in template.items() if k not in ("Resources", "Outputs")},
            "Resources": {name: resources[name] for name in resources if name in kept},
            "Outputs": outputs}


def event_schemas() -> dict[str, dict]:
    schemas = {}
    for path in SCHEMAS.glob("*.schema.json"):
        document = json.loads(path.read_text())
        schemas[document["properties"]["detail-type"]["const"]] = document
    return schemas


class FailoverStack:
    """The failover workflow deployed and running; one per test."""

    def __init__(self, aws, cloud: LocalCloud) -> None:
        self.aws = aws
        self.cloud = cloud
        self.outputs = cloud.outputs
        self.routes_table = self.outputs["RoutesTableName"]
        self.state_table = self.outputs["StateTableName"]
        self.bus = self.outputs["EventBusName"]
        self.rest_api_id = self.outputs["RestApiId"]
        self.stage = self.outputs["StageName"]
        self.state_machine_arn = self.outputs["FailoverStateMachineArn"]
        self.ddb = aws.client("dynamodb")
        self.sfn = aws.client("stepfunctions")
        self.events_queue_url = self._subscribe_queue()
        self._events: list[dict] = []

    # ---- serving a route, as the reconciler does -------------------------------------

    def serve(self, doc: dict, *, targets: bool = False) -> dict:
        """Write the route item and reconcile it (real reconciler core); its status after.

        ``proxy`` routes integrate with a data-plane function ARN that need not exist here;
        ``targets`` routes get their target groups and listener rule on the stack's ALB from
        the reconciler's targets component (API Gateway reaches the ALB through a VPC link
        that this partial stack does not have, so the integration names a stand-in).
        """
        self.ddb.put_item(TableName=self.routes_table, Item=to_item(doc))
        options = {"proxy_function_arn": PROXY_FUNCTION_ARN}
        components = []
        if targets:
            settings = Settings(listener_arn=self.outputs["TargetsListenerArn"],
                                vpc_id=self.outputs["TargetsVpcId"])
            components.append(TargetsComponent.build(settings, self.aws.client))
            options.update(vpc_link_id="local-vpc-link",
                           load_balancer_dns=self.outputs["TargetsLoadBalancerDnsName"],
                           load_balancer_arn=self.outputs["TargetsLoadBalancerArn"])
        session = ReconcileSession(
            store=RouteStore(self.ddb, self.routes_table, self.state_table),
            gateway=ApiGatewayAdapter(self.aws.client("apigateway"), self.rest_api_id,
                                      self.stage),
            publisher=EventPublisher(self.aws.client("events"), self.bus),
            allow_loopback=True,
            method_options=options,
            components=components,
        )
        session.reconcile(doc["route_id"])
        session.finish()
        self.events()  # the reconciler's own events are not what the tests look at
        self._events.clear()
        return self.status(doc["route_id"])

    # ---- what the prober and CloudWatch would do -------------------------------------

    def set_health(self, route_id: str, upstream: str, healthy: bool, *,
                   successes: int = 0, failures: int = 0) -> None:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        item = {"route_id": route_id, "kind": f"health#{upstream}", "healthy": healthy,
                "consecutive_successes": successes if healthy else 0,
                "consecutive_failures": 0 if healthy else max(failures, 1),
                "last_probe_time": now, "last_change_time": now}
        self.ddb.put_item(TableName=self.state_table, Item=to_item(item))

    def alarm(self, route_id: str, upstream: str, state: str, *, previous: str | None = None,
              timestamp: str | None = None, copies: int = 1) -> None:
        """Publish the alarm's state change to the default bus, as CloudWatch does."""
        name = alarm_name(route_id, upstream)
        arn = f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"
        stamp = timestamp or datetime.now(UTC).isoformat(timespec="milliseconds")
        detail = {
            "alarmName": name,
            "state": {"value": state, "reason": f"test: {state}", "timestamp": stamp},
            "previousState": {"value": previous or ("OK" if state == "ALARM" else "ALARM"),
                              "timestamp": stamp},
            "configuration": {"metrics": []},
        }
        entry = {"Source": "aws.cloudwatch", "DetailType": "CloudWatch Alarm State Change",
                 "Resources": [arn], "Detail": json.dumps(detail)}
        events = self.aws.client("events")
        for start in range(0, copies, 10):
            events.put_events(Entries=[entry] * min(10, copies - start))

    def verdict(self, route_id: str, upstream: str, healthy: bool) -> None:
        """Publish the prober's ``Upstream Health Changed`` (after writing the health item)."""
        self.set_health(route_id, upstream, healthy, successes=2, failures=2)
        detail = {"route_id": route_id, "spec_hash": None, "upstream": upstream,
                  "upstream_kind": "url", "healthy": healthy, "previous_healthy": not healthy,
                  "reason": "UpstreamHealthy" if healthy else "UpstreamUnhealthy",
                  "message": "verdict flipped", "consecutive_successes": 2 if healthy else 0,
                  "consecutive_failures": 0 if healthy else 2, "last_error": None,
                  "time": datetime.now(UTC).isoformat()}
        self.aws.client("events").put_events(Entries=[{
            "Source": "turnout", "DetailType": "Upstream Health Changed",
            "EventBusName": self.bus, "Detail": json.dumps(detail)}])

    # ---- reading the world back -------------------------------------------------------

    def stage_variables(self) -> dict[str, str]:
        stage = self.aws.client("apigateway").get_stage(restApiId=self.rest_api_id,
                                                        stageName=self.stage)
        return stage.get("variables") or {}

    def rule_weights(self, route_id: str) -> dict[str, int]:
        """Upstream name -> weight in the route's listener rule on the ALB."""
        elbv2 = self.aws.client("elbv2")
        rules = elbv2.describe_rules(ListenerArn=self.outputs["TargetsListenerArn"])["Rules"]
        groups = {g["TargetGroupArn"]: g for g in elbv2.describe_target_groups()["TargetGroups"]}
        tags = {d["ResourceArn"]: {t["Key"]: t["Value"] for t in d["Tags"]}
                for d in elbv2.describe_tags(ResourceArns=list(groups))["TagDescriptions"]}
        for rule in rules:
            values = [c.get("HttpHeaderConfig", {}).get("Values") for c in rule["Conditions"]]
            if [route_id] not in values:
                continue
            forward = rule["Actions"][0]["ForwardConfig"]["TargetGroups"]
            return {tags[g["TargetGroupArn"]]["turnout:upstream"]: g["Weight"] for g in forward}
        return {}

    def items(self, route_id: str) -> list[dict]:
        raw = self.ddb.query(TableName=self.state_table, ConsistentRead=True,
                             KeyConditionExpression="route_id = :r",
                             ExpressionAttributeValues={":r": {"S": route_id}})["Items"]
        return [from_item(i) for i in raw]

    def item(self, route_id: str, kind: str) -> dict | None:
        raw = self.ddb.get_item(TableName=self.state_table, ConsistentRead=True,
                                Key={"route_id": {"S": route_id}, "kind": {"S": kind}})
        return None if "Item" not in raw else from_item(raw["Item"])

    def status(self, route_id: str) -> dict | None:
        return self.item(route_id, "status")

    def audit(self, route_id: str) -> list[dict]:
        return sorted((i for i in self.items(route_id) if i["kind"].startswith("failover#")),
                      key=lambda i: i["kind"])

    def events(self) -> list[dict]:
        """Every turnout event published so far (validated against its schema)."""
        sqs = self.aws.client("sqs")
        schemas = event_schemas()
        while True:
            messages = sqs.receive_message(QueueUrl=self.events_queue_url,
                                           MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                break
            for message in messages:
                event = json.loads(message["Body"])
                schema = schemas.get(event["detail-type"])
                if schema is not None:
                    jsonschema.validate(event, schema,
                                        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
                self._events.append(event)
                sqs.delete_message(QueueUrl=self.events_queue_url,
                                   ReceiptHandle=message["ReceiptHandle"])
        return list(self._events)

    def event_types(self) -> list[str]:
        return [e["detail-type"] for e in self.events()]

    def executions(self, route_id: str | None = None) -> list[dict]:
        """The workflow's executions (those of ``route_id``: alarm and manual ones)."""
        found = []
        for page in self.sfn.get_paginator("list_executions").paginate(
                stateMachineArn=self.state_machine_arn):
            found.extend(page["executions"])
        if route_id is None:
            return found
        prefixes = tuple(f"{route_id[:40]}-{label}-" for label in ("alarm", "ok", "down", "up"))
        prefixes += (f"manual-{route_id}-",)
        return [e for e in found if e["name"].startswith(prefixes)]

    def wait_for_executions(self, route_id: str | None = None,
                            timeout: float = 60.0) -> list[dict]:
        """Wait until every execution (of ``route_id``) has finished; their descriptions."""
        deadline = time.monotonic() + timeout
        while True:
            self.cloud.wait_idle(5)
            executions = self.executions(route_id)
            if all(e["status"] != "RUNNING" for e in executions):
                return [self.sfn.describe_execution(executionArn=e["executionArn"])
                        for e in executions]
            assert time.monotonic() < deadline, f"executions still running: {executions}"
            time.sleep(0.05)

    def wait_for_state(self, execution_arn: str, state_name: str, timeout: float = 30.0) -> None:
        """Wait until the execution has entered ``state_name``."""
        deadline = time.monotonic() + timeout
        while not any(e.get("stateEnteredEventDetails", {}).get("name") == state_name
                      for e in self.history(execution_arn)):
            assert time.monotonic() < deadline, f"{execution_arn} never entered {state_name}"
            time.sleep(0.05)

    def running(self, route_id: str, timeout: float = 10.0) -> list[dict]:
        """The route's executions running now (once the trigger has started pending ones)."""
        self.cloud.wait_idle(timeout)
        return [e for e in self.executions(route_id) if e["status"] == "RUNNING"]

    def history(self, execution_arn: str) -> list[dict]:
        return self.sfn.get_execution_history(executionArn=execution_arn,
                                              maxResults=1000)["events"]

    def start_manual(self, route_id: str, target: str, **trigger) -> str:
        return self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn, name=f"manual-{route_id}-{time.time_ns()}",
            input=json.dumps({"route_id": route_id,
                              "trigger": {"type": "manual", "target": target,
                                          "requested_by": "tester", **trigger}}),
        )["executionArn"]

    def _subscribe_queue(self) -> str:
        sqs = self.aws.client("sqs")
        url = sqs.create_queue(QueueName="failover-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        events = self.aws.client("events")
        events.put_rule(Name="all-turnout-events", EventBusName=self.bus,
                        EventPattern=json.dumps({"source": ["turnout"]}))
        events.put_targets(Rule="all-turnout-events", EventBusName=self.bus,
                           Targets=[{"Id": "queue", "Arn": arn}])
        return url


@contextmanager
def failover_stack(aws, tmp_path: Path) -> Iterator[FailoverStack]:
    """Deploy the failover part of the template and run it until the block ends."""
    Emulator.attach(aws.url)
    patches.apply_patches()
    folder = tmp_path / "cloudformation"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "turnout.yaml").write_text(json.dumps(failover_template()))
    shutil.copy(ROOT / "cloudformation" / "failover.asl.json", folder / "failover.asl.json")
    cloud = LocalCloud(template_path=folder / "turnout.yaml", stack_name=STACK,
                       emulator_url=aws.url, source_root=ROOT, allow_loopback_upstreams=True)
    with cloud:
        yield FailoverStack(aws, cloud)


def deserialize(item: dict) -> dict:
    return TypeDeserializer().deserialize({"M": item})


def interpreter_events(service: str, region: str):
    """The event system of the client moto's Step Functions interpreter sends its ``service``
    tasks through (one per region and service, see :mod:`local_cloud.patches`): a botocore
    hook registered there sees exactly the workflow's own calls."""
    from moto.stepfunctions.parser.asl.utils import boto_client

    patches.apply_patches()  # from here on the interpreter's clients are the shared ones
    return boto_client.boto_client_for(region, service).meta.events
