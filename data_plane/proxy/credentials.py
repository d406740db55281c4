"""``upstream_auth`` header values, read from Secrets Manager and cached.

The secret (its ``SecretString``, the ``AWSCURRENT`` version) is read with Powertools'
:class:`~aws_lambda_powertools.utilities.parameters.SecretsProvider` and kept for
``max_age_seconds``, so a warm function reads each secret about once a minute, not per request.
The header value is the route's ``format`` with ``{secret}`` replaced by it.

The secret's value is never put in a log line, an exception message or a response: failures
raise :class:`CredentialUnavailableError`, whose message names only the secret's ARN.

``arn_prefix`` mirrors the function's IAM policy (``secretsmanager:GetSecretValue`` only on
``secret:<UpstreamSecretsPrefix>*``): a route naming a secret outside it is refused here too,
so a route that works locally works the same on AWS.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from control_plane.model.route import UpstreamAuth

PLACEHOLDER = "{secret}"
DEFAULT_MAX_AGE_SECONDS = 60


class CredentialUnavailableError(Exception):
    """The route's credential could not be read; the request must not go out without it."""


class Credentials:
    """Turns a route's ``upstream_auth`` into the header to send."""

    def __init__(
        self,
        client: Any,
        *,
        max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS,
        arn_prefix: str | None = None,
    ) -> None:
        self._provider = SecretsProvider(boto3_client=client)
        self._max_age_seconds = max_age_seconds
        self._arn_prefix = arn_prefix or None

    def header(self, auth: UpstreamAuth) -> tuple[str, str]:
        """``(header name, value)`` for ``auth``; :class:`CredentialUnavailableError` if unreadable."""
        if self._arn_prefix is not None and not auth.secret_arn.startswith(self._arn_prefix):
            raise CredentialUnavailableError(
                f"{auth.secret_arn} is outside the secrets this function may read ({self._arn_prefix}*)"
            )
        try:
            value = self._provider.get(
                auth.secret_arn, max_age=self._max_age_seconds, VersionStage="AWSCURRENT"
            )
        except Exception as exc:  # noqa: BLE001 - whatever failed, the message must not carry a value
            raise CredentialUnavailableError(
                f"reading {auth.secret_arn} failed ({type(exc).__name__})"
            ) from None
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise CredentialUnavailableError(f"{auth.secret_arn} is not UTF-8 text") from None
        if not isinstance(value, str) or not value or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise CredentialUnavailableError(
                f"{auth.secret_arn} does not hold a header-safe text value (no control characters)"
            )
        return auth.header, auth.format.replace(PLACEHOLDER, value, 1)
