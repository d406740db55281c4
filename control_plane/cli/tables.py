"""The routes table and the state table, as the CLI reads and writes them.

Route items hold plain DynamoDB attribute types (``control_plane.model.item``): the same
item a person could write with ``aws dynamodb put-item``. Status items are written by the
control plane (partition key ``route_id``, sort key ``kind = "status"``) and read here as
they are, so a phase this CLI does not know yet still shows.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextlib import AbstractContextManager

from boto3.dynamodb.types import TypeDeserializer

from control_plane.cli.aws import AwsContext, aws_errors
from control_plane.model.item import from_item, to_item
from control_plane.model.status import STATUS_KIND

_deserializer = TypeDeserializer()
BATCH_GET_LIMIT = 100  # keys per BatchGetItem call
UNPROCESSED_RETRIES = 8


class RoutesTable:
    """Desired state: one item per route, keyed by ``route_id``."""

    def __init__(self, context: AwsContext) -> None:
        self._context = context
        self.name = context.routes_table
        self._client = context.client("dynamodb")

    def _errors(self) -> AbstractContextManager[None]:
        return aws_errors(self._context, table=self.name, option="--table")

    def put(self, document: dict) -> None:
        """Write the whole route item (a put, like ``aws dynamodb put-item``)."""
        with self._errors():
            self._client.put_item(TableName=self.name, Item=to_item(document))

    def get(self, route_id: str) -> dict | None:
        with self._errors():
            response = self._client.get_item(
                TableName=self.name, Key={"route_id": {"S": route_id}}, ConsistentRead=True
            )
        item = response.get("Item")
        return None if item is None else from_item(item)

    def get_many(self, route_ids: Iterable[str]) -> dict[str, dict]:
        """The route documents of ``route_ids`` that exist, by route_id (strongly consistent)."""
        keys = [{"route_id": {"S": route_id}} for route_id in dict.fromkeys(route_ids)]
        with self._errors():
            items = _batch_get(self._client, self.name, keys)
        return {item["route_id"]["S"]: from_item(item) for item in items}

    def delete(self, route_id: str) -> bool:
        """Delete the route's item; False when there was none."""
        with self._errors():
            response = self._client.delete_item(
                TableName=self.name, Key={"route_id": {"S": route_id}}, ReturnValues="ALL_OLD"
            )
        return bool(response.get("Attributes"))

    def ids(self) -> list[str]:
        """Every route_id in the table."""
        with self._errors():
            items = _scan(self._client, self.name, ProjectionExpression="route_id")
        return sorted(item["route_id"]["S"] for item in items if "S" in item.get("route_id", {}))

    def all(self) -> list[dict]:
        """Every route document, ordered by route_id."""
        with self._errors():
            items = _scan(self._client, self.name)
        return sorted((from_item(item) for item in items), key=lambda d: str(d.get("route_id")))


class StateTable:
    """Observed state, written by the control plane: here only its status items."""

    def __init__(self, context: AwsContext) -> None:
        self._context = context
        self.name = context.state_table
        self._client = context.client("dynamodb")

    def _errors(self) -> AbstractContextManager[None]:
        return aws_errors(self._context, table=self.name, option="--state-table")

    def status(self, route_id: str) -> dict | None:
        with self._errors():
            response = self._client.get_item(
                TableName=self.name,
                Key={"route_id": {"S": route_id}, "kind": {"S": STATUS_KIND}},
                ConsistentRead=True,
            )
        item = response.get("Item")
        return None if item is None else _status(item)

    def statuses_of(self, route_ids: Iterable[str]) -> dict[str, dict]:
        """The status items of ``route_ids`` that have one, by route_id (strongly consistent)."""
        keys = [{"route_id": {"S": route_id}, "kind": {"S": STATUS_KIND}}
                for route_id in dict.fromkeys(route_ids)]
        with self._errors():
            items = _batch_get(self._client, self.name, keys)
        return {item["route_id"]["S"]: _status(item) for item in items}

    def statuses(self) -> list[dict]:
        """Every route's status item, ordered by route_id."""
        with self._errors():
            items = _scan(
                self._client, self.name,
                FilterExpression="#kind = :status",
                ExpressionAttributeNames={"#kind": "kind"},
                ExpressionAttributeValues={":status": {"S": STATUS_KIND}},
            )
        return sorted((_status(item) for item in items), key=lambda s: str(s.get("route_id")))


def _scan(client, table: str, **kwargs: object) -> list[dict]:
    items: list[dict] = []
    for page in client.get_paginator("scan").paginate(TableName=table, **kwargs):
        items.extend(page.get("Items", []))
    return items


def _batch_get(client, table: str, keys: list[dict]) -> list[dict]:
    """Every item of ``keys`` that exists, BATCH_GET_LIMIT keys per call; keys DynamoDB leaves
    unprocessed (throttling) are asked for again, with a growing pause."""
    items: list[dict] = []
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        pending = keys[start:start + BATCH_GET_LIMIT]
        for attempt in range(UNPROCESSED_RETRIES + 1):
            response = client.batch_get_item(
                RequestItems={table: {"Keys": pending, "ConsistentRead": True}})
            items += response.get("Responses", {}).get(table, [])
            pending = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
            if not pending:
                break
            if attempt == UNPROCESSED_RETRIES:
                raise _throttled("BatchGetItem")
            time.sleep(min(2.0, 0.05 * 2 ** attempt))
    return items


def _throttled(operation: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                  "Message": "keys stayed unprocessed after retries"}}, operation)


def _status(item: dict) -> dict:
    """A status item as plain values, without its sort key."""
    return {
        key: _deserializer.deserialize(value) for key, value in item.items() if key != "kind"
    }
