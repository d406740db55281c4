"""The reconciler component for ``targets`` upstreams: target groups and a listener rule on the
stack's internal ALB, per route (see :mod:`control_plane.plan.elb` for what a route becomes).

Per batch the ALB is observed once, on first need; per route the component reads the registered
targets of the route's existing groups, plans (pure) and applies. A route without ``targets``
upstreams (or one that no longer has them) owns nothing on the ALB, so converging it removes
whatever it had there; a deleted route's rule goes first, then its groups. ``sweep`` removes
the rules and groups of routes that no longer exist. An unchanged route makes no writes.

A stack without an ALB (no ``LISTENER_ARN``) makes this component inert: such a stack rejects
``targets`` routes before components run.
"""

from __future__ import annotations

import logging

from control_plane.adapters.elb import ElbAdapter
from control_plane.plan.elb import ObservedAlb, RouteAlbSpec, desired_alb, plan_route_alb
from control_plane.reconcile.components import BaseComponent, BatchContext
from control_plane.settings import Settings

LOG = logging.getLogger("turnout.reconcile.targets")


class TargetsComponent(BaseComponent):
    name = "targets"

    def __init__(self, adapter: ElbAdapter | None, *, vpc_id: str = "") -> None:
        self.adapter = adapter
        self.vpc_id = vpc_id
        self._batch: BatchContext | None = None
        self._observed: ObservedAlb | None = None

    @classmethod
    def build(cls, settings: Settings, client_factory) -> TargetsComponent:
        """The component for this stack (inert when the stack has no ALB listener)."""
        if not (settings.listener_arn and settings.vpc_id):
            return cls(None)
        adapter = ElbAdapter(client_factory("elbv2"), listener_arn=settings.listener_arn,
                             vpc_id=settings.vpc_id, ec2=client_factory("ec2"))
        return cls(adapter, vpc_id=settings.vpc_id)

    def _observe(self, ctx: BatchContext) -> ObservedAlb:
        if self._observed is None or self._batch is not ctx:
            assert self.adapter is not None
            self._observed = self.adapter.observe()
            self._batch = ctx
        return self._observed

    def converge(self, route, ctx: BatchContext) -> None:
        if self.adapter is None:
            return
        observed = self._observe(ctx)
        desired = desired_alb(route, vpc_id=self.vpc_id, observed=observed)
        self._reconcile(route.route_id, desired, observed)

    def teardown(self, route_id: str, ctx: BatchContext) -> None:
        if self.adapter is None:
            return
        self._reconcile(route_id, None, self._observe(ctx))

    def sweep(self, live_route_ids: set[str], ctx: BatchContext) -> None:
        if self.adapter is None:
            return
        observed = self._observe(ctx)
        for route_id in sorted(observed.owners() - set(live_route_ids)):
            LOG.info("removing the ALB rule and target groups of route %s (no such route)",
                     route_id)
            self._reconcile(route_id, None, observed)

    def _reconcile(self, route_id: str, desired: RouteAlbSpec | None,
                   observed: ObservedAlb) -> None:
        assert self.adapter is not None
        if desired is None and route_id not in observed.owners():
            return
        for spec in desired.target_groups if desired else ():
            group = observed.target_groups.get(spec.name)
            if group is not None:
                self.adapter.load_targets(group)
        actions = plan_route_alb(route_id, desired, observed)
        if actions:
            LOG.info("route %s: %d ALB changes", route_id, len(actions))
        self.adapter.apply(actions, observed)
