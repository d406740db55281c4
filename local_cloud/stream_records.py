"""The documents a DynamoDB-stream event source mapping exchanges, as AWS shapes them.

Pure functions, no I/O:

- :func:`lambda_record`: a ``GetRecords`` record turned into a record of the Lambda event
  ``{"Records": [...]}`` (epoch-seconds ``ApproximateCreationDateTime``, base64 binaries,
  ``eventSourceARN``);
- :func:`first_failed_index`: where a batch failed, read from the function's response
  (``ReportBatchItemFailures``);
- :func:`on_failure_record`: the invocation record sent to the on-failure destination.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any


def _attribute_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    converted: dict[str, Any] = {}
    for kind, inner in value.items():
        if kind == "B" and isinstance(inner, bytes | bytearray):
            converted[kind] = base64.b64encode(inner).decode("ascii")
        elif kind == "BS":
            converted[kind] = [base64.b64encode(b).decode("ascii")
                               if isinstance(b, bytes | bytearray) else b for b in inner]
        elif kind == "M":
            converted[kind] = {k: _attribute_value(v) for k, v in inner.items()}
        elif kind == "L":
            converted[kind] = [_attribute_value(v) for v in inner]
        else:
            converted[kind] = inner
    return converted


def _image(image: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _attribute_value(value) for name, value in image.items()}


def creation_time(record: Mapping[str, Any]) -> datetime | None:
    """The record's ``ApproximateCreationDateTime`` as an aware datetime."""
    value = record.get("dynamodb", {}).get("ApproximateCreationDateTime")
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return None


def lambda_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """One ``GetRecords`` record (as boto3 parses it) in the shape Lambda delivers."""
    source = record.get("dynamodb", {})
    dynamodb: dict[str, Any] = {}
    created = creation_time(record)
    if created is not None:
        dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
    for field in ("Keys", "NewImage", "OldImage"):
        if field in source:
            dynamodb[field] = _image(source[field])
    for field in ("SequenceNumber", "SizeBytes", "StreamViewType"):
        if field in source:
            dynamodb[field] = source[field]
    return {
        "eventID": record.get("eventID"),
        "eventName": record.get("eventName"),
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": record.get("eventSource", "aws:dynamodb"),
        "awsRegion": record.get("awsRegion"),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }


def sequence_number(record: Mapping[str, Any]) -> str:
    """The record's ``SequenceNumber`` (present on every stream record)."""
    return record["dynamodb"]["SequenceNumber"]


def first_failed_index(response: Any, sequence_numbers: Sequence[str]) -> int | None:
    """Index of the first record to retry, from a ``ReportBatchItemFailures`` response.

    ``None``: the batch succeeded (no response, or an empty / missing ``batchItemFailures``).
    ``0``: the whole batch failed (an entry without ``itemIdentifier``, or one that names no
    record of the batch, as Lambda treats it). Otherwise the position of the lowest failed
    sequence number: the records before it are done.
    """
    if not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures")
    if not failures:
        return None
    if not isinstance(failures, list):
        return 0
    positions = {seq: index for index, seq in enumerate(sequence_numbers)}
    indexes = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in positions:
            return 0
        indexes.append(positions[identifier])
    return min(indexes)


def _iso(moment: datetime | None, *, millis: bool = False) -> str | None:
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond // 1000:03d}Z" if millis else f"{text}Z"


def on_failure_record(
    *,
    records: Sequence[Mapping[str, Any]],
    function_arn: str,
    stream_arn: str,
    shard_id: str,
    condition: str,
    invoke_count: int,
    function_error: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The invocation record Lambda sends to an on-failure destination for discarded records.

    ``condition`` is ``RetryAttemptsExhausted`` or ``RecordAgeExceeded``.
    """
    response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if function_error:
        response_context["functionError"] = function_error
    if invoke_count == 0:
        response_context = {}
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": response_context,
        "version": "1.0",
        "timestamp": _iso(now, millis=True),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": sequence_number(records[0]),
            "endSequenceNumber": sequence_number(records[-1]),
            "approximateArrivalOfFirstRecord": _iso(creation_time(records[0])),
            "approximateArrivalOfLastRecord": _iso(creation_time(records[-1])),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }
