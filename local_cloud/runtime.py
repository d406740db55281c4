"""The local cloud as one object: the embedded AWS, the stack, and the glue that runs it.

    cloud = LocalCloud(template_path="cloudformation/turnout.yaml")
    outputs = cloud.start()      # emulator up, patches bound, stack deployed, mappings running
    ...
    cloud.stop()

While it runs, this process is the stack's AWS: the Invoke API, Step Functions Lambda tasks,
EventBridge Lambda / Step Functions targets and DynamoDB-stream event source mappings all run
the stack's handlers in this process (:class:`~local_cloud.functions.FunctionRuntime`), and
``AWS_ENDPOINT_URL`` points this process's boto3 at the emulator (restored on stop). Scheduled
EventBridge rules fire (:mod:`local_cloud.schedules`) and CloudWatch alarms are evaluated
(:mod:`local_cloud.alarms`); functions run with ``TURNOUT_METRICS_MODE=api`` so their metrics
reach the CloudWatch API those alarms read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from local_cloud import patches
from local_cloud.alarms import AlarmEvaluator
from local_cloud.deployer import ProgressCallback, deploy_stack
from local_cloud.emulator import DEFAULT_PORT, REGION, Emulator
from local_cloud.eventbridge import EventTargetDispatcher
from local_cloud.functions import FunctionRuntime
from local_cloud.packaging import find_source_root
from local_cloud.schedules import ScheduleRunner
from local_cloud.stream_mappings import EventSourceMappingRunner

ChangeCallback = Callable[[str, Any], None]

_PROCESS_DEFAULTS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": REGION,
}


class LocalCloud:
    """moto plus the managed glue it lacks, running one CloudFormation stack in this process.

    ``on_progress(message)`` reports start-up and deploy steps. ``on_change(function_name,
    result)`` is called after every finished invocation of a function of the emulator (result
    is the handler's return value or the :class:`~local_cloud.functions.FunctionError`).
    ``emulator_url`` reuses a moto server already running in this process instead of starting
    one on ``aws_port``. Without ``template_path`` nothing is deployed.
    """

    def __init__(
        self,
        *,
        aws_port: int = DEFAULT_PORT,
        template_path: str | Path | None,
        stack_name: str = "turnout",
        parameters: Mapping[str, Any] | None = None,
        allow_loopback_upstreams: bool = False,
        function_environment: Mapping[str, str] | None = None,
        on_progress: ProgressCallback | None = None,
        on_change: ChangeCallback | None = None,
        emulator_url: str | None = None,
        source_root: str | Path | None = None,
        poll_interval_seconds: float = 0.2,
    ) -> None:
        self.template_path = Path(template_path) if template_path else None
        self.stack_name = stack_name
        self.parameters = dict(parameters or {})
        self.allow_loopback_upstreams = allow_loopback_upstreams
        self.function_environment = dict(function_environment or {})
        self.on_progress = on_progress
        self.on_change = on_change
        self.poll_interval_seconds = poll_interval_seconds
        self.outputs: dict[str, str] = {}
        self._aws_port = aws_port
        self._emulator_url = emulator_url
        self._source_root = Path(source_root) if source_root else None
        self._emulator: Emulator | None = None
        self._functions: FunctionRuntime | None = None
        self._dispatcher: EventTargetDispatcher | None = None
        self._runner: EventSourceMappingRunner | None = None
        self._schedules: ScheduleRunner | None = None
        self._alarms: AlarmEvaluator | None = None
        self._saved_environment: dict[str, str | None] = {}

    @property
    def endpoint_url(self) -> str:
        """The AWS endpoint (``--endpoint-url`` / ``AWS_ENDPOINT_URL``)."""
        if self._emulator is None:
            return self._emulator_url or f"http://127.0.0.1:{self._aws_port}"
        return self._emulator.url

    @property
    def functions(self) -> FunctionRuntime:
        """The runtime that runs the stack's Lambda functions in this process."""
        if self._functions is None:
            raise RuntimeError("the local cloud is not started")
        return self._functions

    def start(self) -> dict[str, str]:
        """Start everything and deploy the stack; returns the stack's outputs."""
        if self._emulator is not None:
            return self.outputs
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> dict[str, str]:
        if self._emulator_url:
            self._emulator = Emulator.attach(self._emulator_url)
        else:
            self._progress(f"starting the AWS endpoint on {self.endpoint_url}")
            self._emulator = Emulator(port=self._aws_port)
            self._emulator.start()
        url = self._emulator.url
        self._point_process_at(url)
        source_root = self._find_source_root()
        overrides = {"TURNOUT_ALLOW_LOOPBACK_UPSTREAMS": "true"} if (
            self.allow_loopback_upstreams) else {}
        # Nothing here turns log lines into metrics: metrics go through the CloudWatch API.
        overrides["TURNOUT_METRICS_MODE"] = "api"
        overrides.update(self.function_environment)
        self._functions = FunctionRuntime(
            url, region=REGION, environment_overrides=overrides,
            source_paths=[str(source_root)] if source_root else [],
            on_invocation=self._changed,
        )
        self._dispatcher = EventTargetDispatcher(url, self._functions, region=REGION)
        self._dispatcher.start()
        patches.bind(invoker=self._functions, event_sink=self._dispatcher)
        if self.template_path is not None:
            self.deploy()
        self._runner = EventSourceMappingRunner(
            url, self._functions, region=REGION,
            poll_interval_seconds=self.poll_interval_seconds,
        )
        self._runner.start()
        self._alarms = AlarmEvaluator(url, region=REGION)
        self._alarms.start()
        self._schedules = ScheduleRunner(url, self._dispatcher, region=REGION)
        self._schedules.start()
        self._progress(f"ready: AWS endpoint {url}")
        return self.outputs

    def deploy(self) -> dict[str, str]:
        """(Re)deploy the template into the running emulator; returns the new outputs.

        An unchanged template and parameters change nothing; mappings added or changed by the
        stack are picked up by the running poller.
        """
        if self._emulator is None or self.template_path is None:
            raise RuntimeError("deploy needs a started local cloud with a template")
        self.outputs = deploy_stack(
            self.template_path, self.stack_name, self.parameters,
            endpoint_url=self._emulator.url, region=REGION,
            source_root=self._find_source_root(), on_progress=self.on_progress,
        )
        return self.outputs

    def stop(self) -> None:
        """Stop the pollers, unbind the patches, stop the emulator if started here (idempotent)."""
        schedules, self._schedules = self._schedules, None
        if schedules is not None:
            schedules.stop()
        alarms, self._alarms = self._alarms, None
        if alarms is not None:
            alarms.stop()
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.stop()
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None:
            patches.unbind(event_sink=dispatcher)
            dispatcher.stop()
        if self._functions is not None:
            patches.unbind(invoker=self._functions)
        emulator, self._emulator = self._emulator, None
        if emulator is not None:
            emulator.stop()
        self._restore_process()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every stream is drained and every EventBridge delivery made.

        Repeats until a pass sees no new delivery, since a delivery can write to a stream
        and a stream handler can publish an event. False on timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            delivered = self._dispatcher.delivered if self._dispatcher else 0
            if self._runner is not None and not self._runner.wait_idle(
                    max(0.0, deadline - time.monotonic())):
                return False
            if self._dispatcher is not None and not self._dispatcher.wait_idle(
                    max(0.0, deadline - time.monotonic())):
                return False
            if (self._dispatcher.delivered if self._dispatcher else 0) == delivered:
                return True

    def __enter__(self) -> LocalCloud:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _find_source_root(self) -> Path | None:
        if self._source_root is not None:
            return self._source_root
        start = self.template_path.parent if self.template_path else Path.cwd()
        try:
            return find_source_root(start)
        except FileNotFoundError:
            return None

    def _point_process_at(self, url: str) -> None:
        wanted = {"AWS_ENDPOINT_URL": url}
        wanted.update({k: v for k, v in _PROCESS_DEFAULTS.items() if not os.environ.get(k)})
        for key, value in wanted.items():
            self._saved_environment.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _restore_process(self) -> None:
        saved, self._saved_environment = self._saved_environment, {}
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def _changed(self, function_name: str, result: Any) -> None:
        if self.on_change is not None:
            self.on_change(function_name, result)

    def _progress(self, message: str) -> None:
        if self.on_progress is not None:
            self.on_progress(message)
