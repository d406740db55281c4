"""Which components the reconciler runs, built from the stack's settings.

Each component is constructed from a boto3 session (clients get the shared call counter and,
for API Gateway, the shared token bucket through :func:`client_factory`).
"""

from __future__ import annotations

from collections.abc import Callable

from control_plane.reconcile import alarms
from control_plane.reconcile.components import Component
from control_plane.reconcile.security import SecurityComponent
from control_plane.reconcile.targets import TargetsComponent
from control_plane.settings import Settings

ClientFactory = Callable[..., object]  # client_factory("elbv2") -> a counted boto3 client


def build_components(settings: Settings, client_factory: ClientFactory) -> list[Component]:
    """Every component this stack supports, in the order they run for a route."""
    components: list[Component] = []
    components.append(TargetsComponent.build(settings, client_factory))
    components.append(alarms.build(settings, client_factory))
    components.append(SecurityComponent.from_settings(settings, client_factory))
    return components
