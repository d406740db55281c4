"""The reconciler component for ``route.security``: usage plans, stage throttling, the
resource policy and the WAF web ACL's association with the stage.

Per batch, in the order the session calls it:

- ``converge`` / ``teardown``: remember the route's wanted policy statement; delete the
  usage plan of a route that no longer requires API keys (or is gone);
- ``sweep`` (resync): delete turnout's usage plans whose route is not live, and drop the
  policy statements of such routes;
- ``finish`` (before the one deployment): merge the batch's statements into the REST API's
  resource policy and write it only when it changed, asking the core for a deployment
  (API Gateway applies a policy change only with one);
- ``after_deploy`` (the stage exists): create or update the usage plans of the batch's
  API-key routes, put the route's issued keys back into a plan that lost them, set or
  disable per-method stage throttling, and associate the web ACL if it is not already.

Everything is found by deterministic names, tags and Sids; an unchanged batch writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from control_plane.adapters.rest_api_policy import RestApiPolicyAdapter
from control_plane.adapters.stage_settings import StageSettingsAdapter
from control_plane.adapters.usage_plans import UsagePlansAdapter
from control_plane.adapters.web_acl import WebAclAdapter, stage_arn
from control_plane.errors import PermanentError
from control_plane.plan.security import (
    MethodKey,
    PlanSpec,
    PolicyDocumentError,
    Throttle,
    desired_method_throttles,
    desired_plan,
    key_belongs_to,
    merge_policy,
    method_throttle_patch,
    observed_method_throttles,
    owns_plan,
    parse_policy,
    plan_method_throttles,
    plan_patch,
    route_of_plan,
    route_statement,
)
from control_plane.reconcile.components import BaseComponent, BatchContext
from control_plane.settings import environ

logger = Logger(service="turnout-reconcile", child=True)

POLICY_REASON = "resource policy changed"


@dataclass
class _Batch:
    """What the component learns and decides during one batch."""

    ctx: BatchContext
    converged: dict[str, Any] = field(default_factory=dict)
    policy_updates: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    live: set[str] | None = None
    plans: dict[str, list[dict[str, Any]]] | None = None  # route id -> its plans


class SecurityComponent(BaseComponent):
    """Reconciles ``security``: see the module docstring."""

    name = "security"

    def __init__(self, apigateway_client, *, web_acl_arn: str = "", wafv2_client=None) -> None:
        self._apigateway = apigateway_client
        self._plans = UsagePlansAdapter(apigateway_client)
        self._web_acl_arn = web_acl_arn
        self._waf = WebAclAdapter(wafv2_client) if (web_acl_arn and wafv2_client) else None
        self._batch: _Batch | None = None

    @classmethod
    def from_settings(cls, settings, client_factory) -> SecurityComponent:
        """Built by the registry; the web ACL comes from ``WEB_ACL_ARN`` (empty: no WAF)."""
        web_acl_arn = environ().get("WEB_ACL_ARN", "").strip()
        return cls(client_factory("apigateway"), web_acl_arn=web_acl_arn,
                   wafv2_client=client_factory("wafv2") if web_acl_arn else None)

    def _state(self, ctx: BatchContext) -> _Batch:
        if self._batch is None or self._batch.ctx is not ctx:
            self._batch = _Batch(ctx)
        return self._batch

    # ---- per route ------------------------------------------------------------------

    def converge(self, route, ctx: BatchContext) -> None:
        batch = self._state(ctx)
        batch.converged[route.route_id] = route
        batch.policy_updates[route.route_id] = route_statement(route, ctx.stage_name)
        if desired_plan(route) is None:
            self._delete_plans(route.route_id, batch)

    def teardown(self, route_id: str, ctx: BatchContext) -> None:
        batch = self._state(ctx)
        batch.converged.pop(route_id, None)
        batch.policy_updates[route_id] = None
        self._delete_plans(route_id, batch)

    def sweep(self, live_route_ids: set[str], ctx: BatchContext) -> None:
        batch = self._state(ctx)
        batch.live = set(live_route_ids)
        for route_id in sorted(set(self._owned_plans(batch)) - batch.live):
            self._delete_plans(route_id, batch)

    # ---- per batch ------------------------------------------------------------------

    def finish(self, ctx: BatchContext) -> None:
        batch = self._state(ctx)
        if not batch.policy_updates and batch.live is None:
            return
        try:
            current = parse_policy(ctx.observed.policy)
        except PolicyDocumentError:
            logger.error("the REST API's resource policy is not JSON; allowlists were not "
                         "applied (replace or remove the policy by hand)")
            return
        change = merge_policy(current, batch.policy_updates, ctx.rest_api_id,
                              live_route_ids=batch.live)
        if change.document is None:
            return
        stored = RestApiPolicyAdapter(self._apigateway, ctx.rest_api_id).replace(change.text)
        ctx.observed.policy = stored
        ctx.deployment_reasons.add(POLICY_REASON)
        logger.info("resource policy updated",
                    extra={"routes": sorted(batch.policy_updates)})

    def after_deploy(self, ctx: BatchContext) -> None:
        batch = self._state(ctx)
        self._converge_plans(batch)
        self._converge_method_throttles(batch)
        self._associate_web_acl(ctx)

    # ---- usage plans ----------------------------------------------------------------

    def _owned_plans(self, batch: _Batch) -> dict[str, list[dict[str, Any]]]:
        if batch.plans is None:
            found: dict[str, list[dict[str, Any]]] = {}
            for plan in self._plans.list_plans():
                if owns_plan(plan, batch.ctx.rest_api_id):
                    found.setdefault(route_of_plan(plan["name"]), []).append(plan)
            for plans in found.values():
                plans.sort(key=lambda p: p["id"])
            batch.plans = found
        return batch.plans

    def _delete_plans(self, route_id: str, batch: _Batch) -> None:
        for plan in self._owned_plans(batch).pop(route_id, []):
            self._plans.delete_plan(plan, batch.ctx.rest_api_id, batch.ctx.stage_name)
            logger.info("usage plan deleted", extra={"route_id": route_id})

    def _converge_plans(self, batch: _Batch) -> None:
        specs = [spec for route in batch.converged.values()
                 if (spec := desired_plan(route)) is not None]
        if not specs:
            return
        owned = self._owned_plans(batch)
        keys: list[dict[str, Any]] | None = None
        for spec in sorted(specs, key=lambda s: s.route_id):
            try:
                plan, created = self._converge_plan(spec, owned, batch)
                if keys is None:
                    keys = self._plans.list_keys()
                self._restore_keys(spec, plan, created, keys, batch)
            except PermanentError as exc:
                logger.error("the route's usage plan could not be made",
                             extra={"route_id": spec.route_id, "reason": exc.reason,
                                    "error": str(exc)})

    def _converge_plan(self, spec: PlanSpec, owned: dict[str, list[dict[str, Any]]],
                       batch: _Batch) -> tuple[dict[str, Any], bool]:
        api, stage = batch.ctx.rest_api_id, batch.ctx.stage_name
        plans = owned.get(spec.route_id, [])
        for duplicate in plans[1:]:  # left by a retried create whose answer was lost
            self._plans.delete_plan(duplicate, api, stage)
        if not plans:
            plan = self._plans.create_plan(spec, api, stage)
            owned[spec.route_id] = [plan]
            logger.info("usage plan created", extra={"route_id": spec.route_id})
            return plan, True
        plan = plans[0]
        owned[spec.route_id] = [plan]
        operations = plan_patch(plan, spec, api, stage)
        if operations:
            plan = self._plans.update_plan(plan["id"], operations)
            owned[spec.route_id] = [plan]
            logger.info("usage plan updated", extra={"route_id": spec.route_id})
        return plan, False

    def _restore_keys(self, spec: PlanSpec, plan: dict[str, Any], created: bool,
                      keys: list[dict[str, Any]], batch: _Batch) -> None:
        """Put the keys issued for the route into its plan (a recreated plan has none)."""
        issued = {k["id"] for k in keys if key_belongs_to(k, spec.route_id, batch.ctx.rest_api_id)}
        if not issued:
            return
        present = set() if created else self._plans.plan_key_ids(plan["id"])
        for key_id in sorted(issued - present):
            self._plans.add_key(plan["id"], key_id)

    # ---- stage throttling -----------------------------------------------------------

    def _converge_method_throttles(self, batch: _Batch) -> None:
        ctx = batch.ctx
        adapter = StageSettingsAdapter(self._apigateway, ctx.rest_api_id, ctx.stage_name)
        settings = adapter.method_settings()
        if settings is None:
            return
        desired: dict[MethodKey, Throttle | None] = {}
        for route in batch.converged.values():
            desired.update(desired_method_throttles(route))
        existing = {(r.path, m) for r in ctx.observed.resources.values() for m in r.methods}
        changes = plan_method_throttles(observed_method_throttles(settings), desired, existing)
        if changes:
            adapter.update(method_throttle_patch(changes))
            logger.info("stage throttling updated",
                        extra={"methods": [f"{m} {p}" for p, m in sorted(changes)]})

    # ---- WAF ------------------------------------------------------------------------

    def _associate_web_acl(self, ctx: BatchContext) -> None:
        if self._waf is None:
            return
        resource = stage_arn(ctx.region, ctx.rest_api_id, ctx.stage_name)
        try:
            if self._waf.associated_acl(resource) == self._web_acl_arn:
                return
            self._waf.associate(self._web_acl_arn, resource)
        except PermanentError as exc:
            logger.error("the web ACL could not be associated with the stage",
                         extra={"reason": exc.reason, "error": str(exc)})
            return
        logger.info("web ACL associated with the stage")
