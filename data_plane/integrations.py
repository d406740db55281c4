"""Which integration kinds the local gateway serves, and by which handler.

The key is :attr:`data_plane.gateway_config.Integration.kind` (for example ``HTTP_PROXY``,
``HTTP_PROXY/VPC_LINK``, ``AWS_PROXY``); the value handles the request once routing and
access control have passed.
"""

from __future__ import annotations

from data_plane.http_proxy import HttpProxyIntegration
from data_plane.transport import Transport


def build_integrations(transport: Transport) -> dict[str, object]:
    return {
        "HTTP_PROXY": HttpProxyIntegration(transport),
    }
