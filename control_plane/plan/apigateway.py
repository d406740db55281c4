"""What a route becomes in API Gateway, and the pure plan from observed to desired.

A ``direct`` route with ``url`` upstreams becomes, on the turnout REST API:

- a resource per path segment (``/payments``, ``/payments/{proxy+}``), shared between routes;
- one method per HTTP method (or ``ANY``) whose ``operationName`` is ``turnout-<route_id>``:
  the method's owner, so ownership is read back from API Gateway itself;
- an ``HTTP_PROXY`` integration to ``<scheme>://${stageVariables.<var>}<path>``, where the
  stage variable ``<var>`` (the route id with ``-`` as ``_``) holds the active upstream's
  ``host[:port][/base-path]``. Failover changes only that variable: no redeploy.

Nothing here does I/O: ``plan_route(desired, observed)`` returns ordered actions, and an
empty list when API Gateway already matches.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from control_plane.errors import InvalidRouteError, Problem

OWNER_PREFIX = "turnout-"
ANY = "ANY"
_PARAM = re.compile(r"^\{([A-Za-z0-9_]+)\+?\}$")


def stage_variable_name(route_id: str) -> str:
    return route_id.replace("-", "_")


def route_id_of_variable(name: str) -> str:
    return name.replace("_", "-")


def owner_tag(route_id: str) -> str:
    return OWNER_PREFIX + route_id


def owner_of(operation_name: str | None) -> str | None:
    if operation_name and operation_name.startswith(OWNER_PREFIX):
        return operation_name[len(OWNER_PREFIX):]
    return None


def split_upstream_url(url: str) -> tuple[str, str]:
    """``https://api.example.com:8443/v2/`` -> (``https``, ``api.example.com:8443/v2``)."""
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.netloc + parts.path).rstrip("/")


def upstream_active_url(upstream) -> str | None:
    """What a route's status records as ``active_url`` for a URL upstream (None: a target)."""
    if upstream.url is None:
        return None
    scheme, value = split_upstream_url(upstream.url)
    return f"{scheme}://{value}"


def path_parameters(path: str) -> list[str]:
    names = []
    for segment in path.strip("/").split("/"):
        m = _PARAM.match(segment)
        if m:
            names.append(m.group(1))
    return names


def integration_path(path: str) -> str:
    return path.replace("+}", "}")


ROUTE_HEADER = "X-Turnout-Route"


@dataclass(frozen=True)
class IntegrationSpec:
    type: str
    uri: str
    http_method: str = ANY
    timeout_ms: int = 29000
    request_parameters: tuple[tuple[str, str], ...] = ()
    connection_type: str = "INTERNET"
    connection_id: str | None = None
    integration_target: str | None = None


@dataclass(frozen=True)
class MethodSpec:
    route_id: str
    path: str
    http_method: str
    integration: IntegrationSpec
    api_key_required: bool = False
    request_parameters: tuple[tuple[str, bool], ...] = ()

    @property
    def operation_name(self) -> str:
        return owner_tag(self.route_id)


def lambda_invocation_uri(region: str, function_arn: str) -> str:
    return (f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/"
            f"{function_arn}/invocations")


def desired_integration(
    route,
    *,
    region: str = "us-east-1",
    proxy_function_arn: str | None = None,
    vpc_link_id: str | None = None,
    load_balancer_arn: str | None = None,
    load_balancer_dns: str | None = None,
) -> IntegrationSpec:
    """The integration every method of ``route`` uses.

    - ``proxy`` mode: ``AWS_PROXY`` to the data-plane Lambda, which picks the upstream itself;
    - ``direct`` with ``url`` upstreams: ``HTTP_PROXY`` to ``<scheme>://${stageVariables.<var>}``;
    - ``direct`` with ``targets`` upstreams: ``HTTP_PROXY`` over the VPC link to the internal
      ALB, with a ``X-Turnout-Route`` header its listener rule for this route matches on.
    """
    params = path_parameters(route.path)
    path_mapping = tuple(
        (f"integration.request.path.{p}", f"method.request.path.{p}") for p in params
    )
    if route.mode == "proxy":
        if not proxy_function_arn:
            raise InvalidRouteError([Problem("mode", "ProxyModeUnavailable",
                                             "this stack has no data-plane function for proxy routes")],
                                    route_id=route.route_id)
        return IntegrationSpec(type="AWS_PROXY", uri=lambda_invocation_uri(region, proxy_function_arn),
                               http_method="POST", timeout_ms=route.timeout_ms)
    primary = route.primary()
    if primary.url is None:
        if not (vpc_link_id and load_balancer_dns):
            raise InvalidRouteError([Problem("upstreams", "TargetsUnavailable",
                                             "this stack has no VPC link and load balancer for "
                                             "in-VPC targets")], route_id=route.route_id)
        return IntegrationSpec(
            type="HTTP_PROXY",
            uri=f"http://{load_balancer_dns}{integration_path(route.path)}",
            timeout_ms=route.timeout_ms,
            request_parameters=tuple(sorted(path_mapping + (
                (f"integration.request.header.{ROUTE_HEADER}", f"'{route.route_id}'"),))),
            connection_type="VPC_LINK",
            connection_id=vpc_link_id,
            integration_target=load_balancer_arn,
        )
    scheme, _ = split_upstream_url(primary.url)
    var = stage_variable_name(route.route_id)
    return IntegrationSpec(
        type="HTTP_PROXY",
        uri=f"{scheme}://${{stageVariables.{var}}}{integration_path(route.path)}",
        timeout_ms=route.timeout_ms,
        request_parameters=path_mapping,
    )


def desired_methods(route, **integration_options) -> list[MethodSpec]:
    """The methods a valid route needs, all sharing one integration."""
    integration = desired_integration(route, **integration_options)
    method_params = tuple((f"method.request.path.{p}", True) for p in path_parameters(route.path))
    return [
        MethodSpec(
            route_id=route.route_id,
            path=route.path,
            http_method=method,
            integration=integration,
            api_key_required=route.security.api_key_required,
            request_parameters=method_params,
        )
        for method in sorted(set(route.methods))
    ]


# ---- observed state -------------------------------------------------------------------


@dataclass
class ObservedIntegration:
    type: str
    uri: str
    http_method: str | None
    timeout_ms: int
    request_parameters: dict[str, str]
    connection_type: str = "INTERNET"
    connection_id: str | None = None
    integration_target: str | None = None

    def matches(self, spec: IntegrationSpec) -> bool:
        return (
            self.type == spec.type
            and self.uri == spec.uri
            and (self.http_method or ANY) == spec.http_method
            and self.timeout_ms == spec.timeout_ms
            and self.request_parameters == dict(spec.request_parameters)
            and (self.connection_type or "INTERNET") == spec.connection_type
            # Some endpoints (the local emulator) do not echo these two back.
            and self.connection_id in (None, spec.connection_id)
            and self.integration_target in (None, spec.integration_target)
        )


@dataclass
class ObservedMethod:
    http_method: str
    api_key_required: bool
    operation_name: str | None
    request_parameters: dict[str, bool]
    integration: ObservedIntegration | None

    @property
    def owner(self) -> str | None:
        return owner_of(self.operation_name)

    def method_matches(self, spec: MethodSpec) -> bool:
        return (
            self.api_key_required == spec.api_key_required
            and self.operation_name == spec.operation_name
            and self.request_parameters == dict(spec.request_parameters)
        )


@dataclass
class ObservedResource:
    id: str
    parent_id: str | None
    path: str
    path_part: str
    methods: dict[str, ObservedMethod] = field(default_factory=dict)


@dataclass
class ObservedStage:
    name: str
    deployment_id: str | None
    deployment_description: str
    variables: dict[str, str]


@dataclass
class ObservedApi:
    rest_api_id: str
    resources: dict[str, ObservedResource]
    stage: ObservedStage | None
    policy: str | None = None  # the REST API's resource policy (part of every deployment)

    @property
    def root(self) -> ObservedResource:
        return self.resources["/"]

    def children(self, path: str) -> list[ObservedResource]:
        return [r for r in self.resources.values() if r.path != "/" and parent_path(r.path) == path]

    def owned_by(self, route_id: str) -> list[tuple[str, str]]:
        return sorted(
            (r.path, m.http_method)
            for r in self.resources.values()
            for m in r.methods.values()
            if m.owner == route_id
        )

    def owners(self) -> set[str]:
        return {m.owner for r in self.resources.values() for m in r.methods.values() if m.owner}

    def method_count(self) -> int:
        return sum(len(r.methods) for r in self.resources.values())

    def fingerprint(self) -> str:
        """A digest of everything a deployment snapshots (ids excluded)."""
        doc = {
            path: {
                name: {
                    "key": m.api_key_required,
                    "op": m.operation_name,
                    "params": m.request_parameters,
                    "integration": None if m.integration is None else {
                        "type": m.integration.type,
                        "uri": m.integration.uri,
                        "method": m.integration.http_method,
                        "timeout": m.integration.timeout_ms,
                        "params": m.integration.request_parameters,
                        "conn": m.integration.connection_type,
                    },
                }
                for name, m in sorted(r.methods.items())
            }
            for path, r in sorted(self.resources.items())
        }
        doc = {"resources": doc, "policy": self.policy}
        raw = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()[:32]


def parent_path(path: str) -> str:
    head = path.rsplit("/", 1)[0]
    return head or "/"


def ancestors(path: str) -> list[str]:
    """``/a/b/c`` -> [``/a``, ``/a/b``, ``/a/b/c``]."""
    segments = [s for s in path.split("/") if s]
    return ["/" + "/".join(segments[: i + 1]) for i in range(len(segments))]


# ---- actions --------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateResource:
    path: str


@dataclass(frozen=True)
class PutMethod:
    spec: MethodSpec


@dataclass(frozen=True)
class ReplaceMethod:
    spec: MethodSpec


@dataclass(frozen=True)
class PutIntegration:
    spec: MethodSpec


@dataclass(frozen=True)
class DeleteMethod:
    path: str
    http_method: str


@dataclass(frozen=True)
class DeleteResource:
    path: str


Action = CreateResource | PutMethod | ReplaceMethod | PutIntegration | DeleteMethod | DeleteResource


@dataclass(frozen=True)
class Conflict:
    path: str
    http_method: str
    owner: str


@dataclass(frozen=True)
class RoutePlan:
    actions: tuple[Action, ...] = ()
    conflicts: tuple[Conflict, ...] = ()


def overlaps(a: str, b: str) -> bool:
    return a == b or a == ANY or b == ANY


def find_conflicts(route_id: str, desired: list[MethodSpec], observed: ObservedApi) -> list[Conflict]:
    conflicts = []
    for spec in desired:
        resource = observed.resources.get(spec.path)
        if resource is None:
            continue
        for method in resource.methods.values():
            owner = method.owner
            if owner not in (None, route_id) and overlaps(method.http_method, spec.http_method):
                conflicts.append(Conflict(spec.path, method.http_method, owner))
    return conflicts


def plan_route(
    route_id: str,
    desired: list[MethodSpec],
    observed: ObservedApi,
    *,
    ignore_owners: frozenset[str] = frozenset(),
) -> RoutePlan:
    """Ordered actions that make API Gateway serve exactly ``desired`` for ``route_id``.

    Make before break: resources and methods are added first, stale methods removed after,
    and resources left empty are removed last, deepest first. A method held by another
    route (not in ``ignore_owners``) is a conflict and yields no actions.
    """
    conflicts = [c for c in find_conflicts(route_id, desired, observed)
                 if c.owner not in ignore_owners]
    if conflicts:
        return RoutePlan(conflicts=tuple(conflicts))

    actions: list[Action] = []
    existing_paths = set(observed.resources)
    for spec in desired:
        for path in ancestors(spec.path):
            if path not in existing_paths:
                actions.append(CreateResource(path))
                existing_paths.add(path)

    wanted = {(s.path, s.http_method) for s in desired}
    for spec in desired:
        resource = observed.resources.get(spec.path)
        current = resource.methods.get(spec.http_method) if resource else None
        if current is None:
            actions.append(PutMethod(spec))
        elif not current.method_matches(spec):
            actions.append(ReplaceMethod(spec))
        elif current.integration is None or not current.integration.matches(spec.integration):
            actions.append(PutIntegration(spec))

    # Stale methods: ours but no longer wanted, and other owners' methods we take over.
    removed: list[tuple[str, str]] = []
    for resource in observed.resources.values():
        for method in resource.methods.values():
            key = (resource.path, method.http_method)
            if key in wanted:
                continue
            stale_own = method.owner == route_id
            taken_over = (method.owner in ignore_owners and resource.path in {s.path for s in desired}
                          and any(overlaps(method.http_method, s.http_method) for s in desired))
            if stale_own or taken_over:
                actions.append(DeleteMethod(resource.path, method.http_method))
                removed.append(key)

    actions.extend(_empty_resources_after(observed, removed, wanted))
    return RoutePlan(actions=tuple(actions))


def _empty_resources_after(
    observed: ObservedApi, removed: list[tuple[str, str]], wanted: set[tuple[str, str]]
) -> list[Action]:
    if not removed:
        return []
    removed_set = set(removed)
    wanted_paths = {p for p, _ in wanted}
    kept_paths = set(wanted_paths)
    for path in wanted_paths:
        kept_paths.update(ancestors(path))

    def remaining_methods(path: str) -> int:
        resource = observed.resources[path]
        return sum(1 for m in resource.methods if (path, m) not in removed_set)

    deleted: set[str] = set()
    candidates = sorted({p for p, _ in removed}, key=lambda p: -p.count("/"))
    queue = list(candidates)
    actions: list[Action] = []
    while queue:
        path = queue.pop(0)
        if path == "/" or path in deleted or path in kept_paths or path not in observed.resources:
            continue
        live_children = [c for c in observed.children(path) if c.path not in deleted]
        if remaining_methods(path) == 0 and not live_children:
            actions.append(DeleteResource(path))
            deleted.add(path)
            queue.append(parent_path(path))
    return actions


def plan_sweep(observed: ObservedApi, live_route_ids: set[str]) -> RoutePlan:
    """Remove what no live route owns: methods of gone or unknown owners (made by hand or left
    by a lost event), then resources left with no method and no child, deepest first.

    The reconciler owns every resource and method of turnout's API, so anything else is drift.
    """
    actions: list[Action] = []
    removed: set[tuple[str, str]] = set()
    for resource in sorted(observed.resources.values(), key=lambda r: r.path):
        for method in sorted(resource.methods.values(), key=lambda m: m.http_method):
            if method.owner not in live_route_ids:
                actions.append(DeleteMethod(resource.path, method.http_method))
                removed.add((resource.path, method.http_method))

    deleted: set[str] = set()
    for resource in sorted(observed.resources.values(), key=lambda r: -r.path.count("/")):
        path = resource.path
        if path == "/":
            continue
        methods_left = [m for m in resource.methods if (path, m) not in removed]
        children_left = [c for c in observed.children(path) if c.path not in deleted]
        if not methods_left and not children_left:
            actions.append(DeleteResource(path))
            deleted.add(path)
    return RoutePlan(actions=tuple(actions))
