"""``Ref`` and ``Fn::GetAtt`` values of deployed resources, read back from the service APIs.

moto's own evaluation of outputs is unreliable (it drops every output when one attribute is
unknown, returns Python reprs for some Refs and leaves the PhysicalResourceId of an event bus
empty), so the deployer asks the services instead. Values of resources the deployer created
itself come from those creations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from local_cloud.clients import AwsClients
from local_cloud.intrinsics import UnresolvableError
from local_cloud.moto_template import ResourceValues

Getter = Callable[[AwsClients, str], Any]


def _table(field: str) -> Getter:
    return lambda aws, name: aws("dynamodb").describe_table(TableName=name)["Table"][field]


def _queue_arn(aws: AwsClients, url: str) -> str:
    queue_url = aws("sqs").get_queue_url(QueueName=url.rstrip("/").rsplit("/", 1)[-1])["QueueUrl"]
    return aws("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _root_resource(aws: AwsClients, api_id: str) -> str:
    for page in aws("apigateway").get_paginator("get_resources").paginate(restApiId=api_id):
        for item in page["items"]:
            if item["path"] == "/":
                return item["id"]
    raise UnresolvableError(f"RestApi {api_id} has no root resource")


def _log_group_arn(aws: AwsClients, name: str) -> str:
    for group in aws("logs").describe_log_groups(logGroupNamePrefix=name).get("logGroups", []):
        if group["logGroupName"] == name:
            return group["arn"]
    raise UnresolvableError(f"log group {name} not found")


ATTRIBUTES: dict[str, dict[str, Getter]] = {
    "AWS::DynamoDB::Table": {"Arn": _table("TableArn"), "StreamArn": _table("LatestStreamArn")},
    "AWS::SQS::Queue": {
        "Arn": _queue_arn,
        "QueueName": lambda aws, url: url.rstrip("/").rsplit("/", 1)[-1],
        "QueueUrl": lambda aws, url: url,
    },
    "AWS::Events::EventBus": {
        "Name": lambda aws, name: name,
        "Arn": lambda aws, name: aws("events").describe_event_bus(Name=name)["Arn"],
    },
    "AWS::Events::Rule": {
        "Arn": lambda aws, name: aws("events").describe_rule(Name=name)["Arn"],
    },
    "AWS::Lambda::Function": {
        "Arn": lambda aws, name: aws("lambda").get_function_configuration(
            FunctionName=name)["FunctionArn"],
    },
    "AWS::IAM::Role": {
        "Arn": lambda aws, name: aws("iam").get_role(RoleName=name)["Role"]["Arn"],
        "RoleId": lambda aws, name: aws("iam").get_role(RoleName=name)["Role"]["RoleId"],
    },
    "AWS::StepFunctions::StateMachine": {
        "Arn": lambda aws, arn: arn,
        "Name": lambda aws, arn: arn.rsplit(":", 1)[-1],
    },
    "AWS::ApiGateway::RestApi": {
        "RootResourceId": _root_resource,
        "RestApiId": lambda aws, api_id: api_id,
    },
    "AWS::Logs::LogGroup": {"Arn": _log_group_arn},
    "AWS::SNS::Topic": {
        "TopicArn": lambda aws, arn: arn,
        "TopicName": lambda aws, arn: arn.rsplit(":", 1)[-1],
    },
}


class StackValues:
    """Resolves ``(logical_id, attribute)`` for the resources of one deployed stack."""

    def __init__(
        self,
        aws: AwsClients,
        *,
        resources: Mapping[str, Mapping[str, Any]],
        physical_ids: Mapping[str, str],
        created: Mapping[str, ResourceValues],
        name_property: Callable[[str, str], Any],
    ) -> None:
        self._aws = aws
        self._types = {name: r.get("Type", "") for name, r in resources.items()}
        self._physical_ids = dict(physical_ids)
        self._created = dict(created)
        self._name_property = name_property
        self._cache: dict[tuple[str, str | None], Any] = {}

    def add(self, logical_id: str, values: ResourceValues) -> None:
        """Record a resource the deployer created itself."""
        self._created[logical_id] = values

    def __call__(self, logical_id: str, attribute: str | None) -> Any:
        key = (logical_id, attribute)
        if key not in self._cache:
            self._cache[key] = self._resolve(logical_id, attribute)
        return self._cache[key]

    def _resolve(self, logical_id: str, attribute: str | None) -> Any:
        if logical_id in self._created:
            values = self._created[logical_id]
            if attribute is None:
                return values.ref
            if attribute in values.attributes:
                return values.attributes[attribute]
            raise UnresolvableError(f"{logical_id}.{attribute}")
        resource_type = self._types.get(logical_id, "")
        physical_id = self._physical_ids.get(logical_id)
        if resource_type == "AWS::Events::EventBus":
            physical_id = self._name_property(logical_id, "Name") or physical_id
        if not physical_id:
            raise UnresolvableError(f"{logical_id} has no physical id")
        if attribute is None:
            return physical_id
        getter = ATTRIBUTES.get(resource_type, {}).get(attribute)
        if getter is None:
            raise UnresolvableError(f"{resource_type} attribute {attribute}")
        return getter(self._aws, physical_id)
