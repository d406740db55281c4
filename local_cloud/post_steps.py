"""What moto's CloudFormation ignores, done through the service APIs, one entry per type.

Two kinds of steps, both idempotent (a redeploy runs them again):

- :data:`COMPLETERS` finish a resource moto did create but without some of its properties
  (``(aws, logical_id, properties, physical_id) -> message | None``, the message saying
  what it changed). Today: a DynamoDB table's
  ``TimeToLiveSpecification``, a load balancer's ``Tags`` and a REST API's ``BinaryMediaTypes``.
- :data:`CREATORS` create a resource of a type moto skips entirely
  (``(aws, logical_id, properties, names) -> ResourceValues``), upserting by a deterministic
  name so a second deploy finds the first one's resource. Today: ``AWS::CloudWatch::Alarm``
  and ``AWS::SecretsManager::Secret``.

A resource that other stack resources refer to cannot wait until after the stack, so a creator
cannot serve it: such a type is taught to moto's CloudFormation instead, as a model backed by
moto's own service backend (:func:`teach_moto`, run when this module is imported, before any
template is read). Today: ``AWS::ApiGatewayV2::VpcLink``, whose id the reconcile function's
environment carries.

``properties`` arrive evaluated (no intrinsics left). A type with no creator is reported as not
emulated and skipped. Adding a type (API Gateway stage / API key / usage plan, Scheduler
schedules, WAF, ...) is one function and one line in the table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from local_cloud.clients import AwsClients
from local_cloud.moto_template import ResourceValues
from local_cloud.web_acl import create_web_acl


@dataclass(frozen=True)
class Naming:
    """How the deployer names a resource whose template gives it no name."""

    stack_name: str

    def physical_name(self, logical_id: str) -> str:
        return f"{self.stack_name}-{logical_id}"


Completer = Callable[[AwsClients, str, Mapping[str, Any], str], str | None]
Creator = Callable[[AwsClients, str, Mapping[str, Any], Naming], ResourceValues]


def complete_table(aws: AwsClients, logical_id: str, properties: Mapping[str, Any],
                   table_name: str) -> str | None:
    """Apply ``TimeToLiveSpecification`` (moto's CloudFormation leaves TTL disabled)."""
    wanted = properties.get("TimeToLiveSpecification")
    if not wanted:
        return None
    enabled = str(wanted.get("Enabled", False)).lower() == "true"
    attribute = wanted.get("AttributeName")
    current = aws("dynamodb").describe_time_to_live(TableName=table_name)[
        "TimeToLiveDescription"]
    is_enabled = current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
    if is_enabled == enabled and (not enabled or current.get("AttributeName") == attribute):
        return None
    aws("dynamodb").update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": enabled, "AttributeName": attribute},
    )
    return f"{logical_id}: time to live {'on ' + attribute if enabled else 'off'}"


def _tags(properties: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"Key": t["Key"], "Value": str(t["Value"])} for t in properties.get("Tags") or []]


def complete_load_balancer(aws: AwsClients, logical_id: str, properties: Mapping[str, Any],
                           load_balancer_arn: str) -> str | None:
    """Apply ``Tags`` (moto's CloudFormation creates the load balancer without them)."""
    wanted = {t["Key"]: t["Value"] for t in _tags(properties)}
    if not wanted:
        return None
    elbv2 = aws("elbv2")
    [described] = elbv2.describe_tags(ResourceArns=[load_balancer_arn])["TagDescriptions"]
    current = {t["Key"]: t["Value"] for t in described.get("Tags") or []}
    missing = {k: v for k, v in wanted.items() if current.get(k) != v}
    if not missing:
        return None
    elbv2.add_tags(ResourceArns=[load_balancer_arn],
                   Tags=[{"Key": k, "Value": v} for k, v in sorted(missing.items())])
    return f"{logical_id}: tags {', '.join(sorted(missing))}"


def complete_rest_api(aws: AwsClients, logical_id: str, properties: Mapping[str, Any],
                      rest_api_id: str) -> str | None:
    """Apply ``BinaryMediaTypes`` (moto's CloudFormation creates the API without them)."""
    wanted = [str(media) for media in properties.get("BinaryMediaTypes") or []]
    apigateway = aws("apigateway")
    current = apigateway.get_rest_api(restApiId=rest_api_id).get("binaryMediaTypes") or []
    changes = [{"op": "remove", "path": "/binaryMediaTypes/" + media.replace("/", "~1"), "value": media}
               for media in current if media not in wanted]
    changes += [{"op": "add", "path": "/binaryMediaTypes/" + media.replace("/", "~1"), "value": media}
                for media in wanted if media not in current]
    if not changes:
        return None
    apigateway.update_rest_api(restApiId=rest_api_id, patchOperations=changes)
    return f"{logical_id}: binary media types {', '.join(wanted) or 'none'}"


_ALARM_FIELDS = (
    "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions",
    "InsufficientDataActions", "MetricName", "Namespace", "Statistic", "ExtendedStatistic",
    "Dimensions", "Period", "Unit", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
    "ComparisonOperator", "TreatMissingData", "EvaluateLowSampleCountPercentile", "Metrics",
    "ThresholdMetricId",
)
_ALARM_NUMBERS = {"Period": int, "EvaluationPeriods": int, "DatapointsToAlarm": int,
                  "Threshold": float}


def create_alarm(aws: AwsClients, logical_id: str, properties: Mapping[str, Any],
                 naming: Naming) -> ResourceValues:
    """``AWS::CloudWatch::Alarm`` through ``PutMetricAlarm`` (an upsert by name)."""
    name = properties.get("AlarmName") or naming.physical_name(logical_id)
    request: dict[str, Any] = {"AlarmName": name}
    for key in _ALARM_FIELDS:
        if key in properties:
            value = properties[key]
            request[key] = _ALARM_NUMBERS[key](value) if key in _ALARM_NUMBERS else value
    if "ActionsEnabled" in request:
        request["ActionsEnabled"] = str(request["ActionsEnabled"]).lower() == "true"
    if _tags(properties):
        request["Tags"] = _tags(properties)
    aws("cloudwatch").put_metric_alarm(**request)
    alarm = aws("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    return ResourceValues(ref=name, attributes={"Arn": alarm["AlarmArn"]})


def create_secret(aws: AwsClients, logical_id: str, properties: Mapping[str, Any],
                  naming: Naming) -> ResourceValues:
    """``AWS::SecretsManager::Secret``, generating the value once (a redeploy keeps it)."""
    secrets = aws("secretsmanager")
    name = properties.get("Name") or naming.physical_name(logical_id)
    try:
        arn = secrets.describe_secret(SecretId=name)["ARN"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        arn = secrets.create_secret(
            Name=name,
            Description=properties.get("Description", ""),
            SecretString=_secret_string(secrets, properties),
            Tags=_tags(properties),
        )["ARN"]
    return ResourceValues(ref=arn, attributes={"Id": arn})


def _secret_string(secrets: Any, properties: Mapping[str, Any]) -> str:
    import json

    if "SecretString" in properties:
        return str(properties["SecretString"])
    generate = properties.get("GenerateSecretString") or {}
    options: dict[str, Any] = {"PasswordLength": int(generate.get("PasswordLength", 32))}
    for key in ("ExcludeCharacters", "ExcludeLowercase", "ExcludeNumbers", "ExcludePunctuation",
                "ExcludeUppercase", "IncludeSpace", "RequireEachIncludedType"):
        if key in generate:
            options[key] = generate[key]
    password = secrets.get_random_password(**options)["RandomPassword"]
    template = generate.get("SecretStringTemplate")
    if template and generate.get("GenerateStringKey"):
        document = json.loads(template)
        document[generate["GenerateStringKey"]] = password
        return json.dumps(document)
    return password


def create_event_invoke_config(aws: AwsClients, logical_id: str, properties: Mapping[str, Any],
                               naming: Naming) -> ResourceValues:
    """``AWS::Lambda::EventInvokeConfig`` through ``PutFunctionEventInvokeConfig`` (an upsert).

    Stored for the record (``get-function-event-invoke-config`` shows it); the local runtime
    runs an asynchronous invocation once, without retries or an age limit.
    """
    function = str(properties["FunctionName"])
    request: dict[str, Any] = {"FunctionName": function}
    qualifier = properties.get("Qualifier")
    if qualifier and qualifier != "$LATEST":
        request["Qualifier"] = qualifier
    for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds"):
        if key in properties:
            request[key] = int(properties[key])
    if properties.get("DestinationConfig"):
        request["DestinationConfig"] = properties["DestinationConfig"]
    aws("lambda").put_function_event_invoke_config(**request)
    return ResourceValues(ref=f"{function}:{qualifier or '$LATEST'}")


COMPLETERS: dict[str, Completer] = {
    "AWS::DynamoDB::Table": complete_table,
    "AWS::ElasticLoadBalancingV2::LoadBalancer": complete_load_balancer,
    "AWS::ApiGateway::RestApi": complete_rest_api,
}

CREATORS: dict[str, Creator] = {
    "AWS::CloudWatch::Alarm": create_alarm,
    "AWS::SecretsManager::Secret": create_secret,
    "AWS::WAFv2::WebACL": create_web_acl,
    "AWS::Lambda::EventInvokeConfig": create_event_invoke_config,
}


def _vpc_link_model() -> type:
    """``AWS::ApiGatewayV2::VpcLink`` for moto's CloudFormation, kept in moto's apigatewayv2."""
    from moto.apigatewayv2.models import apigatewayv2_backends
    from moto.core.common_models import CloudFormationModel

    def backend(account_id: str, region_name: str) -> Any:
        return apigatewayv2_backends[account_id][region_name]

    class VpcLinkResource(CloudFormationModel):
        def __init__(self, link: Any) -> None:
            self.link = link

        @property
        def physical_resource_id(self) -> str:
            return self.link.id

        @staticmethod
        def cloudformation_name_type() -> str:
            return "Name"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::ApiGatewayV2::VpcLink"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "VpcLinkId"

        def get_cfn_attribute(self, attribute_name: str) -> Any:
            from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

            if attribute_name == "VpcLinkId":
                return self.link.id
            raise UnformattedGetAttTemplateException()

        @classmethod
        def create_from_cloudformation_json(cls, resource_name: str,
                                            cloudformation_json: dict[str, Any],
                                            account_id: str, region_name: str,
                                            **kwargs: Any) -> VpcLinkResource:
            properties = cloudformation_json.get("Properties", {})
            link = backend(account_id, region_name).create_vpc_link(
                name=properties.get("Name", resource_name),
                sg_ids=list(properties.get("SecurityGroupIds") or []),
                subnet_ids=list(properties.get("SubnetIds") or []),
                tags=dict(properties.get("Tags") or {}),
            )
            return cls(link)

        @classmethod
        def update_from_cloudformation_json(cls, original_resource: Any, new_resource_name: str,
                                            cloudformation_json: dict[str, Any],
                                            account_id: str, region_name: str) -> Any:
            properties = cloudformation_json.get("Properties", {})
            wanted = (sorted(properties.get("SecurityGroupIds") or []),
                      sorted(properties.get("SubnetIds") or []))
            link = original_resource.link
            if wanted != (sorted(link.sg_ids), sorted(link.subnet_ids)):
                replacement = cls.create_from_cloudformation_json(
                    new_resource_name, cloudformation_json, account_id, region_name)
                backend(account_id, region_name).delete_vpc_link(link.id)
                return replacement
            link.update(properties.get("Name", link.name))
            return original_resource

        @classmethod
        def delete_from_cloudformation_json(cls, resource_name: str,
                                            cloudformation_json: dict[str, Any],
                                            account_id: str, region_name: str) -> None:
            backend(account_id, region_name).delete_vpc_link(resource_name)

        def is_created(self) -> bool:
            return True

    return VpcLinkResource


MODELS: dict[str, Callable[[], type]] = {
    "AWS::ApiGatewayV2::VpcLink": _vpc_link_model,
}
_taught: dict[str, type] = {}


def teach_moto() -> None:
    """Make moto's CloudFormation create the types in :data:`MODELS` (once per process)."""
    from moto.cloudformation import parsing

    if all(name in _taught for name in MODELS):
        return
    for name, build in MODELS.items():
        if name not in _taught and name not in parsing.get_model_map():
            _taught[name] = build()
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()


teach_moto()
