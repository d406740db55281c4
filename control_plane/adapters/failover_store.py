"""DynamoDB adapter for the failover workflow: what it reads about a route, and the switch.

Reads are strongly consistent. A route's observed state is one ``Query`` on the state table
(status, failover record, health items, audit items). A switch is one ``TransactWriteItems``:
the failover record (fenced on the workflow's lock) and the status item (conditional on the
spec the reconciler last served and on the upstream the decision moved away from), so a
switch is recorded whole or not at all, and never over a newer reconcile.

    TransactionCanceledException on the record  -> PermanentError(reason="LockLost")
    TransactionCanceledException on the status  -> PermanentError(reason="RouteChanged")
    anything else                                -> aws_errors.translate
"""

from __future__ import annotations

from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from control_plane.adapters.aws_errors import error_code, translate
from control_plane.errors import PermanentError
from control_plane.model.failover import (
    RECORD_KIND,
    AuditEntry,
    Health,
    Record,
    upstream_of_health_kind,
)
from control_plane.model.item import from_item, to_item
from control_plane.model.status import STATUS_KIND, RouteStatus


@dataclass
class RouteState:
    """Everything the state table holds about one route."""

    status: RouteStatus | None = None
    record_item: dict = field(default_factory=dict)
    health: dict[str, Health] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)  # oldest first

    @property
    def record(self) -> Record:
        return Record.from_item(self.record_item)

    @property
    def last_switch(self) -> AuditEntry | None:
        return self.audit[-1] if self.audit else None


def route_state_of(items: list[dict]) -> RouteState:
    """Sort a route's state-table items (plain values) into a :class:`RouteState`."""
    state = RouteState()
    for item in items:
        kind = str(item.get("kind", ""))
        if kind == STATUS_KIND:
            state.status = RouteStatus.from_item(item)
        elif kind == RECORD_KIND:
            state.record_item = item
        elif (upstream := upstream_of_health_kind(kind)) is not None:
            state.health[upstream] = Health.from_item(item)
        elif (entry := AuditEntry.from_item(item)) is not None:
            state.audit.append(entry)
    state.audit.sort(key=lambda e: e.time)
    return state


@dataclass(frozen=True)
class Switch:
    """One switch to record: the record's new fields and the status item's."""

    route_id: str
    owner: str
    spec_hash: str
    from_upstream: str
    expected_active: str | None  # the status item's active_upstream the decision was made on
    to_upstream: str
    active_url: str | None
    message: str | None
    time: str
    kind: str
    execution_arn: str


class FailoverStore:
    def __init__(self, client, routes_table: str, state_table: str) -> None:
        self.client = client
        self.routes_table = routes_table
        self.state_table = state_table

    def route_document(self, route_id: str) -> dict | None:
        """The route item as a plain document (None: the route was deleted)."""
        try:
            raw = self.client.get_item(TableName=self.routes_table,
                                       Key={"route_id": {"S": route_id}}, ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action="read route") from exc
        item = raw.get("Item")
        return None if item is None else from_item(item)

    def route_state(self, route_id: str) -> RouteState:
        items: list[dict] = []
        try:
            paginator = self.client.get_paginator("query")
            for page in paginator.paginate(
                TableName=self.state_table, ConsistentRead=True,
                KeyConditionExpression="route_id = :r",
                ExpressionAttributeValues={":r": {"S": route_id}},
            ):
                items.extend(from_item(i) for i in page.get("Items", []))
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action="read route state") from exc
        return route_state_of(items)

    def record_switch(self, switch: Switch) -> None:
        """Write the switch to the record and the status item, atomically."""
        record_set = ["last_switch_time = :t", "last_switch_kind = :k", "last_switch_from = :f",
                      "last_switch_to = :to", "last_execution_arn = :x"]
        record_remove = ["all_unhealthy_since"]
        values: dict = {":t": switch.time, ":k": switch.kind, ":f": switch.from_upstream,
                        ":to": switch.to_upstream, ":x": switch.execution_arn,
                        ":owner": switch.owner}
        if switch.kind == "manual":
            record_set.append("manual_choice = :to")
        else:
            record_remove.append("manual_choice")
        record = {
            "TableName": self.state_table,
            "Key": to_item({"route_id": switch.route_id, "kind": RECORD_KIND}),
            "UpdateExpression": f"SET {', '.join(record_set)} REMOVE {', '.join(record_remove)}",
            "ConditionExpression": "lock_owner = :owner",
            "ExpressionAttributeValues": to_item(values),
        }
        status_set = ["active_upstream = :to", "updated_at = :t"]
        status_values: dict = {":to": switch.to_upstream, ":t": switch.time,
                               ":h": switch.spec_hash}
        status_remove: list[str] = []
        if switch.active_url is None:
            status_remove.append("active_url")
        else:
            status_set.append("active_url = :u")
            status_values[":u"] = switch.active_url
        if switch.message is not None:
            status_set.append("message = :m")
            status_values[":m"] = switch.message
        condition = "observed_spec_hash = :h AND "
        if switch.expected_active is not None:
            condition += "active_upstream = :e"
            status_values[":e"] = switch.expected_active
        else:
            condition += "attribute_not_exists(active_upstream)"
        expression = f"SET {', '.join(status_set)}"
        if status_remove:
            expression += f" REMOVE {', '.join(status_remove)}"
        status = {
            "TableName": self.state_table,
            "Key": to_item({"route_id": switch.route_id, "kind": STATUS_KIND}),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": to_item(status_values),
        }
        try:
            self.client.transact_write_items(TransactItems=[{"Update": record},
                                                            {"Update": status}])
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                raise _cancelled(exc, switch) from exc
            raise translate(exc, action="record switch") from exc
        except BotoCoreError as exc:
            raise translate(exc, action="record switch") from exc


def _cancelled(exc: ClientError, switch: Switch) -> PermanentError:
    reasons = [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
    if reasons and reasons[0] == "ConditionalCheckFailed":
        return PermanentError(f"route '{switch.route_id}': this execution no longer holds the "
                              "failover lock (it expired and was taken over)", reason="LockLost")
    if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
        return PermanentError(f"route '{switch.route_id}' changed while the switch was prepared "
                              "(a newer reconcile or switch won); nothing was switched",
                              reason="RouteChanged")
    return translate(exc, action="record switch")
