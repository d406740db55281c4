"""The extension point of the reconciler: one component per kind of AWS state a route owns.

API Gateway resources and methods are the core (``ReconcileSession`` itself); everything else
a route becomes — usage plans and API keys, the resource policy, ALB target groups and
listener rules, CloudWatch alarms — is a :class:`Component`. For each route of a batch the
session calls ``converge`` (the route is valid and its methods are in place) or ``teardown``
(the route is gone); after all routes, ``finish`` (batch-level writes such as the merged
resource policy) runs before the single deployment, and ``after_deploy`` after it (for what
needs the stage to exist, such as usage plans). ``sweep`` is called by the resync handler
with every live route id, to delete what no route owns any more.

Contract, as for the core:

- find your AWS objects by deterministic names and tags, never by remembering them;
- an unchanged route makes zero writes (read, compare, write only the difference);
- raise :class:`~control_plane.errors.TransientError` for throttling/5xx (the record retries),
  :class:`~control_plane.errors.PermanentError` for AWS refusals (route FAILED with the code),
  :class:`~control_plane.errors.InvalidRouteError` for a route AWS can never accept (REJECTED);
- every method is idempotent and safe to re-run after a crash at any point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from control_plane.plan.apigateway import ObservedApi


@dataclass
class BatchContext:
    """What components share within one batch."""

    observed: ObservedApi
    rest_api_id: str
    stage_name: str
    region: str
    account_id: str
    # Set by components whose changes only take effect with a new deployment
    # (e.g. the resource policy); the core deploys at most once per batch.
    deployment_reasons: set[str] = field(default_factory=set)


class Component(Protocol):
    name: str

    def converge(self, route, ctx: BatchContext) -> None: ...

    def teardown(self, route_id: str, ctx: BatchContext) -> None: ...

    def finish(self, ctx: BatchContext) -> None: ...

    def after_deploy(self, ctx: BatchContext) -> None: ...

    def sweep(self, live_route_ids: set[str], ctx: BatchContext) -> None: ...


class BaseComponent:
    """No-op defaults; subclasses override what they need."""

    name = "component"

    def converge(self, route, ctx: BatchContext) -> None:
        return None

    def teardown(self, route_id: str, ctx: BatchContext) -> None:
        return None

    def finish(self, ctx: BatchContext) -> None:
        return None

    def after_deploy(self, ctx: BatchContext) -> None:
        """Runs after the stage exists and points at the batch's deployment (if any)."""
        return None

    def sweep(self, live_route_ids: set[str], ctx: BatchContext) -> None:
        return None
