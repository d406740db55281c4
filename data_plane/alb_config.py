"""What the local gateway's ALB serves: the listeners behind the stage's VPC-link integrations.

API Gateway reaches an internal ALB through a VPC link; the integration URI's host is the
ALB's DNS name and its port (80 for ``http``) the listener's. :func:`load_alb_config` reads,
for the ALBs those URIs name, as part of each configuration snapshot (never per request):

- ``DescribeLoadBalancers`` (to find them by DNS name) and their tags, ``DescribeListeners``
  and ``DescribeRules`` (conditions, forward weights, fixed responses);
- per target group the rules forward to: its tags (``turnout:route`` / ``turnout:upstream``)
  and its registered targets (``DescribeTargetHealth``; draining targets no longer count);
- target health as turnout's prober reports it (:mod:`control_plane.model.health`), from the
  table named by the ALB's ``turnout:health-table`` tag: one ``Query`` per route. The
  emulator's own target health (always ``healthy``) is not used. Without a health item a
  target counts as healthy.

A stage without VPC-link integrations costs no call. Targets outside the addresses an ALB
accepts (private ranges; loopback too, since the local gateway's targets run on this machine)
are left out and reported in ``problems``. Errors propagate as botocore exceptions; the
caller keeps its last good snapshot.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from control_plane.model import egress
from control_plane.model.health import HEALTH_KIND_PREFIX, UpstreamHealth
from control_plane.model.item import from_item

LOG = logging.getLogger("turnout.gateway.config")

HEALTH_TABLE_TAG = "turnout:health-table"
ROUTE_TAG = "turnout:route"
UPSTREAM_TAG = "turnout:upstream"
TAGS_PER_CALL = 20
NOT_REGISTERED_STATES = frozenset({"draining", "unhealthy.draining"})
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class AlbTarget:
    ip: str
    port: int
    healthy: bool = True


@dataclass(frozen=True)
class AlbTargetGroup:
    arn: str
    targets: tuple[AlbTarget, ...] = ()
    route_id: str | None = None
    upstream: str | None = None


@dataclass(frozen=True)
class Forward:
    """Weighted target groups (weight 0 receives nothing)."""

    groups: tuple[tuple[AlbTargetGroup, int], ...]


@dataclass(frozen=True)
class FixedResponse:
    status: int
    content_type: str = "text/plain"
    body: str = ""


@dataclass(frozen=True)
class UnsupportedAction:
    type: str


AlbAction = Forward | FixedResponse | UnsupportedAction


@dataclass(frozen=True)
class Condition:
    """One rule condition: ``field`` is ELB's (``http-header``, ``path-pattern``,
    ``host-header``, ``http-request-method``, ...); ``header_name`` only for ``http-header``."""

    field: str
    values: tuple[str, ...]
    header_name: str | None = None


@dataclass(frozen=True)
class AlbRule:
    priority: int
    conditions: tuple[Condition, ...]
    action: AlbAction


@dataclass(frozen=True)
class AlbListener:
    port: int
    rules: tuple[AlbRule, ...]  # by ascending priority
    default_action: AlbAction


@dataclass(frozen=True)
class AlbConfig:
    """The listeners the stage's VPC-link integrations reach, by (ALB DNS name, port)."""

    listeners: Mapping[tuple[str, int], AlbListener] = field(
        default_factory=lambda: MappingProxyType({}))
    problems: tuple[str, ...] = ()

    def listener(self, host: str, port: int) -> AlbListener | None:
        return self.listeners.get((host.lower(), port))


def load_alb_config(client: Any, *, resources: Iterable[Mapping[str, Any]]) -> AlbConfig:
    """The ALB configuration for the VPC-link integrations among ``resources``.

    ``client`` is the snapshot's ``apigateway`` client; the ELB and DynamoDB clients are made
    for the same endpoint and region. ``resources`` are ``GetResources`` items with methods.
    """
    wanted = _integration_listeners(resources)
    if not wanted:
        return AlbConfig()
    elbv2 = _client(client, "elbv2")
    problems: list[str] = []
    listeners: dict[tuple[str, int], AlbListener] = {}
    balancers = [lb for page in elbv2.get_paginator("describe_load_balancers").paginate()
                 for lb in page.get("LoadBalancers", [])
                 if str(lb.get("DNSName", "")).lower() in {host for host, _ in wanted}]
    for balancer in balancers:
        host = balancer["DNSName"].lower()
        [described] = elbv2.describe_tags(ResourceArns=[balancer["LoadBalancerArn"]])[
            "TagDescriptions"]
        table = {t["Key"]: t.get("Value") for t in described.get("Tags") or []}.get(
            HEALTH_TABLE_TAG)
        raw_listeners = [
            raw for page in elbv2.get_paginator("describe_listeners").paginate(
                LoadBalancerArn=balancer["LoadBalancerArn"])
            for raw in page.get("Listeners", []) if (host, int(raw["Port"])) in wanted]
        raw_rules = {
            raw["ListenerArn"]: [rule for page in elbv2.get_paginator("describe_rules").paginate(
                ListenerArn=raw["ListenerArn"]) for rule in page.get("Rules", [])]
            for raw in raw_listeners}
        groups = _target_groups(client, elbv2, raw_listeners, raw_rules, table, problems)
        for raw in raw_listeners:
            listeners[(host, int(raw["Port"]))] = _listener(raw, raw_rules[raw["ListenerArn"]],
                                                            groups)
    for host, port in sorted(wanted - set(listeners)):
        problems.append(f"no ALB listener at {host}:{port} for a VPC-link integration")
    return AlbConfig(listeners=MappingProxyType(listeners), problems=tuple(problems))


def _integration_listeners(resources: Iterable[Mapping[str, Any]]) -> set[tuple[str, int]]:
    wanted: set[tuple[str, int]] = set()
    for resource in resources:
        for method in (resource.get("resourceMethods") or {}).values():
            integration = method.get("methodIntegration") or {}
            if integration.get("connectionType") != "VPC_LINK":
                continue
            try:
                parts = urlsplit(integration.get("uri") or "")
                port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
            except ValueError:
                continue
            if parts.hostname and port:
                wanted.add((parts.hostname.lower(), port))
    return wanted


def _target_groups(client: Any, elbv2: Any, raw_listeners: Sequence[Mapping[str, Any]],
                   raw_rules: Mapping[str, Sequence[Mapping[str, Any]]], table: str | None,
                   problems: list[str]) -> dict[str, AlbTargetGroup]:
    arns = sorted({arn
                   for raw in raw_listeners
                   for actions in [raw.get("DefaultActions") or []] + [
                       r.get("Actions") or [] for r in raw_rules[raw["ListenerArn"]]]
                   for action in actions
                   for arn, _ in _forwarded(action)})
    tags: dict[str, dict[str, str]] = {}
    for start in range(0, len(arns), TAGS_PER_CALL):
        for described in elbv2.describe_tags(ResourceArns=arns[start:start + TAGS_PER_CALL])[
                "TagDescriptions"]:
            tags[described["ResourceArn"]] = {t["Key"]: t.get("Value", "")
                                              for t in described.get("Tags") or []}
    routes = sorted({t[ROUTE_TAG] for t in tags.values() if t.get(ROUTE_TAG)})
    health = _health(client, table, routes) if table else {}
    groups: dict[str, AlbTargetGroup] = {}
    for arn in arns:
        route_id, upstream = tags.get(arn, {}).get(ROUTE_TAG), tags.get(arn, {}).get(UPSTREAM_TAG)
        seen = health.get((route_id or "", upstream or ""))
        targets = []
        for raw in elbv2.describe_target_health(TargetGroupArn=arn).get(
                "TargetHealthDescriptions", []):
            if (raw.get("TargetHealth") or {}).get("State") in NOT_REGISTERED_STATES:
                continue
            ip, port = raw["Target"]["Id"], int(raw["Target"]["Port"])
            if not egress.is_loopback(ip) and egress.target_refusal(ip) is not None:
                problems.append(f"target {ip}:{port} of {arn} is not an address an ALB serves; "
                                "left out")
                continue
            targets.append(AlbTarget(ip, port, seen.is_healthy(ip, port) if seen else True))
        groups[arn] = AlbTargetGroup(arn, tuple(targets), route_id, upstream)
    return groups


def _health(client: Any, table: str, routes: Sequence[str]) -> dict[tuple[str, str],
                                                                    UpstreamHealth]:
    dynamodb = _client(client, "dynamodb")
    found: dict[tuple[str, str], UpstreamHealth] = {}
    for route_id in routes:
        try:
            pages = dynamodb.get_paginator("query").paginate(
                TableName=table,
                KeyConditionExpression="route_id = :r AND begins_with(kind, :p)",
                ExpressionAttributeValues={":r": {"S": route_id}, ":p": {"S": HEALTH_KIND_PREFIX}})
            items = [item for page in pages for item in page.get("Items", [])]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            LOG.debug("health table %s does not exist; every target counts as healthy", table)
            return {}
        for item in items:
            health = UpstreamHealth.from_item(from_item(item))
            if health is not None:
                found[(health.route_id, health.upstream)] = health
    return found


def _forwarded(action: Mapping[str, Any]) -> list[tuple[str, int]]:
    if action.get("Type") != "forward":
        return []
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
    if groups:
        return [(g["TargetGroupArn"], int(g.get("Weight", 1))) for g in groups]
    return [(action["TargetGroupArn"], 1)] if action.get("TargetGroupArn") else []


def _action(actions: Sequence[Mapping[str, Any]], groups: Mapping[str, AlbTargetGroup]) -> AlbAction:
    """The terminal action of a rule (ELB runs authenticate actions first; none are emulated)."""
    terminal = sorted(actions, key=lambda a: int(a.get("Order", 0)))[-1:] if actions else []
    if not terminal:
        return UnsupportedAction("none")
    action = terminal[0]
    if action.get("Type") == "forward":
        return Forward(tuple((groups[arn], weight) for arn, weight in _forwarded(action)
                             if arn in groups))
    if action.get("Type") == "fixed-response":
        config = action.get("FixedResponseConfig") or {}
        return FixedResponse(int(config.get("StatusCode", 200)),
                             config.get("ContentType") or "text/plain",
                             config.get("MessageBody") or "")
    return UnsupportedAction(str(action.get("Type")))


def _conditions(raw: Sequence[Mapping[str, Any]]) -> tuple[Condition, ...]:
    out = []
    for condition in raw:
        name = condition.get("Field", "")
        config_key = {"http-header": "HttpHeaderConfig", "path-pattern": "PathPatternConfig",
                      "host-header": "HostHeaderConfig",
                      "http-request-method": "HttpRequestMethodConfig"}.get(name)
        config = (condition.get(config_key) or {}) if config_key else {}
        values = tuple(config.get("Values") or condition.get("Values") or ())
        header = config.get("HttpHeaderName") if name == "http-header" else None
        out.append(Condition(name, values, header))
    return tuple(out)


def _listener(raw: Mapping[str, Any], rules: Sequence[Mapping[str, Any]],
              groups: Mapping[str, AlbTargetGroup]) -> AlbListener:
    parsed = []
    default: AlbAction = _action(raw.get("DefaultActions") or [], groups)
    for rule in rules:
        action = _action(rule.get("Actions") or [], groups)
        if rule.get("IsDefault") or rule.get("Priority") == "default":
            default = action
            continue
        parsed.append(AlbRule(int(rule["Priority"]), _conditions(rule.get("Conditions") or []),
                              action))
    return AlbListener(int(raw["Port"]), tuple(sorted(parsed, key=lambda r: r.priority)), default)


_clients: dict[tuple[str | None, str, str], Any] = {}
_clients_lock = threading.Lock()
_session: boto3.session.Session | None = None


def _client(client: Any, service: str) -> Any:
    """A ``service`` client on the endpoint and region of ``client`` (made once, from one
    shared session: a session loads the service models on first use)."""
    global _session
    endpoint = client.meta.endpoint_url
    custom = None if endpoint and ".amazonaws.com" in endpoint else endpoint
    key = (custom, client.meta.region_name, service)
    with _clients_lock:
        if _session is None:
            _session = boto3.session.Session()
        if key not in _clients:
            _clients[key] = _session.client(
                service, endpoint_url=custom, region_name=client.meta.region_name,
                config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2,
                              read_timeout=5))
        return _clients[key]
