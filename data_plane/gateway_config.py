"""What the local gateway serves: a snapshot of one REST API stage, kept fresh.

:func:`load_gateway_config` reads one snapshot through a boto3 ``apigateway``
client: ``get_stage`` (stage variables), then ``get_resources(embed=["methods"])``
page by page, and ``get_integration`` only for a method whose embedded copy
lacks its integration. A missing stage or REST API is not an error: it is a
snapshot with nothing deployed, so every request gets 403 Missing
Authentication Token, as before the first deployment on AWS.

:class:`ConfigSource` holds the current snapshot. It reloads it on a background
thread every ``refresh_interval_seconds`` and whenever :meth:`ConfigSource.refresh_now`
is called (the local cloud calls it after each reconcile and failover, since a
failover changes only a stage variable). Snapshots are swapped whole, so a
request sees one consistent snapshot; a failed reload keeps the last good one.
Requests never read AWS. (Each reload costs two control-plane calls, which is
cheap against the local emulator; on AWS, whose API Gateway control plane allows
about 10 requests/s per account, use a long interval.)

The snapshot also carries the REST API's ``binaryMediaTypes`` (``GetRestApi``), which the
``AWS_PROXY`` integration applies (:mod:`data_plane.binary_media`).

The snapshot reads the API's current resources, not the deployment's frozen
copy, because the emulator does not return deployment snapshots; the reconciler
deploys after every change, so the two agree in practice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from control_plane.errors import GatewayError
from data_plane.access_config import AccessConfig, load_access_config
from data_plane.alb_config import AlbConfig, load_alb_config
from data_plane.routing import (
    InvalidResourcePathError,
    Match,
    RoutingTable,
    RoutingTableBuilder,
)

LOG = logging.getLogger("turnout.gateway.config")

DEFAULT_TIMEOUT_MS = 29_000
_NOT_FOUND = frozenset({"NotFoundException"})


class GatewayConfigError(GatewayError):
    """The stage's configuration could not be read; the last good snapshot stays."""

    reason = "GatewayConfigUnavailable"


@dataclass(frozen=True)
class Integration:
    """A method's integration, as API Gateway stores it."""

    type: str
    uri: str = ""
    http_method: str = "ANY"
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    request_parameters: Mapping[str, str] = field(default_factory=dict)
    connection_type: str = "INTERNET"
    connection_id: str | None = None

    @property
    def kind(self) -> str:
        """The type, with ``/VPC_LINK`` appended when it goes through a VPC link."""
        return f"{self.type}/VPC_LINK" if self.connection_type == "VPC_LINK" else self.type


@dataclass(frozen=True)
class MethodConfig:
    """One resource method: what a matched request is handed to."""

    resource_path: str
    http_method: str
    api_key_required: bool = False
    integration: Integration | None = None


@dataclass(frozen=True)
class GatewayConfig:
    """One consistent snapshot of a deployed stage."""

    rest_api_id: str
    stage_name: str
    deployment_id: str | None
    stage_variables: Mapping[str, str]
    routes: RoutingTable[MethodConfig]
    fingerprint: str = ""
    problems: tuple[str, ...] = ()
    access: AccessConfig = field(default_factory=AccessConfig)
    alb: AlbConfig = field(default_factory=AlbConfig)
    binary_media_types: tuple[str, ...] = ()
    resources: tuple[dict[str, Any], ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def undeployed(cls, rest_api_id: str, stage_name: str) -> GatewayConfig:
        """The snapshot of a stage that does not exist (yet): nothing is served."""
        return cls(
            rest_api_id=rest_api_id,
            stage_name=stage_name,
            deployment_id=None,
            stage_variables=MappingProxyType({}),
            routes=RoutingTable.empty(),
            fingerprint="undeployed",
        )

    @property
    def deployed(self) -> bool:
        """Whether the stage exists, i.e. whether anything can be served."""
        return self.deployment_id is not None

    def match(self, method: str, raw_path: str) -> Match[MethodConfig] | None:
        """The resource method serving this request, if the stage has one."""
        return self.routes.match(method, raw_path) if self.deployed else None


def apigateway_client(endpoint_url: str | None, *, region: str) -> Any:
    """A boto3 ``apigateway`` client suited to frequent, fail-fast reloads."""
    return boto3.client(
        "apigateway",
        endpoint_url=endpoint_url,
        region_name=region,
        config=Config(
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=2,
            read_timeout=5,
        ),
    )


def load_gateway_config(client: Any, *, rest_api_id: str, stage_name: str,
                        previous: GatewayConfig | None = None) -> GatewayConfig:
    """Read one snapshot of ``rest_api_id``'s stage ``stage_name``.

    Resources, methods and integrations take effect with a deployment, as on API Gateway: when
    the stage still points at ``previous``'s deployment they are taken from ``previous``
    instead of being read again. Stage variables, keys, usage plans, the resource policy and
    the load balancer are read every time.

    Raises :class:`GatewayConfigError` when the endpoint fails or refuses.
    """
    try:
        stage = client.get_stage(restApiId=rest_api_id, stageName=stage_name)
        deployment = stage.get("deploymentId")
        if previous is not None and deployment and previous.deployment_id == deployment:
            resources = list(previous.resources)
        else:
            resources = list(_resources(client, rest_api_id))
        alb = load_alb_config(client, resources=resources)
        access = load_access_config(client, rest_api_id=rest_api_id, stage_name=stage_name,
                                    stage=stage, resources=resources)
        binary_media_types = tuple(client.get_rest_api(restApiId=rest_api_id).get("binaryMediaTypes") or ())
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
            return GatewayConfig.undeployed(rest_api_id, stage_name)
        raise GatewayConfigError(f"reading stage {stage_name!r} failed: {exc}") from exc
    except BotoCoreError as exc:
        raise GatewayConfigError(f"reading stage {stage_name!r} failed: {exc}") from exc
    variables = dict(stage.get("variables") or {})
    routes, problems = build_routes(resources)
    return GatewayConfig(
        rest_api_id=rest_api_id,
        stage_name=stage_name,
        deployment_id=stage.get("deploymentId") or "",
        stage_variables=MappingProxyType(variables),
        routes=routes,
        fingerprint=_fingerprint(stage.get("deploymentId"), variables,
                                 [resources, list(binary_media_types)]),
        problems=tuple(problems) + access.problems + alb.problems,
        access=access,
        alb=alb,
        binary_media_types=binary_media_types,
        resources=tuple(resources),
    )


def _resources(client: Any, rest_api_id: str) -> Iterable[dict[str, Any]]:
    pages = client.get_paginator("get_resources").paginate(
        restApiId=rest_api_id, embed=["methods"], PaginationConfig={"PageSize": 500}
    )
    for page in pages:
        for resource in page.get("items", []):
            yield _with_integrations(client, rest_api_id, resource)


def _with_integrations(client: Any, rest_api_id: str, resource: dict[str, Any]) -> dict[str, Any]:
    methods = resource.get("resourceMethods") or {}
    for name, method in methods.items():
        if "methodIntegration" not in method:
            try:
                found = client.get_integration(
                    restApiId=rest_api_id, resourceId=resource["id"], httpMethod=name
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in _NOT_FOUND:
                    raise
                found = {}
            found.pop("ResponseMetadata", None)
            if found.get("type"):
                method["methodIntegration"] = found
    return resource


def build_routes(
    resources: Iterable[Mapping[str, Any]],
) -> tuple[RoutingTable[MethodConfig], list[str]]:
    """The routing table for ``get_resources(embed=["methods"])`` items, and its problems.

    A resource method that cannot be routed is left out and described in the
    problems, so one bad resource does not take the others down.
    """
    problems: list[str] = []
    builder: RoutingTableBuilder[MethodConfig] = RoutingTableBuilder()
    for resource in resources:
        path = resource.get("path", "")
        for name, method in (resource.get("resourceMethods") or {}).items():
            target = MethodConfig(
                resource_path=path,
                http_method=name,
                api_key_required=bool(method.get("apiKeyRequired", False)),
                integration=_integration(method.get("methodIntegration")),
            )
            try:
                builder.add(path, name, target)
            except InvalidResourcePathError as exc:
                problems.append(f"left out of the routing table: {exc}")
    return builder.build(), problems


def _integration(raw: Mapping[str, Any] | None) -> Integration | None:
    if not raw or not raw.get("type"):
        return None
    return Integration(
        type=str(raw["type"]).upper(),
        uri=raw.get("uri") or "",
        http_method=(raw.get("httpMethod") or "ANY").upper(),
        timeout_ms=int(raw.get("timeoutInMillis") or DEFAULT_TIMEOUT_MS),
        request_parameters=MappingProxyType(dict(raw.get("requestParameters") or {})),
        connection_type=raw.get("connectionType") or "INTERNET",
        connection_id=raw.get("connectionId"),
    )


def _fingerprint(deployment_id: str | None, variables: Mapping[str, str], resources: Any) -> str:
    document = json.dumps(
        {"deployment": deployment_id, "variables": variables, "resources": resources},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(document.encode()).hexdigest()


class ConfigSource:
    """The current :class:`GatewayConfig`, reloaded periodically and on demand."""

    def __init__(
        self,
        client: Any,
        *,
        rest_api_id: str,
        stage_name: str,
        refresh_interval_seconds: float = 1.0,
    ) -> None:
        if refresh_interval_seconds <= 0:
            raise ValueError("refresh_interval_seconds must be positive")
        self._client = client
        self._rest_api_id = rest_api_id
        self._stage_name = stage_name
        self._interval_seconds = refresh_interval_seconds
        self._current = GatewayConfig.undeployed(rest_api_id, stage_name)
        self._refresh_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    @classmethod
    def for_endpoint(
        cls,
        endpoint_url: str | None,
        *,
        region: str,
        rest_api_id: str,
        stage_name: str,
        refresh_interval_seconds: float = 1.0,
    ) -> ConfigSource:
        """A source reading from the AWS endpoint at ``endpoint_url`` (None: AWS itself)."""
        return cls(
            apigateway_client(endpoint_url, region=region),
            rest_api_id=rest_api_id,
            stage_name=stage_name,
            refresh_interval_seconds=refresh_interval_seconds,
        )

    @property
    def current(self) -> GatewayConfig:
        """The snapshot to serve the next request with."""
        return self._current

    def refresh_now(self) -> bool:
        """Reload the snapshot now (blocking); False if that failed and the last good one stays.

        Safe to call from any thread; concurrent calls reload one after another,
        so a call made after a change always sees that change.
        """
        with self._refresh_lock:
            try:
                fresh = load_gateway_config(
                    self._client, rest_api_id=self._rest_api_id, stage_name=self._stage_name,
                    previous=self._current,
                )
            except GatewayConfigError as exc:
                self._report_failure(exc)
                return False
            if self._failing:
                LOG.info("gateway config readable again")
                self._failing = False
            if fresh.fingerprint != self._current.fingerprint:
                LOG.info(
                    "gateway config changed: stage=%s deployment=%s routes=%d variables=%s",
                    fresh.stage_name,
                    fresh.deployment_id,
                    len(fresh.routes),
                    sorted(fresh.stage_variables),
                )
                for problem in fresh.problems:
                    LOG.warning("gateway config: %s", problem)
            self._current = fresh
            return True

    def _report_failure(self, exc: GatewayConfigError) -> None:
        level = logging.DEBUG if self._failing else logging.WARNING
        LOG.log(level, "keeping the last good gateway config: %s", exc)
        self._failing = True

    def start(self) -> None:
        """Load the first snapshot, then keep reloading in a daemon thread."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self.refresh_now()
        self._thread = threading.Thread(target=self._run, name="turnout-gateway-config", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background reloads (the current snapshot stays readable)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_seconds):
            self.refresh_now()

    def __enter__(self) -> ConfigSource:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
