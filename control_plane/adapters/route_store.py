"""DynamoDB adapter for the routes table (desired state) and the state table (observed state).

Desired routes are read with strongly consistent reads and returned as plain JSON documents
(validation happens in the reconciler, the same code the CLI runs). Status items are written
only by the control plane; a user's ``put-item`` on a route never touches them.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from control_plane.adapters.aws_errors import error_code, translate
from control_plane.model.item import from_item, to_item
from control_plane.model.status import STATUS_KIND, RouteStatus

UNCHECKED = object()


class RouteStore:
    def __init__(self, client, routes_table: str, state_table: str) -> None:
        self.client = client
        self.routes_table = routes_table
        self.state_table = state_table

    def get_desired(self, route_id: str) -> dict | None:
        """The route item as a plain document, or None when it does not exist (deleted)."""
        try:
            raw = self.client.get_item(
                TableName=self.routes_table, Key={"route_id": {"S": route_id}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action="read route") from exc
        item = raw.get("Item")
        return None if item is None else from_item(item)

    def list_route_ids(self) -> list[str]:
        ids: list[str] = []
        try:
            paginator = self.client.get_paginator("scan")
            for page in paginator.paginate(TableName=self.routes_table,
                                           ProjectionExpression="route_id", ConsistentRead=True):
                ids.extend(i["route_id"]["S"] for i in page.get("Items", []) if "S" in i.get("route_id", {}))
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action="list routes") from exc
        return sorted(ids)

    def get_status(self, route_id: str) -> RouteStatus | None:
        try:
            raw = self.client.get_item(
                TableName=self.state_table,
                Key={"route_id": {"S": route_id}, "kind": {"S": STATUS_KIND}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action="read status") from exc
        item = raw.get("Item")
        return None if item is None else RouteStatus.from_item(from_item(item))

    def list_statuses(self) -> list[RouteStatus]:
        out: list[RouteStatus] = []
        try:
            paginator = self.client.get_paginator("scan")
            for page in paginator.paginate(
                TableName=self.state_table,
                FilterExpression="#k = :status",
                ExpressionAttributeNames={"#k": "kind"},
                ExpressionAttributeValues={":status": {"S": STATUS_KIND}},
            ):
                out.extend(RouteStatus.from_item(from_item(i)) for i in page.get("Items", []))
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action="list statuses") from exc
        return sorted(out, key=lambda s: s.route_id)

    def put_status(self, status: RouteStatus, *, expires_at: int | None = None,
                   expected_active: str | None | object = UNCHECKED) -> bool:
        """Write the whole status item.

        With ``expected_active`` the write only succeeds while the stored ``active_upstream`` is
        still that value (``None``: the item has none), so a reconcile never undoes a failover
        that switched the route after the reconcile read its status. Returns False when that
        condition failed and nothing was written.
        """
        item = status.to_item()
        if expires_at is not None:
            item["expires_at"] = expires_at
        request: dict = {"TableName": self.state_table, "Item": to_item(item)}
        if expected_active is not UNCHECKED:
            if expected_active is None:
                request["ConditionExpression"] = "attribute_not_exists(active_upstream)"
            else:
                request["ConditionExpression"] = ("attribute_not_exists(route_id) "
                                                  "OR active_upstream = :expected")
                request["ExpressionAttributeValues"] = {":expected": {"S": str(expected_active)}}
        try:
            self.client.put_item(**request)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise translate(exc, action="write status") from exc
        except BotoCoreError as exc:
            raise translate(exc, action="write status") from exc
        return True
