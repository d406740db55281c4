"""Lambda functions of the stack, run in this process.

:class:`FunctionRuntime` reads a function's configuration from the embedded AWS
(``GetFunctionConfiguration``: Handler, Environment, Timeout, MemorySize), imports the handler
named there (``package.module.function``) once and keeps it warm, and calls it with a Lambda
context object. The function's environment variables reach the handler through
:data:`control_plane.settings.function_environment`, never through ``os.environ``, so several
functions can run side by side in one process.

What Lambda would do and this runtime does too: the result goes through JSON (a value that does
not serialise is a ``Runtime.MarshalError``), an exception becomes ``FunctionError: Unhandled``
with Lambda's ``errorMessage`` / ``errorType`` / ``stackTrace`` payload, and a call that outlives
the function's ``Timeout`` fails with ``Sandbox.Timedout``; a function's reserved concurrency
(``ReservedConcurrentExecutions``) caps how many of its invocations run at once: a synchronous
``Invoke`` beyond it is throttled (``TooManyRequestsException``), an asynchronous, stream or
EventBridge invocation waits for a free slot, as Lambda's retries of those would. What it
cannot do: stop a handler that overran its timeout (the thread finishes in the background and
holds its concurrency slot until then, so two runs of a function reserved to one never overlap).
"""

from __future__ import annotations

import contextvars
import importlib
import json
import logging
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from control_plane.settings import function_environment
from local_cloud.clients import aws_client

log = logging.getLogger(__name__)

InvocationListener = Callable[[str, Any], None]


class FunctionError(Exception):
    """The function failed, as Lambda reports it with ``FunctionError: Unhandled``."""

    def __init__(self, function_name: str, error_type: str, error_message: str,
                 stack_trace: list[str] | None = None) -> None:
        super().__init__(f"{function_name}: {error_type}: {error_message}")
        self.function_name = function_name
        self.error_type = error_type
        self.error_message = error_message
        self.stack_trace = list(stack_trace or [])

    @property
    def payload(self) -> dict[str, Any]:
        """The response body Lambda returns for this error."""
        body: dict[str, Any] = {"errorMessage": self.error_message, "errorType": self.error_type}
        if self.stack_trace:
            body["stackTrace"] = self.stack_trace
        return body


class FunctionThrottled(FunctionError):
    """Every slot of the function's reserved concurrency is taken (Lambda answers 429)."""

    def __init__(self, function_name: str, reserved: int) -> None:
        super().__init__(function_name, "TooManyRequestsException", "Rate Exceeded.")
        self.reserved = reserved


@dataclass(frozen=True)
class FunctionConfiguration:
    """What the runtime needs from ``GetFunctionConfiguration``."""

    name: str
    arn: str
    handler: str
    version: str
    timeout_seconds: float
    memory_mb: int
    environment: Mapping[str, str]
    reserved_concurrency: int | None = None
    """``ReservedConcurrentExecutions``; None: only the account's limit."""

    @classmethod
    def from_api(cls, response: Mapping[str, Any],
                 concurrency: Mapping[str, Any] | None = None) -> FunctionConfiguration:
        reserved = (concurrency or {}).get("ReservedConcurrentExecutions")
        return cls(
            name=response["FunctionName"],
            arn=response["FunctionArn"],
            handler=response.get("Handler") or "",
            version=response.get("Version") or "$LATEST",
            timeout_seconds=float(response.get("Timeout") or 3),
            memory_mb=int(response.get("MemorySize") or 128),
            environment=dict((response.get("Environment") or {}).get("Variables") or {}),
            reserved_concurrency=None if reserved is None else int(reserved),
        )

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.name}"


class LambdaContext:
    """The context object Lambda passes as a handler's second argument."""

    def __init__(self, config: FunctionConfiguration, *, request_id: str, deadline: float) -> None:
        self.function_name = config.name
        self.function_version = config.version
        self.invoked_function_arn = config.arn
        self.memory_limit_in_mb = config.memory_mb
        self.aws_request_id = request_id
        self.log_group_name = config.log_group_name
        self.log_stream_name = (
            f"{time.strftime('%Y/%m/%d')}/[{config.version}]{uuid.uuid4().hex}"
        )
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class InvocationResult:
    """A finished invocation as the Invoke API reports it."""

    payload: bytes
    function_error: str | None = None


class FunctionRuntime:
    """Runs the stack's Lambda functions in this process.

    ``environment_overrides`` are merged over every function's own variables (for example
    ``TURNOUT_ALLOW_LOOPBACK_UPSTREAMS=true``). ``source_paths`` are put on ``sys.path`` so
    handlers import from the project's source tree. ``on_invocation(function_name, outcome)``
    is called after each finished invocation with the handler's result or the
    :class:`FunctionError`.
    """

    def __init__(
        self,
        endpoint_url: str,
        *,
        region: str = "us-east-1",
        environment_overrides: Mapping[str, str] | None = None,
        source_paths: Iterable[str] = (),
        on_invocation: InvocationListener | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.environment_overrides = dict(environment_overrides or {})
        self.on_invocation = on_invocation
        for path in source_paths:
            if path not in sys.path:
                sys.path.insert(0, path)
        self._lambda = aws_client("lambda", endpoint_url=endpoint_url, region=region)
        self._handlers: dict[str, Callable[[Any, LambdaContext], Any]] = {}
        self._handlers_lock = threading.Lock()
        self._configurations: dict[tuple[str, str | None], tuple[float, FunctionConfiguration]] = {}
        self._slots = _ConcurrencySlots()
        self._refreshing: set[tuple[str, str | None]] = set()

    CONFIGURATION_TTL_SECONDS = 1.0

    def configuration(self, function_name: str, qualifier: str | None = None) -> FunctionConfiguration:
        """The function's configuration, read from the embedded AWS at most once a second per
        function (a warm Lambda sees a configuration change on its next cold start, too).

        Once known, a stale configuration is refreshed by one caller while the others go on
        with it: many invocations of one function start at once on the local cloud.
        """
        key = (function_name, qualifier)
        now = time.monotonic()
        cached = self._configurations.get(key)
        if cached is not None:
            if now - cached[0] < self.CONFIGURATION_TTL_SECONDS:
                return cached[1]
            with self._handlers_lock:
                if key in self._refreshing:
                    return cached[1]
                self._refreshing.add(key)
        try:
            kwargs = {"FunctionName": function_name}
            if qualifier:
                kwargs["Qualifier"] = qualifier
            function = self._lambda.get_function(**kwargs)
            config = FunctionConfiguration.from_api(function["Configuration"],
                                                    function.get("Concurrency"))
            self._configurations[key] = (now, config)
            return config
        finally:
            if cached is not None:
                with self._handlers_lock:
                    self._refreshing.discard(key)

    def invoke(self, function_name: str, event: Any, *, qualifier: str | None = None,
               wait_for_capacity: bool = True) -> Any:
        """Run the function with ``event``; its JSON result, or :class:`FunctionError`.

        At the function's reserved concurrency the call waits for a free slot, or with
        ``wait_for_capacity=False`` (a synchronous ``Invoke``) fails with
        :class:`FunctionThrottled`.
        """
        try:
            config = self.configuration(function_name, qualifier)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise FunctionError(function_name, error.get("Code", "ResourceNotFoundException"),
                                error.get("Message", str(exc))) from exc
        try:
            result = self._run(config, event, wait_for_capacity=wait_for_capacity)
        except FunctionThrottled:
            raise
        except FunctionError as error:
            self._notify(config.name, error)
            raise
        self._notify(config.name, result)
        return result

    def invoke_payload(
        self, function_name: str, payload: bytes | str | None, *, qualifier: str | None = None,
        wait_for_capacity: bool = True,
    ) -> InvocationResult:
        """The Invoke API: a JSON payload in, a JSON payload (and maybe an error) out.

        :class:`FunctionThrottled` is raised, not returned: Lambda answers it as an API error.
        """
        try:
            event = json.loads(payload) if payload else {}
        except (ValueError, UnicodeDecodeError):
            error = FunctionError(function_name, "InvalidRequestContentException",
                                  "Could not parse request body into json")
            return InvocationResult(json.dumps(error.payload).encode(), "Unhandled")
        try:
            result = self.invoke(function_name, event, qualifier=qualifier,
                                 wait_for_capacity=wait_for_capacity)
        except FunctionThrottled:
            raise
        except FunctionError as error:
            return InvocationResult(json.dumps(error.payload).encode(), "Unhandled")
        return InvocationResult(json.dumps(result).encode())

    def _run(self, config: FunctionConfiguration, event: Any, *, wait_for_capacity: bool) -> Any:
        handler = self._handler(config)
        self._slots.acquire(config.name, config.reserved_concurrency, wait=wait_for_capacity)
        request_id = str(uuid.uuid4())
        deadline = time.monotonic() + config.timeout_seconds
        context = LambdaContext(config, request_id=request_id, deadline=deadline)
        environment = self._environment(config, context)
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def call() -> None:
            token = function_environment.set(environment)
            try:
                outcome["result"] = _marshal(config.name, handler(event, context))
            except FunctionError as error:
                outcome["error"] = error
            except BaseException as exc:  # noqa: BLE001 - every handler failure is reported
                outcome["error"] = FunctionError(
                    config.name, type(exc).__name__, str(exc),
                    traceback.format_tb(exc.__traceback__),
                )
            finally:
                function_environment.reset(token)
                self._slots.release(config.name)
                done.set()

        caller_context = contextvars.copy_context()
        worker = threading.Thread(
            target=caller_context.run, args=(call,), name=f"lambda:{config.name}", daemon=True
        )
        try:
            worker.start()
        except BaseException:
            self._slots.release(config.name)
            raise
        if not done.wait(config.timeout_seconds):
            raise FunctionError(
                config.name, "Sandbox.Timedout",
                f"RequestId: {request_id} Error: Task timed out after "
                f"{config.timeout_seconds:.2f} seconds",
            )
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    def _environment(self, config: FunctionConfiguration, context: LambdaContext) -> dict[str, str]:
        environment = {
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_LAMBDA_FUNCTION_NAME": config.name,
            "AWS_LAMBDA_FUNCTION_VERSION": config.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": context.log_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": context.log_stream_name,
            "_HANDLER": config.handler,
        }
        environment.update(config.environment)
        environment.update(self.environment_overrides)
        return environment

    def _handler(self, config: FunctionConfiguration) -> Callable[[Any, LambdaContext], Any]:
        with self._handlers_lock:
            handler = self._handlers.get(config.handler)
            if handler is None:
                handler = _import_handler(config.name, config.handler)
                self._handlers[config.handler] = handler
            return handler

    def _notify(self, function_name: str, outcome: Any) -> None:
        if self.on_invocation is None:
            return
        try:
            self.on_invocation(function_name, outcome)
        except Exception:  # noqa: BLE001 - a listener must not fail the invocation
            log.exception("invocation listener failed after %s", function_name)


class _ConcurrencySlots:
    """Invocations running per function, held to each function's reserved concurrency."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._running: dict[str, int] = {}

    def acquire(self, function_name: str, reserved: int | None, *, wait: bool) -> None:
        with self._changed:
            while reserved is not None and self._running.get(function_name, 0) >= reserved:
                if not wait or reserved == 0:  # 0 stops the function: nothing would free a slot
                    raise FunctionThrottled(function_name, reserved)
                self._changed.wait()
            self._running[function_name] = self._running.get(function_name, 0) + 1

    def release(self, function_name: str) -> None:
        with self._changed:
            self._running[function_name] -= 1
            self._changed.notify_all()


def _import_handler(function_name: str, handler: str) -> Callable[[Any, LambdaContext], Any]:
    module_name, _, attribute = handler.rpartition(".")
    if not module_name or not attribute:
        raise FunctionError(function_name, "Runtime.MalformedHandlerName",
                            f"Bad handler '{handler}': not enough values to unpack")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - an import failure is the function's error
        raise FunctionError(function_name, "Runtime.ImportModuleError",
                            f"Unable to import module '{module_name}': {exc}") from exc
    function = getattr(module, attribute, None)
    if not callable(function):
        raise FunctionError(function_name, "Runtime.HandlerNotFound",
                            f"Handler '{attribute}' missing on module '{module_name}'")
    return function


def _marshal(function_name: str, result: Any) -> Any:
    try:
        return json.loads(json.dumps(result))
    except (TypeError, ValueError) as exc:
        raise FunctionError(function_name, "Runtime.MarshalError",
                            f"Unable to marshal response: {exc}") from exc
