"""The one place where botocore's exceptions become turnout's errors.

    ClientError(Throttling*, TooManyRequests*, 5xx, ...)   -> TransientError
    ClientError(ConditionalCheckFailed)                      -> StaleWriteError
    ClientError(AccessDenied, Validation, BadRequest, ...)   -> PermanentError(reason=<AWS code>)
    EndpointConnectionError, ReadTimeout, ConnectTimeout      -> TransientError

Use :func:`translate` at the adapter boundary: ``raise translate(exc) from exc``.
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from control_plane.errors import GatewayError, PermanentError, StaleWriteError, TransientError

THROTTLING_CODES = frozenset({
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "TransactionInProgressException",
})

TRANSIENT_CODES = THROTTLING_CODES | frozenset({
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "InternalServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
})


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def is_throttling(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and error_code(exc) in THROTTLING_CODES


def translate(exc: BaseException, *, action: str = "") -> GatewayError:
    """Classify an AWS failure once: transient (retry), stale (drop) or permanent (FAILED)."""
    prefix = f"{action}: " if action else ""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = str(exc.response.get("Error", {}).get("Message", ""))[:300]
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code == "ConditionalCheckFailedException":
            return StaleWriteError(f"{prefix}{message or code}", reason=code)
        if code in TRANSIENT_CODES or status >= 500:
            return TransientError(f"{prefix}{code}: {message}", reason=code)
        return PermanentError(f"{prefix}{code}: {message}", reason=code)
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError
                  | BotoConnectionError):
        return TransientError(f"{prefix}{type(exc).__name__}", reason="EndpointUnreachable")
    if isinstance(exc, BotoCoreError):
        return PermanentError(f"{prefix}{type(exc).__name__}: {exc}", reason=type(exc).__name__)
    return PermanentError(f"{prefix}{type(exc).__name__}", reason="InternalError")
