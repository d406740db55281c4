"""Moving a route's traffic: the one AWS write a failover makes besides the state table.

- ``direct`` routes with ``url`` upstreams: one ``UpdateStage`` of the route's stage variable
  (read first; an equal value makes no call). Never ``CreateDeployment``: the integration
  URI reads the variable at request time.
- ``proxy`` routes: nothing here; the data plane reads ``active_upstream`` from the status item.
- ``targets`` routes: the listener rule's forward weights (see :class:`ListenerWeights`).
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from control_plane.adapters.aws_errors import translate
from control_plane.adapters.elb import ElbAdapter
from control_plane.errors import PermanentError
from control_plane.plan.elb import ModifyRule, forward_weights, target_group_name


class StageVariables:
    def __init__(self, client, rest_api_id: str, stage_name: str) -> None:
        self.client = client
        self.rest_api_id = rest_api_id
        self.stage_name = stage_name

    def get(self, name: str) -> str | None:
        try:
            stage = self.client.get_stage(restApiId=self.rest_api_id, stageName=self.stage_name)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action="GetStage") from exc
        return (stage.get("variables") or {}).get(name)

    def set(self, name: str, value: str) -> bool:
        """Point stage variable ``name`` at ``value``; False when it already was."""
        if self.get(name) == value:
            return False
        try:
            self.client.update_stage(
                restApiId=self.rest_api_id, stageName=self.stage_name,
                patchOperations=[{"op": "replace", "path": f"/variables/{name}", "value": value}],
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action="UpdateStage") from exc
        return True


class ListenerWeights:
    """The forward weights of a route's listener rule on the stack's ALB.

    The upstreams of the active priority get their ``weight``, every other upstream 0
    (:func:`control_plane.plan.elb.forward_weights`, the same rule the reconciler keeps).
    """

    def __init__(self, adapter: ElbAdapter | None) -> None:
        self.adapter = adapter

    def set_active(self, route, priority: int) -> bool:
        """Weight the upstreams of ``priority``; False when the rule already does."""
        if self.adapter is None:
            raise PermanentError("this stack has no ALB listener for targets upstreams",
                                 reason="TargetsUnavailable")
        upstreams = [u for u in route.upstreams if u.targets is not None]
        wanted = forward_weights(upstreams, priority)
        observed = self.adapter.observe()
        rules = observed.rules_of(route.route_id)
        if not rules:
            raise PermanentError(f"route '{route.route_id}' has no listener rule yet; the "
                                 "reconciler creates it", reason="ListenerRuleMissing")
        if observed.rule_weights_by_upstream(route.route_id) == wanted:
            return False
        vpc_id = self.adapter.vpc_id
        forward = tuple((target_group_name(route.route_id, u.name, vpc_id), wanted[u.name])
                        for u in upstreams)
        self.adapter.apply([ModifyRule(rules[0].arn, route.route_id, forward, False)], observed)
        return True
