"""Where one shard of a stream event source mapping stands, and what comes next. No I/O.

A :class:`ShardPosition` holds the records read from the shard but not yet done, in order,
and the retry state of the batch at its head. The poller in :mod:`.stream_mappings` feeds it
records and outcomes; it answers which batch to invoke next and when.

Retry rules (Lambda's, for DynamoDB streams):

- success, or a partial failure's records before the lowest failed sequence number: done;
- a failed batch with ``BisectBatchOnFunctionError`` and more than one record: split in
  halves, each retried in turn; a split uses no retry attempt;
- otherwise the same records are retried, after a back-off, until ``MaximumRetryAttempts``
  (-1: forever) is used up; then they are ``exhausted`` and go to the on-failure destination.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from local_cloud.stream_records import creation_time


@dataclass(frozen=True)
class MappingSettings:
    """One event source mapping as ``ListEventSourceMappings`` describes it."""

    uuid: str
    function_arn: str
    stream_arn: str
    enabled: bool
    batch_size: int = 100
    batching_window_seconds: float = 0.0
    starting_position: str = "TRIM_HORIZON"
    report_batch_item_failures: bool = False
    bisect_on_error: bool = False
    maximum_retry_attempts: int = -1
    maximum_record_age_seconds: int = -1
    on_failure_destination: str | None = None

    @classmethod
    def from_api(cls, mapping: Mapping[str, Any]) -> MappingSettings:
        def number(key: str, default: int) -> int:
            value = mapping.get(key)
            return default if value is None else int(value)

        destination = (mapping.get("DestinationConfig") or {}).get("OnFailure") or {}
        return cls(
            uuid=mapping["UUID"],
            function_arn=mapping["FunctionArn"],
            stream_arn=mapping["EventSourceArn"],
            enabled=mapping.get("State", "Enabled") in ("Enabled", "Enabling", "Updating"),
            batch_size=max(1, number("BatchSize", 100)),
            batching_window_seconds=float(number("MaximumBatchingWindowInSeconds", 0)),
            starting_position=mapping.get("StartingPosition") or "TRIM_HORIZON",
            report_batch_item_failures="ReportBatchItemFailures"
            in (mapping.get("FunctionResponseTypes") or []),
            bisect_on_error=bool(mapping.get("BisectBatchOnFunctionError")),
            maximum_retry_attempts=number("MaximumRetryAttempts", -1),
            maximum_record_age_seconds=number("MaximumRecordAgeInSeconds", -1),
            on_failure_destination=destination.get("Destination") or None,
        )

    @staticmethod
    def is_dynamodb_stream(mapping: Mapping[str, Any]) -> bool:
        """Whether a ``ListEventSourceMappings`` entry reads a DynamoDB stream."""
        arn = mapping.get("EventSourceArn") or ""
        return arn.startswith("arn:") and ":dynamodb:" in arn and "/stream/" in arn


@dataclass
class PendingRecord:
    """A stream record read but not yet done, and how often it was handed to the function."""

    record: dict[str, Any]
    received_at: float
    invocations: int = 0


@dataclass
class ShardPosition:
    """The unfinished records of one shard and the retry state of the head batch."""

    shard_id: str
    iterator: str | None
    buffer: list[PendingRecord] = field(default_factory=list)
    planned_sizes: list[int] = field(default_factory=list)  # the halves bisection left
    retries: int = 0
    last_function_error: str | None = None
    exhausted: bool = False
    not_before: float = 0.0
    caught_up: bool = False

    @property
    def drained(self) -> bool:
        """Nothing left to process and the last read found nothing new."""
        return not self.buffer and self.caught_up

    def wants_records(self, settings: MappingSettings) -> bool:
        """Whether to read more before choosing a batch."""
        return self.iterator is not None and len(self.buffer) < settings.batch_size

    def add(self, records: list[dict[str, Any]], now: float) -> None:
        """Records just read from the shard (in order)."""
        self.buffer.extend(PendingRecord(record, now) for record in records)
        self.caught_up = not records

    def expired(self, settings: MappingSettings, wall_clock: datetime) -> int:
        """How many head records are older than ``MaximumRecordAgeInSeconds``."""
        limit = settings.maximum_record_age_seconds
        if limit < 0:
            return 0
        count = 0
        for pending in self.buffer:
            created = creation_time(pending.record)
            if created is None or (wall_clock - created).total_seconds() <= limit:
                break
            count += 1
        return count

    def next_batch(self, settings: MappingSettings, now: float) -> list[PendingRecord] | None:
        """The batch to hand over now, or None (nothing yet, backing off, or batching)."""
        if not self.buffer or now < self.not_before:
            return None
        size = self.planned_sizes[0] if self.planned_sizes else settings.batch_size
        batch = self.buffer[:size]
        fresh = not self.planned_sizes and batch[0].invocations == 0
        if (fresh and not self.exhausted and len(batch) < settings.batch_size
                and now - batch[0].received_at < settings.batching_window_seconds):
            return None
        return batch

    def done(self, count: int) -> None:
        """The head ``count`` records are finished (processed or discarded)."""
        del self.buffer[:count]
        if self.planned_sizes:
            self.planned_sizes.pop(0)
        self.retries = 0
        self.last_function_error = None
        self.exhausted = False
        self.not_before = 0.0

    def failed(self, settings: MappingSettings, size: int, failed_at: int, *, now: float,
               base_delay_seconds: float, max_delay_seconds: float) -> None:
        """The head batch of ``size`` failed from position ``failed_at`` (0: all of it)."""
        if failed_at > 0:
            del self.buffer[:failed_at]
            self.retries = 0
        remaining = size - failed_at
        rest = self.planned_sizes[1:]
        if settings.bisect_on_error and remaining > 1:
            half = (remaining + 1) // 2
            self.planned_sizes = [half, remaining - half, *rest]
            return
        self.planned_sizes = [remaining, *rest]
        self.retries += 1
        limit = settings.maximum_retry_attempts
        if limit >= 0 and self.retries > limit:
            self.exhausted = True
            return
        delay = base_delay_seconds * (2 ** (self.retries - 1))
        self.not_before = now + min(delay, max_delay_seconds)

    def forget_plan(self) -> None:
        """Drop the bisection plan (the head records are about to be discarded)."""
        self.planned_sizes = []
