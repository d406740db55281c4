"""What moto's CloudFormation ignores, done through the service APIs, one entry per type.

Two kinds of steps, both idempotent (a redeploy runs them again):

- :data:`COMPLETERS` finish a resource moto did create but without some of its properties
  (``(aws, logical_id, properties, physical_id) -> message | None``, the message saying
  what it changed). Today: a DynamoDB table's
  ``TimeToLiveSpecification``.
- :data:`CREATORS` create a resource of a type moto skips entirely
  (``(aws, logical_id, properties, names) -> ResourceValues``), upserting by a deterministic
  name so a second deploy finds the first one's resource. Today: ``AWS::CloudWatch::Alarm``
  and ``AWS::SecretsManager::Secret``.

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


COMPLETERS: dict[str, Completer] = {
    "AWS::DynamoDB::Table": complete_table,
}

CREATORS: dict[str, Creator] = {
    "AWS::CloudWatch::Alarm": create_alarm,
    "AWS::SecretsManager::Secret": create_secret,
}
