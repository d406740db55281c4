"""The responses the gateway itself gives, with API Gateway's statuses and bodies.

API Gateway answers with a JSON ``message`` and, for most errors, names the
error in ``x-amzn-ErrorType``. Later features (API keys, throttling, resource
policies) add their responses here, beside these.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True)
class GatewayResponse:
    """A status, a JSON body and an optional ``x-amzn-ErrorType``."""

    status: int
    body: bytes
    error_type: str | None = None

    def to_web_response(self) -> web.Response:
        """A fresh aiohttp response carrying this one."""
        response = web.Response(status=self.status, body=self.body, content_type="application/json")
        if self.error_type:
            response.headers["x-amzn-ErrorType"] = self.error_type
        return response


MISSING_AUTHENTICATION_TOKEN = GatewayResponse(
    403, b'{"message":"Missing Authentication Token"}', "MissingAuthenticationTokenException"
)
"""No resource or no method for the request, or nothing deployed yet."""

INTERNAL_SERVER_ERROR = GatewayResponse(
    500, b'{"message": "Internal server error"}', "InternalServerErrorException"
)
"""The configuration cannot serve the request (e.g. an undefined stage variable)."""

INTEGRATION_FAILURE = GatewayResponse(
    502, b'{"message": "Internal server error"}', "InternalServerErrorException"
)
"""The upstream refused the connection or gave no usable response."""

INTEGRATION_TIMEOUT = GatewayResponse(504, b'{"message": "Endpoint request timed out"}')
"""The upstream did not answer within the integration's timeout."""

FORBIDDEN = GatewayResponse(403, b'{"message":"Forbidden"}', "ForbiddenException")
"""A method that requires an API key got none, an unknown one or a disabled one."""

TOO_MANY_REQUESTS = GatewayResponse(429, b'{"message":"Too Many Requests"}',
                                    "TooManyRequestsException")
"""The caller's usage plan or the method's stage throttle has no token left."""
