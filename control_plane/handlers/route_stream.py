"""Lambda entry point of the reconciler: the routes table's DynamoDB stream, and the resync
schedule.

One function serves both triggers so a single writer (reserved concurrency 1) changes
turnout's API: a stream batch reconciles the routes it names; a scheduled event (or a manual
``{"action": "resync"}`` invoke) reconciles every route and removes what no route owns, which
repairs drift made by hand and anything a lost event missed.

Each record only names a route; the reconciler reads the route itself. Invalid items become
``REJECTED`` routes and count as processed; only transient AWS errors (throttling, 5xx,
timeouts) fail a record, because a failed record holds up its shard. Failures are reported
as partial batch failures (``ReportBatchItemFailures``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from botocore.config import Config

from control_plane.adapters.apigateway import ApiGatewayAdapter
from control_plane.adapters.events import EventPublisher
from control_plane.adapters.route_store import RouteStore
from control_plane.adapters.throttle import CallCounter, TokenBucket, attach, is_write
from control_plane.errors import TransientError
from control_plane.handlers.warm import Warm
from control_plane.model.egress import system_resolver
from control_plane.reconcile.reconciler import ReconcileSession
from control_plane.reconcile.registry import build_components
from control_plane.settings import Settings

logger = Logger(service="turnout-reconcile")

_RETRIES = Config(retries={"mode": "standard", "max_attempts": 6}, connect_timeout=5, read_timeout=30)


@dataclass
class Dependencies:
    settings: Settings
    store: RouteStore
    gateway: ApiGatewayAdapter
    publisher: EventPublisher
    counter: CallCounter
    components: list = field(default_factory=list)

    @classmethod
    def from_session(cls, session: boto3.Session, settings: Settings) -> Dependencies:
        counter = CallCounter()
        bucket = TokenBucket(settings.apigateway_rate_per_second, settings.apigateway_burst)
        dynamodb = attach(session.client("dynamodb", config=_RETRIES), counter=counter)
        apigw = attach(session.client("apigateway", config=_RETRIES), counter=counter, bucket=bucket)
        events = attach(session.client("events", config=_RETRIES), counter=counter)

        def client_factory(service: str):
            if service == "apigateway":
                return apigw
            return attach(session.client(service, config=_RETRIES), counter=counter)

        return cls(
            settings=settings,
            store=RouteStore(dynamodb, settings.routes_table, settings.state_table),
            gateway=ApiGatewayAdapter(apigw, settings.rest_api_id, settings.stage_name),
            publisher=EventPublisher(events, settings.event_bus_name),
            counter=counter,
            components=build_components(settings, client_factory),
        )


def default_dependencies() -> Dependencies:
    settings = Settings.from_env()
    return Dependencies.from_session(boto3.Session(), settings)


def make_handler(dependencies: Callable[[], Dependencies]) -> Callable[[dict, object], dict]:
    """Build the stream handler around a way to get its dependencies (built once, then reused)."""
    current = Warm(dependencies,
                   key=lambda: tuple(sorted(Settings.from_env().model_dump().items()))).get

    def new_session(deps: Dependencies) -> ReconcileSession:
        return ReconcileSession(
            store=deps.store,
            gateway=deps.gateway,
            publisher=deps.publisher,
            allow_loopback=deps.settings.allow_loopback_upstreams,
            resolver=system_resolver,
            components=deps.components,
            method_options=deps.settings.integration_options(),
            region=deps.settings.region,
        )

    def spent_since(deps: Dependencies, before: dict[str, int]) -> dict[str, int]:
        after = deps.counter.snapshot()
        return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}

    def resync(deps: Dependencies) -> dict:
        before = deps.counter.snapshot()
        outcomes = new_session(deps).resync()
        spent = spent_since(deps, before)
        summary = {
            "routes": len(outcomes),
            "aws_calls": sum(spent.values()),
            "writes": sum(n for k, n in spent.items() if is_write(k.split(".", 1)[1])),
            "deployments": spent.get("apigateway.CreateDeployment", 0),
        }
        logger.info("resync finished", extra={**summary, "calls_by_operation": spent})
        return summary

    def handler(event: dict, context: object) -> dict:
        deps = current()
        if "Records" not in event:
            if event.get("detail-type") == "Scheduled Event" or event.get("action") == "resync":
                return resync(deps)
            logger.warning("event is neither a stream batch nor a resync request; ignored")
            return {}
        before = deps.counter.snapshot()
        session = new_session(deps)
        failed: dict[str, TransientError] = {}

        def record_handler(record: DynamoDBRecord) -> None:
            keys = record.dynamodb.keys if record.dynamodb else {}
            route_id = str(keys.get("route_id", ""))
            if not route_id:
                logger.warning("stream record without a route_id key; skipped",
                               extra={"event_id": record.event_id})
                return
            logger.append_keys(route_id=route_id)
            try:
                if route_id in failed:
                    raise failed[route_id]
                if session.done(route_id):
                    return
                try:
                    outcome = session.reconcile(route_id)
                except TransientError as exc:
                    failed[route_id] = exc
                    logger.warning("transient failure; the record will be retried",
                                   extra={"reason": exc.reason, "error": str(exc)})
                    raise
                logger.info("reconciled", extra={"phase": outcome.phase.value,
                                                 "reason": outcome.reason})
            finally:
                logger.remove_keys(["route_id"])

        processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
        response = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
        outcomes = session.finish()
        spent = spent_since(deps, before)
        logger.info(
            "batch reconciled",
            extra={
                "records": len(event.get("Records", [])),
                "routes": len(outcomes),
                "failed_records": len(response.get("batchItemFailures", [])),
                "aws_calls": sum(spent.values()),
                "apigateway_writes": sum(n for k, n in spent.items() if k.startswith("apigateway.")
                                         and not k.split(".", 1)[1].startswith(("Get", "List"))),
                "deployments": spent.get("apigateway.CreateDeployment", 0),
                "calls_by_operation": spent,
            },
        )
        return response

    return handler


handler = make_handler(default_dependencies)
