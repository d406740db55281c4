"""What a route's ``targets`` upstreams become on the internal ALB, and the pure plan there.

A route whose upstreams are in-VPC ``targets`` becomes, on the stack's ALB listener:

- one target group per upstream: type ``ip``, protocol ``HTTP``, named
  :func:`target_group_name` (``tt-`` and a digest of route, upstream and VPC: deterministic,
  within ELB's 32 characters) and tagged ``turnout:route`` / ``turnout:upstream``; the route's
  ``health_check`` becomes the group's health check (:func:`health_check_of`); the upstream's
  targets are registered, and no others;
- one listener rule matching the header ``X-Turnout-Route: <route_id>`` (which the route's
  API Gateway integration adds) and forwarding to the route's target groups with weights:
  the active priority group's upstreams get their ``weight``, every other upstream 0
  (:func:`forward_weights`; failover changes only these weights). The rule's priority is
  :func:`allocate_priority`, kept for as long as the rule exists.

Nothing here does I/O. :func:`plan_route_alb` compares the desired :class:`RouteAlbSpec`
with the :class:`ObservedAlb` and returns ordered actions, an empty tuple when the ALB
already matches. Make before break: target groups and their new targets first, then the
rule that points at them, then stale targets, stale rules and, last, stale target groups.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from control_plane.errors import InvalidRouteError, PermanentError, Problem
from control_plane.plan.apigateway import ROUTE_HEADER

TARGET_GROUP_PREFIX = "tt-"
ROUTE_TAG = "turnout:route"
UPSTREAM_TAG = "turnout:upstream"
MAX_PRIORITY = 50000
MAX_FORWARD_TARGET_GROUPS = 5
TARGET_PROTOCOL = "HTTP"
TARGET_TYPE = "ip"

Target = tuple[str, int]
"""An ``(ip, port)`` pair."""


class UpstreamLike(Protocol):
    name: str
    priority: int
    weight: int


def target_group_name(route_id: str, upstream: str, vpc_id: str) -> str:
    """``tt-`` + 24 hex digits: unique per route, upstream and VPC (ELB allows 32 characters).

    The VPC is part of the name because a target group cannot move between VPCs: a new VPC
    gets new groups, made before the old ones are removed.
    """
    digest = hashlib.sha256(f"{route_id}\0{upstream}\0{vpc_id}".encode()).hexdigest()
    return TARGET_GROUP_PREFIX + digest[:24]


def allocate_priority(route_id: str, used: Iterable[int]) -> int:
    """The rule priority for a route that has no rule yet: derived from the route id, then
    the next free one (wrapping at 50000), so it never collides with a priority in ``used``.
    """
    taken = set(used)
    start = int(hashlib.sha256(route_id.encode()).hexdigest()[:8], 16) % MAX_PRIORITY + 1
    priority = start
    while priority in taken:
        priority = priority % MAX_PRIORITY + 1
        if priority == start:
            raise PermanentError("the ALB listener has no free rule priority",
                                 reason="ListenerFull")
    return priority


def forward_weights(upstreams: Sequence[UpstreamLike], active_priority: int) -> dict[str, int]:
    """Per upstream name, its weight in the rule when ``active_priority`` serves the traffic.

    The upstreams of the active priority share the traffic by ``weight``; all others get 0
    and stay in the rule, so a failover is one change of weights.
    """
    return {u.name: (u.weight if u.priority == active_priority else 0) for u in upstreams}


def active_priority(upstreams: Sequence[UpstreamLike], weights: Mapping[str, int]) -> int:
    """The priority serving traffic under ``weights`` (upstream name -> weight in the rule).

    The best priority with a weighted upstream; the primary's when none is weighted (no rule
    yet, or the rule names none of these upstreams).
    """
    weighted = [u.priority for u in upstreams if weights.get(u.name, 0) > 0]
    if weighted:
        return min(weighted)
    return min(u.priority for u in upstreams)


# ---- desired ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HealthCheckSettings:
    """A target group's health check, in the ALB's terms."""

    path: str
    interval_seconds: int
    timeout_seconds: int
    healthy_threshold: int
    unhealthy_threshold: int
    matcher: str

    def normalized(self) -> HealthCheckSettings:
        codes = sorted(c.strip() for c in self.matcher.split(",") if c.strip())
        return HealthCheckSettings(self.path, int(self.interval_seconds), int(self.timeout_seconds),
                                   int(self.healthy_threshold), int(self.unhealthy_threshold),
                                   ",".join(codes))


def health_check_of(route) -> HealthCheckSettings:
    """The route's ``health_check`` as ALB settings (validation keeps it in the ALB's ranges)."""
    check = route.health_check
    return HealthCheckSettings(
        path=check.path,
        interval_seconds=check.interval_seconds,
        timeout_seconds=max(1, check.timeout_ms // 1000),
        healthy_threshold=check.healthy_threshold,
        unhealthy_threshold=check.unhealthy_threshold,
        matcher=",".join(str(s) for s in sorted(set(check.expected_statuses))),
    )


@dataclass(frozen=True)
class TargetGroupSpec:
    name: str
    route_id: str
    upstream: str
    port: int
    health: HealthCheckSettings
    targets: frozenset[Target]

    @property
    def tags(self) -> dict[str, str]:
        return {ROUTE_TAG: self.route_id, UPSTREAM_TAG: self.upstream}


@dataclass(frozen=True)
class RuleSpec:
    route_id: str
    forward: tuple[tuple[str, int], ...]
    """(target group name, weight), in upstream order."""


@dataclass(frozen=True)
class RouteAlbSpec:
    route_id: str
    target_groups: tuple[TargetGroupSpec, ...]
    rule: RuleSpec


def desired_alb(route, *, vpc_id: str, observed: ObservedAlb | None = None) -> RouteAlbSpec | None:
    """What ``route`` needs on the ALB (None when it has no ``targets`` upstreams).

    The active priority is read from the route's current rule in ``observed`` (a failover
    changes only the rule's weights, and a reconcile must not undo it), else the primary's.
    """
    upstreams = [u for u in route.upstreams if u.targets is not None]
    if not upstreams:
        return None
    if len(upstreams) > MAX_FORWARD_TARGET_GROUPS:
        raise InvalidRouteError([Problem(
            "upstreams", "TooManyTargetUpstreams",
            f"an ALB rule forwards to at most {MAX_FORWARD_TARGET_GROUPS} target groups; "
            f"this route has {len(upstreams)} targets upstreams")], route_id=route.route_id)
    health = health_check_of(route)
    groups = tuple(
        TargetGroupSpec(
            name=target_group_name(route.route_id, u.name, vpc_id),
            route_id=route.route_id,
            upstream=u.name,
            port=u.targets[0].port,
            health=health,
            targets=frozenset((t.ip, t.port) for t in u.targets),
        )
        for u in upstreams
    )
    current = observed.rule_weights_by_upstream(route.route_id) if observed else {}
    weights = forward_weights(upstreams, active_priority(upstreams, current))
    rule = RuleSpec(route.route_id, tuple((g.name, weights[g.upstream]) for g in groups))
    return RouteAlbSpec(route.route_id, groups, rule)


def route_condition(route_id: str) -> list[dict]:
    """The listener rule's conditions for ``route_id`` (ELB's request shape)."""
    return [{"Field": "http-header",
             "HttpHeaderConfig": {"HttpHeaderName": ROUTE_HEADER, "Values": [route_id]}}]


# ---- observed -----------------------------------------------------------------------------


@dataclass
class ObservedTargetGroup:
    arn: str
    name: str
    route_id: str | None
    upstream: str | None
    health: HealthCheckSettings
    targets: frozenset[Target] | None = None  # None: not read yet

    def matches_tags(self, spec: TargetGroupSpec) -> bool:
        return self.route_id == spec.route_id and self.upstream == spec.upstream


@dataclass
class ObservedRule:
    arn: str
    priority: int
    conditions: list[dict]
    forward: dict[str, int]  # target group ARN -> weight
    tagged_route: str | None = None
    other_actions: bool = False

    @property
    def route_id(self) -> str | None:
        """The route this rule serves: its header condition's value, else its tag."""
        value = header_condition_value(self.conditions)
        return value if value is not None else self.tagged_route

    def has_route_condition(self, route_id: str) -> bool:
        return header_condition_value(self.conditions) == route_id and len(self.conditions) == 1


def header_condition_value(conditions: Sequence[Mapping]) -> str | None:
    """The single value of an ``X-Turnout-Route`` header condition, if there is one."""
    for condition in conditions:
        if condition.get("Field") != "http-header":
            continue
        config = condition.get("HttpHeaderConfig") or {}
        if str(config.get("HttpHeaderName", "")).lower() != ROUTE_HEADER.lower():
            continue
        values = list(config.get("Values") or [])
        if len(values) == 1:
            return str(values[0])
    return None


@dataclass
class ObservedAlb:
    """The listener's rules and turnout's target groups (``tt-*``), as read at batch start."""

    target_groups: dict[str, ObservedTargetGroup] = field(default_factory=dict)  # by name
    rules: list[ObservedRule] = field(default_factory=list)

    def by_arn(self, arn: str) -> ObservedTargetGroup | None:
        return next((g for g in self.target_groups.values() if g.arn == arn), None)

    def rules_of(self, route_id: str) -> list[ObservedRule]:
        """The route's rules, the one to keep first (exact condition, then lowest priority)."""
        found = [r for r in self.rules if r.route_id == route_id]
        return sorted(found, key=lambda r: (not r.has_route_condition(route_id), r.priority))

    def groups_of(self, route_id: str) -> list[ObservedTargetGroup]:
        return [g for g in self.target_groups.values() if g.route_id == route_id]

    def owners(self) -> set[str]:
        """Every route id that owns a rule or a target group here."""
        owners = {g.route_id for g in self.target_groups.values() if g.route_id}
        owners.update(r.route_id for r in self.rules if r.route_id)
        return owners

    def used_priorities(self) -> set[int]:
        return {r.priority for r in self.rules}

    def rule_weights_by_upstream(self, route_id: str) -> dict[str, int]:
        """Upstream name -> weight in the route's current rule (empty when it has none)."""
        rules = self.rules_of(route_id)
        if not rules:
            return {}
        weights: dict[str, int] = {}
        for arn, weight in rules[0].forward.items():
            group = self.by_arn(arn)
            if group is not None and group.route_id == route_id and group.upstream:
                weights[group.upstream] = weight
        return weights


# ---- actions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateTargetGroup:
    spec: TargetGroupSpec


@dataclass(frozen=True)
class ModifyHealthCheck:
    name: str
    health: HealthCheckSettings


@dataclass(frozen=True)
class TagTargetGroup:
    name: str
    tags: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RegisterTargets:
    name: str
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class DeregisterTargets:
    name: str
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class CreateRule:
    route_id: str
    forward: tuple[tuple[str, int], ...]  # by target group name


@dataclass(frozen=True)
class ModifyRule:
    arn: str
    route_id: str
    forward: tuple[tuple[str, int], ...] | None  # None: keep the actions
    conditions: bool  # rewrite the conditions


@dataclass(frozen=True)
class TagRule:
    arn: str
    route_id: str


@dataclass(frozen=True)
class DeleteRule:
    arn: str


@dataclass(frozen=True)
class DeleteTargetGroup:
    name: str


AlbAction = (CreateTargetGroup | ModifyHealthCheck | TagTargetGroup | RegisterTargets
             | DeregisterTargets | CreateRule | ModifyRule | TagRule | DeleteRule
             | DeleteTargetGroup)


def plan_route_alb(route_id: str, desired: RouteAlbSpec | None,
                   observed: ObservedAlb) -> tuple[AlbAction, ...]:
    """Ordered actions that make the ALB hold exactly ``desired`` for ``route_id``.

    ``desired`` None removes the route's rule and target groups. The targets of every
    desired group that exists must have been read into ``observed`` (``targets`` not None).
    """
    early: list[AlbAction] = []
    late: list[AlbAction] = []
    wanted = {g.name for g in desired.target_groups} if desired else set()
    for spec in desired.target_groups if desired else ():
        current = observed.target_groups.get(spec.name)
        if current is None:
            early.append(CreateTargetGroup(spec))
            if spec.targets:
                early.append(RegisterTargets(spec.name, tuple(sorted(spec.targets))))
            continue
        if current.health.normalized() != spec.health.normalized():
            early.append(ModifyHealthCheck(spec.name, spec.health))
        if not current.matches_tags(spec):
            early.append(TagTargetGroup(spec.name, tuple(sorted(spec.tags.items()))))
        registered = current.targets or frozenset()
        if spec.targets - registered:
            early.append(RegisterTargets(spec.name, tuple(sorted(spec.targets - registered))))
        if registered - spec.targets:
            late.append(DeregisterTargets(spec.name, tuple(sorted(registered - spec.targets))))

    rules = observed.rules_of(route_id)
    keep = rules[0] if rules and desired else None
    middle: list[AlbAction] = []
    if desired and keep is None:
        middle.append(CreateRule(route_id, desired.rule.forward))
    elif desired and keep is not None:
        forward_changed = _forward_differs(keep, desired.rule, observed)
        conditions_changed = not keep.has_route_condition(route_id)
        if forward_changed or conditions_changed:
            middle.append(ModifyRule(keep.arn, route_id,
                                     desired.rule.forward if forward_changed else None,
                                     conditions_changed))
        if keep.tagged_route != route_id:
            middle.append(TagRule(keep.arn, route_id))
    stale_rules = [DeleteRule(r.arn) for r in rules if r is not keep]
    stale_groups = [DeleteTargetGroup(g.name) for g in observed.groups_of(route_id)
                    if g.name not in wanted]
    return tuple(early + middle + late + stale_rules + stale_groups)


def _forward_differs(rule: ObservedRule, spec: RuleSpec, observed: ObservedAlb) -> bool:
    if rule.other_actions:
        return True
    wanted: dict[str, int] = {}
    for name, weight in spec.forward:
        group = observed.target_groups.get(name)
        if group is None:
            return True  # the group is about to be created: the rule must point at it
        wanted[group.arn] = weight
    return rule.forward != wanted
