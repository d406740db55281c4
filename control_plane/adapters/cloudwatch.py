"""CloudWatch adapter: the upstream alarms (read by prefix, put, delete, tags) and metric data
through the API.

Every botocore failure leaves through :func:`~control_plane.adapters.aws_errors.translate`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from control_plane.adapters.aws_errors import translate

_DELETE_BATCH = 100
_METRIC_BATCH = 20


class CloudWatchAlarms:
    def __init__(self, client) -> None:
        self.client = client

    def describe(self, prefix: str) -> list[dict[str, Any]]:
        """Every metric alarm whose name starts with ``prefix``."""
        alarms: list[dict[str, Any]] = []
        try:
            paginator = self.client.get_paginator("describe_alarms")
            for page in paginator.paginate(AlarmNamePrefix=prefix, AlarmTypes=["MetricAlarm"]):
                alarms.extend(page.get("MetricAlarms", []))
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action="DescribeAlarms") from exc
        return [a for a in alarms if str(a.get("AlarmName", "")).startswith(prefix)]

    def put(self, request: Mapping[str, Any]) -> None:
        try:
            self.client.put_metric_alarm(**request)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action="PutMetricAlarm") from exc

    def delete(self, names: Iterable[str]) -> None:
        names = list(names)
        for start in range(0, len(names), _DELETE_BATCH):
            try:
                self.client.delete_alarms(AlarmNames=names[start:start + _DELETE_BATCH])
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, action="DeleteAlarms") from exc

    def tags(self, alarm_arn: str) -> dict[str, str]:
        try:
            raw = self.client.list_tags_for_resource(ResourceARN=alarm_arn)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action="ListTagsForResource") from exc
        return {t["Key"]: t["Value"] for t in raw.get("Tags", [])}


class MetricsApi:
    """``PutMetricData``, in requests of at most 20 datapoints."""

    def __init__(self, client) -> None:
        self.client = client

    def put(self, namespace: str, datums: list[dict[str, Any]]) -> None:
        for start in range(0, len(datums), _METRIC_BATCH):
            try:
                self.client.put_metric_data(Namespace=namespace,
                                            MetricData=datums[start:start + _METRIC_BATCH])
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, action="PutMetricData") from exc
