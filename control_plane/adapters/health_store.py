"""DynamoDB adapter for the prober's health items in the state table.

Reads many items at once (``BatchGetItem``, 100 keys a call) and writes many at once
(``BatchWriteItem``, 25 items a call), retrying what DynamoDB leaves unprocessed. Every
botocore failure leaves through :func:`~control_plane.adapters.aws_errors.translate`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from botocore.exceptions import BotoCoreError, ClientError

from control_plane.adapters.aws_errors import translate
from control_plane.errors import TransientError
from control_plane.model.health import UpstreamProbeRecord, health_kind
from control_plane.model.item import from_item, to_item

_GET_BATCH = 100
_WRITE_BATCH = 25
_ATTEMPTS = 5


class HealthStore:
    def __init__(self, client, state_table: str, *, sleep=time.sleep) -> None:
        self.client = client
        self.state_table = state_table
        self._sleep = sleep

    def get_records(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], UpstreamProbeRecord]:
        """The records of these ``(route_id, upstream)`` pairs that exist."""
        wanted = sorted(set(keys))
        found: dict[tuple[str, str], UpstreamProbeRecord] = {}
        for start in range(0, len(wanted), _GET_BATCH):
            pending = [{"route_id": {"S": r}, "kind": {"S": health_kind(u)}}
                       for r, u in wanted[start:start + _GET_BATCH]]
            for attempt in range(_ATTEMPTS):
                try:
                    raw = self.client.batch_get_item(RequestItems={
                        self.state_table: {"Keys": pending, "ConsistentRead": True}})
                except (ClientError, BotoCoreError) as exc:
                    raise translate(exc, action="read health") from exc
                for item in raw.get("Responses", {}).get(self.state_table, []):
                    record = UpstreamProbeRecord.from_item(from_item(item))
                    if record is not None:
                        found[(record.route_id, record.upstream)] = record
                pending = raw.get("UnprocessedKeys", {}).get(self.state_table, {}).get("Keys", [])
                if not pending:
                    break
                self._sleep(0.05 * 2 ** attempt)
            else:
                raise TransientError("health items left unread after retries",
                                     reason="UnprocessedKeys")
        return found

    def put_records(self, records: Iterable[UpstreamProbeRecord]) -> int:
        """Write the records (the last one wins for a repeated key); returns how many."""
        latest = {(r.route_id, r.upstream): r for r in records}
        items = [{"PutRequest": {"Item": to_item(r.to_item())}} for r in latest.values()]
        for start in range(0, len(items), _WRITE_BATCH):
            pending = items[start:start + _WRITE_BATCH]
            for attempt in range(_ATTEMPTS):
                try:
                    raw = self.client.batch_write_item(RequestItems={self.state_table: pending})
                except (ClientError, BotoCoreError) as exc:
                    raise translate(exc, action="write health") from exc
                pending = raw.get("UnprocessedItems", {}).get(self.state_table, [])
                if not pending:
                    break
                self._sleep(0.05 * 2 ** attempt)
            else:
                raise TransientError("health items left unwritten after retries",
                                     reason="UnprocessedItems")
        return len(items)
