"""EventBridge adapter: publishes turnout's events on its own bus (source ``turnout``)."""

from __future__ import annotations

import json

from botocore.exceptions import BotoCoreError, ClientError

from control_plane.adapters.aws_errors import translate
from control_plane.errors import TransientError
from control_plane.model.events import SOURCE, Event


class EventPublisher:
    def __init__(self, client, bus_name: str) -> None:
        self.client = client
        self.bus_name = bus_name

    def publish(self, events: list[Event]) -> None:
        for start in range(0, len(events), 10):  # PutEvents takes at most 10 entries
            chunk = events[start : start + 10]
            entries = [
                {
                    "Source": SOURCE,
                    "DetailType": e.detail_type,
                    "Detail": json.dumps(e.detail, sort_keys=True),
                    "EventBusName": self.bus_name,
                    "Resources": list(e.resources),
                }
                for e in chunk
            ]
            try:
                raw = self.client.put_events(Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, action="PutEvents") from exc
            if raw.get("FailedEntryCount"):
                codes = {r.get("ErrorCode") for r in raw.get("Entries", []) if r.get("ErrorCode")}
                raise TransientError(f"PutEvents failed for some entries: {sorted(codes)}",
                                     reason="PutEventsFailed")
