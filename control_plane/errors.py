"""The error tree every part of turnout raises.

    GatewayError
    ├── InvalidRouteError     bad input -> route REJECTED with a reason; the record counts as processed
    ├── PermanentError        access denied, limits, AWS validation -> FAILED, no retry
    ├── TransientError        throttling, 5xx, timeouts -> retry with backoff (only these fail a record)
    └── StaleWriteError       a newer spec already won -> drop quietly

Third-party exceptions are mapped into this tree in one place per adapter
(``control_plane.adapters.aws_errors``), never inside reconcile logic.
"""

from __future__ import annotations

from dataclasses import dataclass


class GatewayError(Exception):
    """Base of every error turnout raises on purpose."""

    reason: str = "InternalError"

    def __init__(self, message: str = "", *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    @property
    def message(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a route document.

    ``field`` is a path such as ``upstreams[0].url`` (empty for the document as a whole),
    ``reason`` a machine-readable code such as ``UpstreamAddressNotAllowed``,
    ``message`` a sentence for people. None of them ever carries a secret.
    """

    field: str
    reason: str
    message: str

    def render(self) -> str:
        where = self.field or "(route)"
        return f"{where}: {self.reason}: {self.message}"


class InvalidRouteError(GatewayError):
    reason = "InvalidRoute"

    def __init__(self, problems: list[Problem], *, route_id: str | None = None) -> None:
        self.problems = list(problems)
        self.route_id = route_id
        first = self.problems[0] if self.problems else Problem("", "InvalidRoute", "invalid route")
        super().__init__(
            "; ".join(p.render() for p in self.problems) or "invalid route", reason=first.reason
        )


class PermanentError(GatewayError):
    reason = "PermanentError"


class TransientError(GatewayError):
    reason = "TransientError"

    def __init__(
        self, message: str = "", *, reason: str | None = None, delay_seconds: float | None = None
    ) -> None:
        super().__init__(message, reason=reason)
        self.delay_seconds = delay_seconds


class StaleWriteError(GatewayError):
    reason = "StaleWrite"
