"""The hostile-input scenario: the corpus written with the AWS CLI while valid routes serve.

:func:`write_items` writes items as a user would: ``aws dynamodb batch-write-item`` in
batches of 25 (``file://`` arguments, since some items are far larger than a command line),
falling back to one ``put-item`` per item when DynamoDB refuses a batch as a whole, and
``put-item`` for items past DynamoDB's own limits. DynamoDB's refusals are counted apart.

:func:`run_hostile` does that while :class:`~tests.reliability.suite.Traffic` calls the
serving routes, waits until every written item has a status, and returns what a user would
look at: each item's phase and reason (``turnout routes status``), the reconciler's on-failure
queue, the API's resource paths and every request of the traffic.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.reliability.hostile_corpus import Hostile
from tests.reliability.suite import Traffic, aws_cli
from tests.system.harness import Turnout

BATCH = 25


@dataclass
class WriteResult:
    written: list[Hostile] = field(default_factory=list)
    refused: list[tuple[Hostile, str]] = field(default_factory=list)
    """Items DynamoDB refused at write time, with the CLI's error."""


@dataclass
class HostileReport:
    items: list[Hostile]
    writes: WriteResult
    statuses: dict[str, dict]
    failure_queue_messages: int
    api_paths: set[str]
    traffic: list[tuple[str, int]]
    write_seconds: float
    settle_seconds: float

    def status_of(self, item: Hostile) -> dict | None:
        return self.statuses.get(item.route_id or "")

    def not_rejected(self) -> list[tuple[Hostile, dict | None]]:
        out = []
        for item in self.writes.written:
            status = self.status_of(item)
            if status is None or status.get("phase") != "REJECTED" or not status.get("reason"):
                out.append((item, status))
        return out

    def traffic_failures(self) -> list[tuple[str, int]]:
        return [(path, status) for path, status in self.traffic if status != 200]

    def reasons(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.writes.written:
            reason = (self.status_of(item) or {}).get("reason") or "(none)"
            counts[reason] = counts.get(reason, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def _file(folder: Path, name: str, document: object) -> str:
    path = folder / name
    path.write_text(json.dumps(document))
    return f"file://{path}"


def write_items(turnout: Turnout, items: list[Hostile]) -> WriteResult:
    """Write ``items`` with the AWS CLI (see the module docstring)."""
    table = turnout.outputs["RoutesTableName"]
    result = WriteResult()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def put_one(item: Hostile) -> None:
            done = aws_cli(turnout, "dynamodb", "put-item", "--table-name", table,
                           "--item", _file(folder, "item.json", item.item))
            if done.returncode == 0:
                result.written.append(item)
            else:
                result.refused.append((item, done.stderr.strip()))

        ordinary = [i for i in items if not i.may_be_refused_at_write]
        for start in range(0, len(ordinary), BATCH):
            batch = ordinary[start:start + BATCH]
            request = {table: [{"PutRequest": {"Item": i.item}} for i in batch]}
            done = aws_cli(turnout, "dynamodb", "batch-write-item",
                           "--request-items", _file(folder, "batch.json", request))
            unprocessed = json.loads(done.stdout or "{}").get("UnprocessedItems", {})
            if done.returncode != 0 or unprocessed:
                for item in batch:
                    put_one(item)
            else:
                result.written.extend(batch)
        for item in items:
            if item.may_be_refused_at_write:
                put_one(item)
    return result


def api_paths(turnout: Turnout) -> set[str]:
    resources = json.loads(turnout.aws("apigateway", "get-resources", "--rest-api-id",
                                       turnout.outputs["RestApiId"], "--limit", "500"))
    return {r["path"] for r in resources["items"]}


def failure_queue_messages(turnout: Turnout) -> int:
    attributes = json.loads(turnout.aws(
        "sqs", "get-queue-attributes", "--queue-url", turnout.outputs["ReconcileFailureQueueUrl"],
        "--attribute-names", "All"))["Attributes"]
    return (int(attributes["ApproximateNumberOfMessages"])
            + int(attributes["ApproximateNumberOfMessagesNotVisible"]))


def run_hostile(turnout: Turnout, items: list[Hostile], *, traffic: Traffic | None = None,
                settle_timeout: float = 600.0) -> HostileReport:
    """Write ``items`` (while ``traffic`` calls the serving routes); wait for every status."""
    with traffic or contextlib.nullcontext():
        started = time.monotonic()
        writes = write_items(turnout, items)
        written_at = time.monotonic()
        wanted = {i.route_id for i in writes.written}
        statuses: dict[str, dict] = {}
        deadline = written_at + settle_timeout
        while True:  # each look runs the turnout CLI: look every few seconds, not constantly
            statuses = turnout.statuses()
            if all(statuses.get(rid, {}).get("phase", "PENDING") != "PENDING" for rid in wanted):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(3)
        settled_at = time.monotonic()
        if traffic is not None:
            time.sleep(2)  # the serving routes are called a little longer after the last status
    return HostileReport(
        items=items, writes=writes, statuses=dict(statuses),
        failure_queue_messages=failure_queue_messages(turnout), api_paths=api_paths(turnout),
        traffic=list(traffic.statuses) if traffic is not None else [],
        write_seconds=written_at - started, settle_seconds=settled_at - written_at,
    )
