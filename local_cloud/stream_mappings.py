"""DynamoDB-stream event source mappings, run the way Lambda runs them.

moto stores mappings but never runs them usefully (see :mod:`local_cloud.patches`), so
:class:`EventSourceMappingRunner` does: it lists the mappings through the Lambda API, and for
each enabled mapping on a DynamoDB stream a worker thread polls the stream
(``DescribeStream``, ``GetShardIterator`` at the mapping's ``StartingPosition``,
``GetRecords``), builds the real stream event and invokes the function in this process.

The mapping's settings are honoured:

- ``BatchSize`` and ``MaximumBatchingWindowInSeconds`` (a short batch waits for more records
  up to the window);
- ``FunctionResponseTypes: [ReportBatchItemFailures]``: the records before the lowest failed
  sequence number are checkpointed, the retry starts at it; an empty or missing list is
  success; an entry without ``itemIdentifier`` fails the whole batch;
- a handler exception fails the whole batch;
- ``BisectBatchOnFunctionError``: a failing batch is split in halves before retrying (a split
  uses no retry attempt, as on AWS);
- ``MaximumRetryAttempts`` and ``MaximumRecordAgeInSeconds`` (-1: unlimited): past either, the
  records are sent to ``DestinationConfig.OnFailure`` (SQS queue or SNS topic) as Lambda's
  invocation record and the shard moves on.

Records of a shard are processed in order, one batch at a time; none is skipped except through
the on-failure path. Retries of the same records back off from the poll interval up to
:data:`MAX_RETRY_DELAY_SECONDS`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local_cloud.clients import aws_client
from local_cloud.functions import FunctionError, FunctionRuntime
from local_cloud.stream_records import (
    first_failed_index,
    lambda_record,
    on_failure_record,
    sequence_number,
)
from local_cloud.stream_shard import MappingSettings, PendingRecord, ShardPosition

log = logging.getLogger(__name__)

MAX_RETRY_DELAY_SECONDS = 5.0
ERROR_BACKOFF_SECONDS = 1.0
SHARD_LIST_SECONDS = 5.0
GET_RECORDS_LIMIT = 1000

InvocationCallback = Callable[[str, Any], None]


def _is_not_found(exc: Exception) -> bool:
    if not isinstance(exc, ClientError):
        return False
    return exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException"


class _MappingWorker:
    """Polls the shards of one mapping's stream and invokes its function."""

    def __init__(self, runner: EventSourceMappingRunner, settings: MappingSettings) -> None:
        self.runner = runner
        self.settings = settings
        self.shards: dict[str, ShardPosition] = {}
        self.deleted = threading.Event()
        self.drained_at = 0.0
        self._shards_listed_at = 0.0
        self._last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"esm:{settings.uuid[:8]}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _stopping(self) -> bool:
        return self.runner.stopping.is_set() or self.deleted.is_set()

    def _run(self) -> None:
        while not self._stopping():
            cycle_started = time.monotonic()
            worked = False
            try:
                worked = self._cycle()
            except (ClientError, BotoCoreError) as exc:
                self._report(exc, stream_gone=_is_not_found(exc))
                self.runner.stopping.wait(ERROR_BACKOFF_SECONDS)
                continue
            except Exception as exc:  # noqa: BLE001 - the poller must outlive any surprise
                self._report(exc, stream_gone=False)
                self.runner.stopping.wait(ERROR_BACKOFF_SECONDS)
                continue
            self._last_error = None
            if self._drained():
                self.drained_at = cycle_started
            if not worked:
                self.runner.stopping.wait(self.runner.poll_interval_seconds)

    def _report(self, exc: Exception, *, stream_gone: bool) -> None:
        message = f"{type(exc).__name__}: {exc}"
        if message != self._last_error:
            log.warning("event source mapping %s (%s): %s", self.settings.uuid,
                        self.settings.stream_arn, message)
        self._last_error = message
        if stream_gone:  # nothing left to read: do not hold up wait_idle
            self.shards.clear()
            self.drained_at = time.monotonic()

    def _drained(self) -> bool:
        if not self.settings.enabled:
            return True
        return all(shard.drained for shard in self.shards.values())

    def _cycle(self) -> bool:
        settings = self.settings
        if not settings.enabled:
            return False
        self._refresh_shards()
        worked = False
        for shard in list(self.shards.values()):
            worked = self._step(settings, shard) or worked
        return worked

    def _refresh_shards(self) -> None:
        now = time.monotonic()
        if self.shards and now - self._shards_listed_at < SHARD_LIST_SECONDS:
            return
        self._shards_listed_at = now
        streams = self.runner.streams
        description = streams.describe_stream(StreamArn=self.settings.stream_arn)
        for shard in description["StreamDescription"].get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id in self.shards:
                continue
            iterator = streams.get_shard_iterator(
                StreamArn=self.settings.stream_arn,
                ShardId=shard_id,
                ShardIteratorType=self.settings.starting_position,
            )["ShardIterator"]
            self.shards[shard_id] = ShardPosition(shard_id=shard_id, iterator=iterator)

    def _fetch(self, settings: MappingSettings, shard: ShardPosition) -> bool:
        if not shard.wants_records(settings):
            return False
        response = self.runner.streams.get_records(
            ShardIterator=shard.iterator, Limit=GET_RECORDS_LIMIT
        )
        shard.iterator = response.get("NextShardIterator")
        records = response.get("Records", [])
        shard.add(records, time.monotonic())
        return bool(records)

    def _step(self, settings: MappingSettings, shard: ShardPosition) -> bool:
        fetched = self._fetch(settings, shard)
        expired = shard.expired(settings, datetime.now(UTC))
        if expired:
            shard.forget_plan()
            return self._discard(settings, shard, expired, "RecordAgeExceeded")
        batch = shard.next_batch(settings, time.monotonic())
        if batch is None:
            return fetched
        if shard.exhausted:
            return self._discard(settings, shard, len(batch), "RetryAttemptsExhausted")
        self._invoke(settings, shard, batch)
        return True

    def _invoke(self, settings: MappingSettings, shard: ShardPosition,
                batch: list[PendingRecord]) -> None:
        records = [lambda_record(p.record, settings.stream_arn) for p in batch]
        for pending in batch:
            pending.invocations += 1
        try:
            result: Any = self.runner.functions.invoke(settings.function_arn, {"Records": records})
        except FunctionError as error:
            result = error
            failed_at: int | None = 0
            shard.last_function_error = "Unhandled"
        else:
            failed_at = None
            if settings.report_batch_item_failures:
                failed_at = first_failed_index(result, [sequence_number(r) for r in records])
            shard.last_function_error = None
        self.runner.notify(settings.function_arn, result)
        if failed_at is None:
            shard.done(len(batch))
        else:
            shard.failed(settings, len(batch), failed_at, now=time.monotonic(),
                         base_delay_seconds=self.runner.poll_interval_seconds,
                         max_delay_seconds=MAX_RETRY_DELAY_SECONDS)

    def _discard(self, settings: MappingSettings, shard: ShardPosition, count: int,
                 condition: str) -> bool:
        discarded = shard.buffer[:count]
        document = on_failure_record(
            records=[p.record for p in discarded],
            function_arn=settings.function_arn,
            stream_arn=settings.stream_arn,
            shard_id=shard.shard_id,
            condition=condition,
            invoke_count=max(p.invocations for p in discarded),
            function_error=shard.last_function_error,
            now=datetime.now(UTC),
        )
        destination = settings.on_failure_destination
        try:
            sent = bool(destination) and self.runner.send_to_destination(destination, document)
        except (ClientError, BotoCoreError) as exc:
            log.warning("mapping %s: on-failure destination %s refused the record: %s",
                        settings.uuid, destination, exc)
            shard.not_before = time.monotonic() + MAX_RETRY_DELAY_SECONDS
            return False
        if not sent:
            log.warning("mapping %s: discarded %d record(s) (%s) with no usable on-failure "
                        "destination", settings.uuid, count, condition)
        shard.done(count)
        return True


class EventSourceMappingRunner:
    """Runs every DynamoDB-stream event source mapping of the embedded AWS in this process.

    ``on_invocation(function_name, result)`` is called after each invocation with the
    function's response, or the :class:`~local_cloud.functions.FunctionError` it raised.
    """

    def __init__(
        self,
        endpoint_url: str,
        functions: FunctionRuntime,
        *,
        region: str = "us-east-1",
        poll_interval_seconds: float = 0.2,
        mapping_refresh_seconds: float = 1.0,
        on_invocation: InvocationCallback | None = None,
    ) -> None:
        self.functions = functions
        self.poll_interval_seconds = poll_interval_seconds
        self.mapping_refresh_seconds = mapping_refresh_seconds
        self.on_invocation = on_invocation
        self.stopping = threading.Event()
        self._lambda = aws_client("lambda", endpoint_url=endpoint_url, region=region)
        self.streams = aws_client("dynamodbstreams", endpoint_url=endpoint_url, region=region)
        self._sqs = aws_client("sqs", endpoint_url=endpoint_url, region=region)
        self._sns = aws_client("sns", endpoint_url=endpoint_url, region=region)
        self._workers: dict[str, _MappingWorker] = {}
        self._lock = threading.Lock()
        self._supervisor: threading.Thread | None = None

    def start(self) -> None:
        """Pick up the mappings now and keep watching for new, changed or deleted ones."""
        if self._supervisor is not None:
            return
        self.stopping.clear()
        self.refresh()
        self._supervisor = threading.Thread(target=self._supervise, name="esm-supervisor",
                                            daemon=True)
        self._supervisor.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling (idempotent); an invocation in progress is allowed to finish."""
        self.stopping.set()
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.join(timeout)
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            worker.join(timeout)

    def refresh(self) -> None:
        """Synchronise the workers with ``ListEventSourceMappings``."""
        mappings: dict[str, MappingSettings] = {}
        for page in self._lambda.get_paginator("list_event_source_mappings").paginate():
            for mapping in page.get("EventSourceMappings", []):
                if MappingSettings.is_dynamodb_stream(mapping):
                    settings = MappingSettings.from_api(mapping)
                    mappings[settings.uuid] = settings
        with self._lock:
            for uuid in list(self._workers):
                if uuid not in mappings:
                    self._workers.pop(uuid).deleted.set()
            for uuid, settings in mappings.items():
                worker = self._workers.get(uuid)
                if worker is None:
                    if self.stopping.is_set():
                        continue
                    worker = _MappingWorker(self, settings)
                    self._workers[uuid] = worker
                    worker.start()
                else:
                    worker.settings = settings

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every shard of every enabled mapping is drained; False on timeout.

        Drained means a poll that started after this call found nothing new and nothing is
        left to process or retry, so records written before the call have been handled.
        """
        called_at = time.monotonic()
        deadline = called_at + timeout
        self.refresh()
        while True:
            with self._lock:
                workers = list(self._workers.values())
            if all(worker.drained_at > called_at for worker in workers):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(0.02, self.poll_interval_seconds))

    def notify(self, function_arn: str, result: Any) -> None:
        """Tell ``on_invocation`` about a finished invocation."""
        if self.on_invocation is None:
            return
        try:
            self.on_invocation(function_arn.rsplit(":", 1)[-1], result)
        except Exception:  # noqa: BLE001 - a listener must not stop the shard
            log.exception("on_invocation failed")

    def send_to_destination(self, destination_arn: str, document: Mapping[str, Any]) -> bool:
        """Send an invocation record to an SQS queue or SNS topic; False for other targets."""
        parts = destination_arn.split(":")
        if len(parts) < 6:
            return False
        body = json.dumps(document)
        if parts[2] == "sqs":
            url = self._sqs.get_queue_url(QueueName=parts[5],
                                          QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
            self._sqs.send_message(QueueUrl=url, MessageBody=body)
            return True
        if parts[2] == "sns":
            self._sns.publish(TopicArn=destination_arn, Message=body)
            return True
        return False

    def _supervise(self) -> None:
        while not self.stopping.wait(self.mapping_refresh_seconds):
            try:
                self.refresh()
            except (ClientError, BotoCoreError) as exc:
                log.warning("cannot list event source mappings: %s", exc)
