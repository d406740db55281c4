"""Which integration kinds the local gateway serves, and by which handler.

The key is :attr:`data_plane.gateway_config.Integration.kind` (for example ``HTTP_PROXY``,
``HTTP_PROXY/VPC_LINK``, ``AWS_PROXY``); the value handles the request once routing and
access control have passed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from data_plane.alb import AlbIntegration
from data_plane.aws_proxy import AwsProxyIntegration
from data_plane.http_proxy import HttpProxyIntegration
from data_plane.transport import Transport


def build_integrations(
    transport: Transport, *, lambda_client_factory: Callable[[str], Any] | None = None
) -> dict[str, object]:
    aws_proxy = (AwsProxyIntegration(client_factory=lambda_client_factory)
                 if lambda_client_factory is not None else AwsProxyIntegration())
    return {
        "HTTP_PROXY": HttpProxyIntegration(transport),
        "AWS_PROXY": aws_proxy,
        "HTTP_PROXY/VPC_LINK": AlbIntegration(transport),
    }
