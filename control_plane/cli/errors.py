"""Errors a command reports to the user as one line on stderr."""

from __future__ import annotations


class CommandError(Exception):
    """The command cannot do what was asked; ``str(error)`` says why and what to do next."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(CommandError):
    """The command line itself is wrong (exit code 2, like argparse's own errors)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=2)
