"""The few places where the local cloud changes moto's behaviour, all in this module.

Applied once per process by :func:`apply_patches`. Patches 1 and 4 act only while a runtime is
bound with :func:`bind` (unbound, moto behaves as without them); the others fix moto and
are always on.

1. **Lambda Invoke** (``LambdaBackend.invoke``, ``LambdaSimpleBackend.invoke``).
   Without the patch moto runs the function in Docker (which fails here: "error running
   docker", ``FunctionError: Handled``) or, with ``use_docker: false``, echoes the payload
   without running any code. With it, the bound invoker runs the handler in this process and
   the real payload comes back, with ``X-Amz-Function-Error: Unhandled`` when it failed.
   This serves every caller of the Invoke API: boto3 / the CLI on the endpoint and moto's Step
   Functions interpreter (``lambda:invoke`` and Lambda-ARN tasks, which it sends to
   ``localhost:$MOTO_PORT``). ``Event`` invocations run in the background; ``DryRun`` runs
   nothing.

2. **DynamoDB stream event source mappings** (``LambdaBackend.send_dynamodb_items``).
   Without the patch, every write to a table that has (or ever had) a mapping makes moto
   invoke the function synchronously through the Docker path and then *empty the stream
   shard*, so stream readers see nothing. With it, moto never runs a DynamoDB-stream mapping
   and the records stay on the stream, where
   :class:`local_cloud.stream_mappings.EventSourceMappingRunner` reads them. This is patched
   rather than clearing ``table.lambda_event_source_mappings`` after a deploy because it also
   covers mappings created later (a stack update, ``create-event-source-mapping`` from the
   CLI) and leaves no window in which a write could wipe the shard.

3. **Old shard iterators** (``DynamoDBStreamsBackend.get_records``). moto keeps every iterator
   it hands out forever; a poller asking four times a second would grow the process without
   bound. The oldest iterators beyond :data:`MAX_SHARD_ITERATORS` are forgotten (AWS expires
   them after 15 minutes).

4. **EventBridge delivery** (``Rule.send_to_targets``). Without the patch a matching rule with
   a Step Functions or Lambda target makes ``PutEvents`` raise ``NotImplementedError`` (HTTP
   500, which botocore retries, duplicating the deliveries that did happen). With it, those
   targets are handed to the bound sink (which delivers them asynchronously, as EventBridge
   does) and the other targets (SQS, Logs, buses, ...) stay moto's. Matching is moto's own
   ``EventPattern``; a ``DISABLED`` rule delivers nothing, and a rule with only a
   ``ScheduleExpression`` matches no event, as on AWS.

5. **State machines created by CloudFormation** (``StateMachine.*_from_cloudformation_json``).
   With the Step Functions interpreter on, the API serves moto's *parser* backend, but
   CloudFormation creates, updates and deletes state machines in the plain backend, so a
   stack's state machine cannot be found, described or started. With the patch,
   CloudFormation uses the backend the API serves.

6. **ELB ip targets on several ports** (``FakeTargetGroup.register`` / ``deregister`` /
   ``health_for``). moto keys a target group's targets by ``Id`` alone, so registering
   10.0.1.5:8080 and then 10.0.1.5:8081 keeps only the second, and deregistering either removes
   whichever is there (AWS keeps both: a target is an ``(Id, Port)`` pair). With the patch, the
   targets of ``ip`` target groups are keyed by ``(Id, Port)``; other target types are moto's.

7. **GetMetricData over many metrics** (``CloudWatchBackend.get_metric_data``). moto compares
   every query with every datapoint of the time range, and lists all datapoints ever stored on
   every call: the local alarm evaluator's one request for N alarms costs N x (all recent
   datapoints), so with a thousand upstreams the moto server spends its time there. With the
   patch, a request of several metric queries (no expressions) runs moto's own code once per
   query, each over the datapoints of that query's metric only (an index kept alongside
   moto's list, which moto only appends to). The index selects a superset of what moto's
   filter keeps, so the answers are moto's.

8. **One parse per state-machine definition** (``AmazonStateLanguageParser.parse``). moto's
   interpreter lexes and parses the definition (ANTLR, pure Python) at the start of every
   execution: about a sixth of the local cloud's CPU while a burst of alarms starts a burst of
   failover workflows. With the patch the parse tree of a definition is kept (it is only read
   afterwards) and every call still builds fresh evaluation components from it, so no state is
   shared between executions.

9. **Per-request and per-task set-up costs** (``backends.list_of_moto_modules``,
   ``boto_client_for``). moto's server lists its own package directory (a ``listdir`` and a
   ``stat`` per service) on every request to find the backend, and the state-machine
   interpreter builds a new boto3 client for every Task state. With the patch the directory is
   listed once and each (region, service) client is built once and shared (boto3 clients are
   thread-safe; moto gives every one the same dummy credentials).
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

MAX_SHARD_ITERATORS = 10_000
DISPATCHED_SERVICES = frozenset({"states", "lambda"})


class LambdaInvoker(Protocol):
    """What the Invoke patch needs from the function runtime."""

    def invoke_payload(self, function_name: str, payload: bytes | str | None, *,
                       qualifier: str | None = None, wait_for_capacity: bool = True) -> Any:
        """Return an object with ``payload: bytes`` and ``function_error: str | None``; raise
        an exception with ``reserved`` when the function's reserved concurrency is used up and
        ``wait_for_capacity`` is false."""


@dataclass(frozen=True)
class RuleRef:
    """The rule whose target is being delivered."""

    name: str
    arn: str
    event_bus_name: str


class EventTargetSink(Protocol):
    """Where the EventBridge patch sends Step Functions and Lambda targets."""

    def deliver(self, rule: RuleRef, target: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        """Accept one matched event for one target; must not block on the delivery."""


class _Bindings:
    def __init__(self) -> None:
        self.invoker: LambdaInvoker | None = None
        self.event_sink: EventTargetSink | None = None


_bindings = _Bindings()
_applied = False
_apply_lock = threading.Lock()


def bind(*, invoker: LambdaInvoker | None = None,
         event_sink: EventTargetSink | None = None) -> None:
    """Route moto's Lambda invokes and EventBridge targets to these (``None`` leaves as is)."""
    apply_patches()
    if invoker is not None:
        _bindings.invoker = invoker
    if event_sink is not None:
        _bindings.event_sink = event_sink


def unbind(*, invoker: LambdaInvoker | None = None,
           event_sink: EventTargetSink | None = None) -> None:
    """Undo :func:`bind` for these objects (only if they are still the bound ones)."""
    if invoker is not None and _bindings.invoker is invoker:
        _bindings.invoker = None
    if event_sink is not None and _bindings.event_sink is event_sink:
        _bindings.event_sink = None


def apply_patches() -> None:
    """Install the patches on moto's classes (once per process)."""
    global _applied
    with _apply_lock:
        if _applied:
            return
        _patch_lambda_invoke()
        _patch_dynamodb_stream_mappings()
        _patch_shard_iterators()
        _patch_eventbridge_targets()
        _patch_state_machine_stack_resources()
        _patch_elb_ip_target_ports()
        _patch_metric_data_queries()
        _patch_definition_parsing()
        _patch_setup_costs()
        _applied = True


def _patch_lambda_invoke() -> None:
    from moto.awslambda.models import LambdaBackend
    from moto.awslambda_simple.models import LambdaSimpleBackend

    for backend_class in (LambdaBackend, LambdaSimpleBackend):
        original = backend_class.invoke

        def invoke(self: Any, function_name: str, qualifier: str | None, body: Any,
                   headers: Any, response_headers: Any, _original: Any = original) -> Any:
            invoker = _bindings.invoker
            if invoker is None:
                return _original(self, function_name, qualifier, body, headers, response_headers)
            self.get_function(function_name, qualifier)  # 404 for an unknown function
            return _serve_invoke(invoker, function_name, qualifier, body, headers,
                                 response_headers)

        backend_class.invoke = invoke


def _serve_invoke(invoker: LambdaInvoker, function_name: str, qualifier: str | None,
                  body: Any, headers: Any, response_headers: dict[str, str]) -> bytes:
    invocation_type = (headers.get("X-Amz-Invocation-Type") if headers else None) or (
        "RequestResponse"
    )
    if invocation_type == "DryRun":
        return b""
    if invocation_type == "Event":
        worker = threading.Thread(
            target=_invoke_in_background, args=(invoker, function_name, qualifier, body),
            name="lambda-event-invoke", daemon=True,
        )
        worker.start()
        return b""
    try:
        result = invoker.invoke_payload(function_name, body, qualifier=qualifier,
                                        wait_for_capacity=False)
    except Exception as exc:
        if getattr(exc, "reserved", None) is None:
            raise
        raise _throttled() from exc
    if result.function_error:
        response_headers["x-amz-function-error"] = result.function_error
    response_headers["x-amz-executed-version"] = "$LATEST"
    return result.payload


def _throttled() -> Exception:
    """Lambda's answer to a synchronous Invoke beyond the function's reserved concurrency."""
    from moto.core.exceptions import JsonRESTError

    error = JsonRESTError("TooManyRequestsException", "Rate Exceeded.")
    error.code = 429
    error.description = json.dumps({
        "__type": "TooManyRequestsException", "message": "Rate Exceeded.",
        "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded", "Type": "User"})
    return error


def _invoke_in_background(invoker: LambdaInvoker, function_name: str, qualifier: str | None,
                          body: Any) -> None:
    result = invoker.invoke_payload(function_name, body, qualifier=qualifier)
    if result.function_error:
        log.warning("asynchronous invocation of %s failed: %s", function_name,
                    result.payload.decode("utf-8", "replace"))


def _patch_dynamodb_stream_mappings() -> None:
    from moto.awslambda.models import LambdaBackend

    def send_dynamodb_items(self: Any, function_arn: str, items: list[Any], source: str) -> str:
        return ""  # falsy: moto keeps the shard's records and invokes nothing

    LambdaBackend.send_dynamodb_items = send_dynamodb_items


def _patch_shard_iterators() -> None:
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    original = DynamoDBStreamsBackend.get_records

    def get_records(self: Any, iterator_arn: str, limit: int) -> dict[str, Any]:
        result = original(self, iterator_arn, limit)
        iterators = self.shard_iterators
        excess = len(iterators) - MAX_SHARD_ITERATORS
        if excess > 0:
            for stale in list(iterators)[:excess]:
                iterators.pop(stale, None)
        return result

    DynamoDBStreamsBackend.get_records = get_records


def _patch_eventbridge_targets() -> None:
    from moto.events.models import Rule
    from moto.utilities.arns import parse_arn

    original = Rule.send_to_targets

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        sink = _bindings.event_sink
        if sink is None:
            return original(self, original_event, transform_input)
        if self.state == "DISABLED" or not self.event_pattern.matches_event(original_event):
            return None
        if getattr(self, "scheduled_expression", None) and not self.event_pattern.get_pattern():
            # A schedule-only rule matches no event on AWS (moto's empty pattern matches all);
            # the local schedule runner fires it.
            return None
        ours = [t for t in self.targets if parse_arn(t["Arn"]).service in DISPATCHED_SERVICES]
        theirs = [t for t in self.targets if t not in ours]
        rule = RuleRef(name=self.name, arn=self.arn, event_bus_name=self.event_bus_name)
        for target in ours:
            sink.deliver(rule, copy.deepcopy(target), copy.deepcopy(original_event))
        if theirs:
            moto_rule = copy.copy(self)
            moto_rule.targets = theirs
            original(moto_rule, original_event, transform_input)
        return None

    Rule.send_to_targets = send_to_targets


def _patch_state_machine_stack_resources() -> None:
    from moto.stepfunctions.models import StateMachine
    from moto.stepfunctions.responses import get_backend
    from moto.stepfunctions.utils import cfn_to_api_tags

    def create(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str,
               region_name: str, **kwargs: Any) -> Any:
        properties = cloudformation_json["Properties"]
        return get_backend(account_id, region_name).create_state_machine(
            properties.get("StateMachineName", resource_name),
            properties.get("DefinitionString", ""),
            properties.get("RoleArn", ""),
            tags=cfn_to_api_tags(properties.get("Tags", [])),
        )

    def delete(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str,
               region_name: str) -> None:
        get_backend(account_id, region_name).delete_state_machine(resource_name)

    def update(cls: Any, original_resource: Any, new_resource_name: str,
               cloudformation_json: Any, account_id: str, region_name: str) -> Any:
        properties = cloudformation_json.get("Properties", {})
        name = properties.get("StateMachineName", original_resource.name)
        if name != original_resource.name:
            cloudformation_json["Properties"] = original_resource.get_cfn_properties(properties)
            replacement = cls.create_from_cloudformation_json(
                name, cloudformation_json, account_id, region_name)
            cls.delete_from_cloudformation_json(
                original_resource.arn, cloudformation_json, account_id, region_name)
            return replacement
        backend = get_backend(account_id, region_name)
        machine = backend.update_state_machine(
            original_resource.arn, definition=properties.get("DefinitionString"),
            role_arn=properties.get("RoleArn"))
        backend.tagger.tag_resource(machine.arn, cfn_to_api_tags(properties.get("Tags", [])))
        return machine

    StateMachine.create_from_cloudformation_json = classmethod(create)
    StateMachine.delete_from_cloudformation_json = classmethod(delete)
    StateMachine.update_from_cloudformation_json = classmethod(update)


def _patch_elb_ip_target_ports() -> None:
    from moto.elbv2.exceptions import InvalidTargetError
    from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup

    original_register = FakeTargetGroup.register
    original_deregister = FakeTargetGroup.deregister
    original_health_for = FakeTargetGroup.health_for

    def key(group: Any, target: Mapping[str, Any]) -> str:
        return f"{target['Id']}:{int(target.get('Port') or group.port)}"

    def register(self: Any, targets: list[dict[str, Any]]) -> None:
        if self.target_type != "ip":
            return original_register(self, targets)
        for target in targets:
            self.targets[key(self, target)] = {
                "Id": target["Id"], "Port": int(target.get("Port") or self.port)}
            self.deregistered_targets.pop(key(self, target), None)
        return None

    def deregister(self: Any, targets: list[dict[str, Any]]) -> None:
        if self.target_type != "ip":
            return original_deregister(self, targets)
        for target in targets:
            removed = self.targets.pop(key(self, target), None)
            if not removed:
                raise InvalidTargetError()
            self.deregistered_targets[key(self, target)] = removed
        return None

    def health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        if self.target_type != "ip":
            return original_health_for(self, target, ec2_backend)
        registered = self.targets.get(key(self, target))
        if registered is not None:
            return FakeHealthStatus(registered["Id"], registered["Port"],
                                    self.health_check_port, "healthy")
        port = int(target.get("Port") or self.port)
        if key(self, target) in self.deregistered_targets:
            return FakeHealthStatus(target["Id"], port, self.health_check_port, "unused",
                                    "Target.NotRegistered",
                                    "Target is not registered to the target group")
        return FakeHealthStatus(target["Id"], port, self.health_check_port, "unavailable",
                                "Target.NotRegistered", "Target is not registered")

    FakeTargetGroup.register = register
    FakeTargetGroup.deregister = deregister
    FakeTargetGroup.health_for = health_for


def _patch_metric_data_queries() -> None:
    from moto.cloudwatch.models import CloudWatchBackend

    original_get = CloudWatchBackend.get_metric_data
    original_all = CloudWatchBackend.get_all_metrics
    scope = threading.local()
    lock = threading.Lock()

    def get_all_metrics(self: Any) -> list[Any]:
        subset = getattr(scope, "subset", None)
        return original_all(self) if subset is None else subset

    def get_metric_data(self: Any, queries: list[dict[str, Any]], start_time: Any,
                        end_time: Any, scan_by: str = "TimestampAscending") -> list[dict[str, Any]]:
        if len(queries) < 2 or not all("MetricStat" in q for q in queries):
            return original_get(self, queries, start_time, end_time, scan_by)
        provided = _MetricIndex()  # metrics of AWS services, computed afresh on every call
        provided.add(self.aws_metric_data)
        with lock:
            stored = self.__dict__.setdefault("_turnout_metric_index", _MetricIndex())
            stored.add(self.metric_data[stored.count:])
            subsets = [stored.candidates(q["MetricStat"]["Metric"])
                       + provided.candidates(q["MetricStat"]["Metric"]) for q in queries]
        results: list[dict[str, Any]] = []
        for query, subset in zip(queries, subsets, strict=True):
            scope.subset = subset
            try:
                results.extend(original_get(self, [query], start_time, end_time, scan_by))
            finally:
                scope.subset = None
        return results

    CloudWatchBackend.get_all_metrics = get_all_metrics
    CloudWatchBackend.get_metric_data = get_metric_data


class _MetricIndex:
    """Datapoints by metric: by (name, dimensions) and by (namespace, name), as moto filters."""

    def __init__(self) -> None:
        self.count = 0
        self.by_dimensions: dict[tuple, list[Any]] = {}
        self.by_name: dict[tuple, list[Any]] = {}

    def add(self, data: list[Any]) -> None:
        for datum in data:
            dims = tuple(sorted((d.name, d.value) for d in datum.dimensions or ()))
            self.by_dimensions.setdefault((datum.name, dims), []).append(datum)
            self.by_name.setdefault((datum.namespace, datum.name), []).append(datum)
        self.count += len(data)

    def candidates(self, metric: Mapping[str, Any]) -> list[Any]:
        dims = tuple(sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions") or ()))
        if dims:  # moto then matches name and dimensions (whatever the namespace)
            return list(self.by_dimensions.get((metric["MetricName"], dims), ()))
        return list(self.by_name.get((metric["Namespace"], metric["MetricName"]), ()))


PARSE_TREES_KEPT = 64
"""Distinct state-machine definitions whose parse trees are kept."""


def _patch_definition_parsing() -> None:
    from functools import lru_cache

    from moto.stepfunctions.parser.asl.parse import asl_parser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    original = asl_parser.AmazonStateLanguageParser.parse

    @lru_cache(maxsize=PARSE_TREES_KEPT)
    def tree_of(definition: str) -> Any:
        return original(definition)[1]  # raises ASLParserException: nothing is cached

    def parse(definition: str) -> tuple[Any, Any]:
        tree = tree_of(definition)
        return Preprocessor().visit(tree), tree

    asl_parser.AmazonStateLanguageParser.parse = staticmethod(parse)


_TASK_SERVICE_MODULES = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service."
    "state_task_service_dynamodb",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service."
    "state_task_service_events",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service."
    "state_task_service_aws_sdk",
)


def _patch_setup_costs() -> None:
    import importlib

    from moto import backends
    from moto.stepfunctions.parser.asl.utils import boto_client

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules

    original = boto_client.boto_client_for
    clients: dict[tuple, Any] = {}
    clients_lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        from moto.core.models import botocore_stubber
        from moto.settings import moto_server_port

        key = (region, service, botocore_stubber.enabled, moto_server_port())
        with clients_lock:
            client = clients.get(key)
            if client is None:
                client = clients[key] = original(region, service, state_credentials)
            return client

    boto_client.boto_client_for = boto_client_for
    for name in _TASK_SERVICE_MODULES:
        module = importlib.import_module(name)
        if getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = boto_client_for
