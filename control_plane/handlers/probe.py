"""Lambda entry point of the prober: scheduled every minute, it probes every upstream of every
valid route for the length of its invocation (see :mod:`control_plane.health.prober`).

It stops probing ``margin`` seconds before the invocation's end (5 % of it, 0.5 to 3 s), time
enough to write what is left. Health items go to the state table, ``Upstream Health Changed``
events to turnout's bus, and one ``UpstreamHealthy`` datapoint per upstream and round to
CloudWatch: as embedded metric format on AWS, through ``PutMetricData`` where
``TURNOUT_METRICS_MODE=api`` (the local cloud; see :mod:`control_plane.health.metrics`).

Returns a summary of the run (routes, upstreams, rounds, probes, changes, writes, events,
datapoints).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config

from control_plane.adapters.cloudwatch import MetricsApi
from control_plane.adapters.events import EventPublisher
from control_plane.adapters.health_store import HealthStore
from control_plane.adapters.route_documents import scan_routes
from control_plane.handlers.warm import Warm
from control_plane.health.metrics import ApiSink, EmfSink, MetricSink, metrics_mode
from control_plane.health.prober import Prober, ProberSettings
from control_plane.health.reporter import Reporter
from control_plane.settings import Settings, environ

logger = Logger(service="turnout-probe")
metrics = Metrics(namespace="Turnout", service="turnout-probe")

_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2,
                        read_timeout=5)
MIN_MARGIN_SECONDS = 0.5
MAX_MARGIN_SECONDS = 3.0


@dataclass
class ProbeDependencies:
    settings: Settings
    routes: Callable[[], list[dict]]
    store: HealthStore
    publisher: EventPublisher
    sink: MetricSink

    @classmethod
    def from_session(cls, session: boto3.Session, settings: Settings,
                     mode: str) -> ProbeDependencies:
        dynamodb = session.client("dynamodb", config=_CLIENT_CONFIG)
        sink: MetricSink = (ApiSink(MetricsApi(session.client("cloudwatch", config=_CLIENT_CONFIG)))
                            if mode == "api" else EmfSink())
        return cls(
            settings=settings,
            routes=lambda: scan_routes(dynamodb, settings.routes_table),
            store=HealthStore(dynamodb, settings.state_table),
            publisher=EventPublisher(session.client("events", config=_CLIENT_CONFIG),
                                     settings.event_bus_name),
            sink=sink,
        )


def default_dependencies() -> ProbeDependencies:
    return ProbeDependencies.from_session(boto3.Session(), Settings.from_env(),
                                          metrics_mode(environ()))


def margin_seconds(remaining_seconds: float) -> float:
    """How long before the invocation's end probing stops."""
    return min(MAX_MARGIN_SECONDS, max(MIN_MARGIN_SECONDS, remaining_seconds * 0.05))


def make_handler(dependencies: Callable[[], ProbeDependencies],
                 prober_settings: Callable[[Settings], ProberSettings] | None = None,
                 ) -> Callable[[dict, object], dict]:
    """Build the handler around a way to get its dependencies (built once, then reused)."""
    current = Warm(dependencies, key=lambda: (
        tuple(sorted(Settings.from_env().model_dump().items())), metrics_mode(environ()))).get

    def options(settings: Settings) -> ProberSettings:
        if prober_settings is not None:
            return prober_settings(settings)
        return ProberSettings(allow_loopback=settings.allow_loopback_upstreams)

    @metrics.log_metrics
    @logger.inject_lambda_context
    def handler(event: dict, context) -> dict:
        deps = current()
        started = time.monotonic()
        remaining = context.get_remaining_time_in_millis() / 1000.0
        deadline = started + remaining - margin_seconds(remaining)
        reporter = Reporter(store=deps.store, publisher=deps.publisher, sink=deps.sink,
                            logger=logger).start()
        prober = Prober(routes=deps.routes, store=deps.store, reporter=reporter,
                        settings=options(deps.settings), logger=logger)
        try:
            summary = prober.run(deadline)
        finally:
            left = context.get_remaining_time_in_millis() / 1000.0
            finished = reporter.close(timeout=max(0.1, left - 0.2))
        result = {**summary.as_dict(), "writes": reporter.counts.writes,
                  "events": reporter.counts.events, "datapoints": reporter.counts.datapoints,
                  "report_failures": reporter.counts.failures, "reports_finished": finished}
        metrics.add_metric(name="ProbeRounds", unit=MetricUnit.Count, value=summary.rounds)
        metrics.add_metric(name="HealthChanges", unit=MetricUnit.Count, value=summary.changes)
        logger.info("probe run finished", extra=result)
        return result

    return handler


handler = make_handler(default_dependencies)
