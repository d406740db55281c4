"""Elastic Load Balancing adapter: observe the listener and turnout's target groups, apply
planned actions.

One observation per batch (``DescribeTargetGroups`` and ``DescribeRules``, paged, plus
``DescribeTags`` for up to 20 resources a call); the registered targets of a group are read
only when a route that owns it is reconciled (``DescribeTargetHealth``). The adapter keeps the
:class:`ObservedAlb` up to date as it applies actions, so later routes of the batch plan
against what is really there. Every botocore failure leaves through
:func:`control_plane.adapters.aws_errors.translate`; deleting what is already gone is success.

A target that is draining (being deregistered) no longer counts as registered. An IP target
outside the ALB's VPC (a peered VPC, or on premises) is registered with ``AvailabilityZone``
``all``, as ELB requires; the VPC's CIDR blocks are read once (``ec2:DescribeVpcs``). Against the
local emulator, ``ip`` targets on two ports of one address need the local cloud's patch 6
(moto otherwise keeps one port per address).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Sequence

from botocore.exceptions import BotoCoreError, ClientError

from control_plane.adapters.aws_errors import error_code, translate
from control_plane.errors import TransientError
from control_plane.plan.elb import (
    ROUTE_TAG,
    TARGET_GROUP_PREFIX,
    TARGET_PROTOCOL,
    TARGET_TYPE,
    UPSTREAM_TAG,
    AlbAction,
    CreateRule,
    CreateTargetGroup,
    DeleteRule,
    DeleteTargetGroup,
    DeregisterTargets,
    HealthCheckSettings,
    ModifyHealthCheck,
    ModifyRule,
    ObservedAlb,
    ObservedRule,
    ObservedTargetGroup,
    RegisterTargets,
    TagRule,
    TagTargetGroup,
    Target,
    allocate_priority,
    route_condition,
)

LOG = logging.getLogger("turnout.elb")
TAGS_PER_CALL = 20
NOT_REGISTERED_STATES = frozenset({"draining", "unhealthy.draining"})
_GONE = frozenset({"TargetGroupNotFound", "RuleNotFound", "InvalidTarget"})


def _health(raw: dict) -> HealthCheckSettings:
    return HealthCheckSettings(
        path=raw.get("HealthCheckPath") or "/",
        interval_seconds=int(raw.get("HealthCheckIntervalSeconds") or 30),
        timeout_seconds=int(raw.get("HealthCheckTimeoutSeconds") or 5),
        healthy_threshold=int(raw.get("HealthyThresholdCount") or 5),
        unhealthy_threshold=int(raw.get("UnhealthyThresholdCount") or 2),
        matcher=str((raw.get("Matcher") or {}).get("HttpCode") or "200"),
    )


def _health_request(health: HealthCheckSettings) -> dict:
    return {
        "HealthCheckProtocol": TARGET_PROTOCOL,
        "HealthCheckPort": "traffic-port",
        "HealthCheckEnabled": True,
        "HealthCheckPath": health.path,
        "HealthCheckIntervalSeconds": health.interval_seconds,
        "HealthCheckTimeoutSeconds": health.timeout_seconds,
        "HealthyThresholdCount": health.healthy_threshold,
        "UnhealthyThresholdCount": health.unhealthy_threshold,
        "Matcher": {"HttpCode": health.matcher},
    }


def _forward(raw_actions: Sequence[dict]) -> tuple[dict[str, int], bool]:
    """(target group ARN -> weight, whether there is anything but one forward action)."""
    forwards = [a for a in raw_actions if a.get("Type") == "forward"]
    other = len(raw_actions) != 1 or len(forwards) != 1
    if not forwards:
        return {}, True
    action = forwards[0]
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
    if groups:
        return {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}, other
    if action.get("TargetGroupArn"):
        return {action["TargetGroupArn"]: 1}, other
    return {}, True


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class ElbAdapter:
    """The stack's ALB listener and the ``tt-*`` target groups in its VPC."""

    def __init__(self, client, *, listener_arn: str, vpc_id: str, ec2=None) -> None:
        self.client = client
        self.listener_arn = listener_arn
        self.vpc_id = vpc_id
        self.ec2 = ec2
        self._vpc_networks: list | None = None

    # ---- observe --------------------------------------------------------------------

    def observe(self) -> ObservedAlb:
        try:
            groups = self._target_groups()
            rules = self._rules()
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action="observe ALB") from exc
        return ObservedAlb(target_groups=groups, rules=rules)

    def _target_groups(self) -> dict[str, ObservedTargetGroup]:
        found: dict[str, ObservedTargetGroup] = {}
        for page in self.client.get_paginator("describe_target_groups").paginate(
                PaginationConfig={"PageSize": 400}):
            for raw in page.get("TargetGroups", []):
                if raw["TargetGroupName"].startswith(TARGET_GROUP_PREFIX):
                    found[raw["TargetGroupName"]] = ObservedTargetGroup(
                        arn=raw["TargetGroupArn"], name=raw["TargetGroupName"],
                        route_id=None, upstream=None, health=_health(raw))
        tags = self._tags([g.arn for g in found.values()])
        for group in found.values():
            group.route_id = tags.get(group.arn, {}).get(ROUTE_TAG)
            group.upstream = tags.get(group.arn, {}).get(UPSTREAM_TAG)
        return found

    def _rules(self) -> list[ObservedRule]:
        rules: list[ObservedRule] = []
        for page in self.client.get_paginator("describe_rules").paginate(
                ListenerArn=self.listener_arn, PaginationConfig={"PageSize": 400}):
            for raw in page.get("Rules", []):
                if raw.get("IsDefault") or raw.get("Priority") == "default":
                    continue
                forward, other = _forward(raw.get("Actions") or [])
                rules.append(ObservedRule(arn=raw["RuleArn"], priority=int(raw["Priority"]),
                                          conditions=list(raw.get("Conditions") or []),
                                          forward=forward, other_actions=other))
        tags = self._tags([r.arn for r in rules])
        for rule in rules:
            rule.tagged_route = tags.get(rule.arn, {}).get(ROUTE_TAG)
        return rules

    def _tags(self, arns: Sequence[str]) -> dict[str, dict[str, str]]:
        tags: dict[str, dict[str, str]] = {}
        for chunk in _chunks(list(arns), TAGS_PER_CALL):
            for described in self.client.describe_tags(ResourceArns=list(chunk))["TagDescriptions"]:
                tags[described["ResourceArn"]] = {t["Key"]: t.get("Value", "")
                                                  for t in described.get("Tags") or []}
        return tags

    def load_targets(self, group: ObservedTargetGroup) -> frozenset[Target]:
        """Read (once) the targets registered in ``group``."""
        if group.targets is None:
            try:
                raw = self.client.describe_target_health(TargetGroupArn=group.arn)
            except ClientError as exc:
                if error_code(exc) != "TargetGroupNotFound":
                    raise translate(exc, action="DescribeTargetHealth") from exc
                raw = {}
            except BotoCoreError as exc:
                raise translate(exc, action="DescribeTargetHealth") from exc
            group.targets = frozenset(
                (d["Target"]["Id"], int(d["Target"]["Port"]))
                for d in raw.get("TargetHealthDescriptions", [])
                if (d.get("TargetHealth") or {}).get("State") not in NOT_REGISTERED_STATES
            )
        return group.targets

    # ---- apply ----------------------------------------------------------------------

    def apply(self, actions: Sequence[AlbAction], observed: ObservedAlb) -> None:
        for action in actions:
            try:
                self._apply_one(action, observed)
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, action=type(action).__name__) from exc

    def _apply_one(self, action: AlbAction, observed: ObservedAlb) -> None:
        if isinstance(action, CreateTargetGroup):
            self._create_target_group(action, observed)
        elif isinstance(action, ModifyHealthCheck):
            group = observed.target_groups[action.name]
            self.client.modify_target_group(TargetGroupArn=group.arn,
                                            **_health_request(action.health))
            group.health = action.health
        elif isinstance(action, TagTargetGroup):
            group = observed.target_groups[action.name]
            self.client.add_tags(ResourceArns=[group.arn],
                                 Tags=[{"Key": k, "Value": v} for k, v in action.tags])
            tags = dict(action.tags)
            group.route_id, group.upstream = tags.get(ROUTE_TAG), tags.get(UPSTREAM_TAG)
        elif isinstance(action, RegisterTargets):
            group = observed.target_groups[action.name]
            self.client.register_targets(TargetGroupArn=group.arn,
                                         Targets=self._descriptions(action.targets))
            group.targets = (group.targets or frozenset()) | frozenset(action.targets)
        elif isinstance(action, DeregisterTargets):
            group = observed.target_groups[action.name]
            self._ignore_gone(lambda: self.client.deregister_targets(
                TargetGroupArn=group.arn, Targets=self._descriptions(action.targets)))
            group.targets = (group.targets or frozenset()) - frozenset(action.targets)
        elif isinstance(action, CreateRule):
            self._create_rule(action, observed)
        elif isinstance(action, ModifyRule):
            self._modify_rule(action, observed)
        elif isinstance(action, TagRule):
            self.client.add_tags(ResourceArns=[action.arn],
                                 Tags=[{"Key": ROUTE_TAG, "Value": action.route_id}])
            for rule in observed.rules:
                if rule.arn == action.arn:
                    rule.tagged_route = action.route_id
        elif isinstance(action, DeleteRule):
            self._ignore_gone(lambda: self.client.delete_rule(RuleArn=action.arn))
            observed.rules = [r for r in observed.rules if r.arn != action.arn]
        elif isinstance(action, DeleteTargetGroup):
            self._delete_target_group(action, observed)
        else:  # pragma: no cover - exhaustive over AlbAction
            raise TypeError(f"unknown action {action!r}")

    def _descriptions(self, targets: Sequence[Target]) -> list[dict]:
        """ELB target descriptions; ``AvailabilityZone: all`` for IPs outside the VPC."""
        networks = self._networks()
        out = []
        for ip, port in targets:
            description: dict = {"Id": ip, "Port": port}
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                address = None
            if networks is not None and address is not None and not any(
                    address.version == n.version and address in n for n in networks):
                description["AvailabilityZone"] = "all"
            out.append(description)
        return out

    def _networks(self) -> list | None:
        """The VPC's CIDR blocks (None when unknown: no EC2 client)."""
        if self._vpc_networks is None and self.ec2 is not None:
            [vpc] = self.ec2.describe_vpcs(VpcIds=[self.vpc_id])["Vpcs"]
            blocks = [vpc.get("CidrBlock")] + [
                a.get("CidrBlock") for a in vpc.get("CidrBlockAssociationSet") or []] + [
                a.get("Ipv6CidrBlock") for a in vpc.get("Ipv6CidrBlockAssociationSet") or []]
            self._vpc_networks = sorted({ipaddress.ip_network(b) for b in blocks if b},
                                        key=str)
        return self._vpc_networks

    def _create_target_group(self, action: CreateTargetGroup, observed: ObservedAlb) -> None:
        spec = action.spec
        try:
            raw = self.client.create_target_group(
                Name=spec.name, Protocol=TARGET_PROTOCOL, Port=spec.port, VpcId=self.vpc_id,
                TargetType=TARGET_TYPE, **_health_request(spec.health),
                Tags=[{"Key": k, "Value": v} for k, v in sorted(spec.tags.items())],
            )["TargetGroups"][0]
        except ClientError as exc:
            if error_code(exc) != "DuplicateTargetGroupName":
                raise
            # Made meanwhile by another writer: the next run observes and adopts it.
            raise TransientError(f"CreateTargetGroup: {spec.name} appeared meanwhile",
                                 reason="DuplicateTargetGroupName") from exc
        observed.target_groups[spec.name] = ObservedTargetGroup(
            arn=raw["TargetGroupArn"], name=spec.name, route_id=spec.route_id,
            upstream=spec.upstream, health=spec.health, targets=frozenset())

    def _forward_request(self, forward: Sequence[tuple[str, int]],
                         observed: ObservedAlb) -> list[dict]:
        groups = [{"TargetGroupArn": observed.target_groups[name].arn, "Weight": weight}
                  for name, weight in forward]
        return [{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}]

    def _observed_forward(self, forward: Sequence[tuple[str, int]],
                          observed: ObservedAlb) -> dict[str, int]:
        return {observed.target_groups[name].arn: weight for name, weight in forward}

    def _create_rule(self, action: CreateRule, observed: ObservedAlb) -> None:
        actions = self._forward_request(action.forward, observed)
        for attempt in (1, 2):
            priority = allocate_priority(action.route_id, observed.used_priorities())
            try:
                raw = self.client.create_rule(
                    ListenerArn=self.listener_arn, Priority=priority,
                    Conditions=route_condition(action.route_id), Actions=actions,
                    Tags=[{"Key": ROUTE_TAG, "Value": action.route_id}],
                )["Rules"][0]
            except ClientError as exc:
                if error_code(exc) != "PriorityInUse":
                    raise
                # A rule appeared meanwhile (made by hand, or by another writer): look again.
                fresh = self._rules()
                observed.rules = fresh
                if attempt == 2 or observed.rules_of(action.route_id):
                    raise TransientError(f"CreateRule: priority {priority} was taken meanwhile",
                                         reason="PriorityInUse") from exc
                continue
            observed.rules.append(ObservedRule(
                arn=raw["RuleArn"], priority=priority, conditions=route_condition(action.route_id),
                forward=self._observed_forward(action.forward, observed),
                tagged_route=action.route_id))
            return

    def _modify_rule(self, action: ModifyRule, observed: ObservedAlb) -> None:
        kwargs: dict = {"RuleArn": action.arn}
        if action.forward is not None:
            kwargs["Actions"] = self._forward_request(action.forward, observed)
        if action.conditions:
            kwargs["Conditions"] = route_condition(action.route_id)
        self.client.modify_rule(**kwargs)
        for rule in observed.rules:
            if rule.arn == action.arn:
                if action.forward is not None:
                    rule.forward = self._observed_forward(action.forward, observed)
                    rule.other_actions = False
                if action.conditions:
                    rule.conditions = route_condition(action.route_id)

    def _delete_target_group(self, action: DeleteTargetGroup, observed: ObservedAlb) -> None:
        group = observed.target_groups.get(action.name)
        if group is None:
            return
        try:
            self.client.delete_target_group(TargetGroupArn=group.arn)
        except ClientError as exc:
            code = error_code(exc)
            if code == "ResourceInUse":
                # Still used by a rule turnout does not own: leave it for a later sweep.
                LOG.warning("target group %s is still in use by a rule; not deleted", group.name)
                return
            if code not in _GONE:
                raise
        del observed.target_groups[action.name]

    @staticmethod
    def _ignore_gone(call) -> None:
        try:
            call()
        except ClientError as exc:
            if error_code(exc) not in _GONE:
                raise
