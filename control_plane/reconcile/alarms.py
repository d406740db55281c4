"""Reconciler component: one CloudWatch alarm per upstream on the prober's metric.

Alarms are found by name (``turnout-<route_id>.<upstream>``, one ``DescribeAlarms`` by the
route's prefix per reconcile), compared with what the route wants
(:func:`control_plane.plan.alarms.plan_alarms`) and only the difference is written: an
unchanged route costs one read and no write. A deleted route loses its alarms; the resync's
sweep deletes the alarms of routes that are gone, but only those tagged with this stack's API
(alarm names are per account and region, tags say which stack made them).
"""

from __future__ import annotations

from control_plane.adapters.cloudwatch import CloudWatchAlarms
from control_plane.model.health_signals import ALARM_PREFIX, alarm_prefix, parse_alarm_name
from control_plane.plan.alarms import TAG_API, desired_alarms, plan_alarms
from control_plane.reconcile.components import BaseComponent, BatchContext


class UpstreamAlarms(BaseComponent):
    """Keeps each route's upstream alarms as its item says."""

    name = "alarms"

    def __init__(self, alarms: CloudWatchAlarms, shortest_period_seconds: int = 10) -> None:
        self.alarms = alarms
        self.shortest_period_seconds = shortest_period_seconds

    def converge(self, route, ctx: BatchContext) -> None:
        desired = desired_alarms(route, rest_api_id=ctx.rest_api_id,
                                 shortest_period_seconds=self.shortest_period_seconds)
        plan = plan_alarms(desired, self.alarms.describe(alarm_prefix(route.route_id)))
        for spec in plan.puts:
            self.alarms.put(spec.put_request())
        if plan.deletes:
            self.alarms.delete(plan.deletes)

    def teardown(self, route_id: str, ctx: BatchContext) -> None:
        names = [a["AlarmName"] for a in self.alarms.describe(alarm_prefix(route_id))]
        if names:
            self.alarms.delete(names)

    def sweep(self, live_route_ids: set[str], ctx: BatchContext) -> None:
        orphans = []
        for alarm in self.alarms.describe(ALARM_PREFIX):
            parsed = parse_alarm_name(str(alarm.get("AlarmName", "")))
            if parsed is None or parsed[0] in live_route_ids:
                continue
            if self.alarms.tags(alarm["AlarmArn"]).get(TAG_API) == ctx.rest_api_id:
                orphans.append(alarm["AlarmName"])
        if orphans:
            self.alarms.delete(orphans)


def build(settings, client_factory) -> UpstreamAlarms:
    """The component for this stack (alarms live in the stack's own account and region)."""
    return UpstreamAlarms(CloudWatchAlarms(client_factory("cloudwatch")),
                          shortest_period_seconds=settings.alarm_period_seconds)
