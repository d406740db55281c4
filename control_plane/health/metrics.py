"""Where the ``UpstreamHealthy`` datapoints go: two sinks, one switch.

- ``emf`` (the default, and what AWS runs): each datapoint is one line of CloudWatch embedded
  metric format on stdout, written with Powertools' EMF provider; Lambda ships the function's
  output to CloudWatch Logs, which turns the line into a metric. No API call, no throttling,
  nothing lost if the function ends right after printing.
- ``api``: datapoints go through ``PutMetricData`` (batched). The local cloud sets this
  (``TURNOUT_METRICS_MODE=api`` for every function it runs), because locally nothing turns log
  lines into metrics and its alarm evaluator reads metrics from the CloudWatch API.

Read from the function's environment as ``TURNOUT_METRICS_MODE``; anything else than ``api``
means ``emf``.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol, TextIO

from aws_lambda_powertools.metrics import MetricResolution, MetricUnit
from aws_lambda_powertools.metrics.base import SingleMetric

from control_plane.adapters.cloudwatch import MetricsApi
from control_plane.model.health_signals import (
    METRIC_NAME,
    METRIC_NAMESPACE,
    ROUTE_DIMENSION,
    UPSTREAM_DIMENSION,
    metric_dimensions,
)

MODE_VARIABLE = "TURNOUT_METRICS_MODE"
MAX_BUFFERED_DATAPOINTS = 5000


class MetricSink(Protocol):
    def record(self, route_id: str, upstream: str, healthy: bool, at: datetime) -> None: ...

    def flush(self) -> None: ...


def metrics_mode(env: Mapping[str, str]) -> str:
    """``api`` or ``emf`` (see the module docstring)."""
    return "api" if env.get(MODE_VARIABLE, "").strip().lower() == "api" else "emf"


class EmfSink:
    """One EMF line per datapoint, printed at once (dimensions exactly Route and Upstream)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def record(self, route_id: str, upstream: str, healthy: bool, at: datetime) -> None:
        # service="" keeps Powertools from adding a "service" dimension: the alarm watches the
        # metric with exactly the dimensions Route and Upstream.
        metric = SingleMetric(namespace=METRIC_NAMESPACE, service="")
        metric.add_metric(name=METRIC_NAME, unit=MetricUnit.Count, value=1.0 if healthy else 0.0,
                          resolution=MetricResolution.High)
        metric.add_dimension(name=ROUTE_DIMENSION, value=route_id)
        metric.add_dimension(name=UPSTREAM_DIMENSION, value=upstream)
        metric.set_timestamp(at)
        line = json.dumps(metric.serialize_metric_set(), separators=(",", ":"))
        with self._lock:
            stream = self._stream or sys.stdout
            stream.write(line + "\n")
            stream.flush()

    def flush(self) -> None:
        return None


class ApiSink:
    """Datapoints buffered and sent with ``PutMetricData`` on :meth:`flush`."""

    def __init__(self, api: MetricsApi) -> None:
        self._api = api
        self._buffer: list[dict] = []
        self._lock = threading.Lock()

    def record(self, route_id: str, upstream: str, healthy: bool, at: datetime) -> None:
        with self._lock:
            self._buffer.append({
                "MetricName": METRIC_NAME,
                "Dimensions": metric_dimensions(route_id, upstream),
                "Timestamp": at,
                "Value": 1.0 if healthy else 0.0,
                "Unit": "Count",
                "StorageResolution": 1,
            })

    def flush(self) -> None:
        with self._lock:
            datums, self._buffer = self._buffer, []
        if not datums:
            return
        try:
            self._api.put(METRIC_NAMESPACE, datums)
        except Exception:
            with self._lock:
                self._buffer[:0] = datums  # kept for the next flush, newest kept first
                del self._buffer[:-MAX_BUFFERED_DATAPOINTS]
            raise
