"""Errors a command reports to the user: what happened, and what to do next.

``turnout`` prints a :class:`CommandError` as at most two lines on standard error, never a
traceback::

    turnout: error: cannot reach AWS at http://127.0.0.1:4566 (nothing answers there)
      next: start the local cloud with `turnout up`, or point --endpoint-url at a running one

The advice names real commands and settings, so the local cloud's defaults live here too:
`turnout up` serves AWS on :data:`LOCAL_ENDPOINT_URL` and the gateway on port
:data:`LOCAL_GATEWAY_PORT` unless told otherwise. AWS failures are worded in one place,
:mod:`control_plane.cli.aws_advice`.
"""

from __future__ import annotations

LOCAL_AWS_PORT = 4566
LOCAL_GATEWAY_PORT = 8080
LOCAL_ENDPOINT_URL = f"http://127.0.0.1:{LOCAL_AWS_PORT}"
LOCAL_CREDENTIALS = "AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local"


class CommandError(Exception):
    """The command cannot do what was asked.

    ``str(error)`` says what happened; ``next_step`` what the user can do about it (a command
    to run, an option or a setting). Neither ever holds a secret value.
    """

    def __init__(self, message: str, *, next_step: str | None = None, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.next_step = next_step
        self.exit_code = exit_code

    def lines(self) -> list[str]:
        """The error as printed: ``turnout: error: ...`` and, when known, ``  next: ...``."""
        lines = [f"turnout: error: {self.message}"]
        if self.next_step:
            lines.append(f"  next: {self.next_step}")
        return lines


class UsageError(CommandError):
    """The command line itself is wrong (exit code 2, like argparse's own errors)."""

    def __init__(self, message: str, *, next_step: str | None = None) -> None:
        super().__init__(message, next_step=next_step, exit_code=2)
