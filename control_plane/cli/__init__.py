"""The ``turnout`` command line.

Each command group lives in its own module of this package and exposes
``register(commands)``: it adds its parser(s) to ``commands`` (the main parser's
sub-parsers) and sets ``handler=<function(args) -> exit code>`` on every leaf command.
Registering a group is adding its module name to :data:`COMMAND_GROUPS`.

Exit codes: 0 success, 1 the command failed (invalid routes, AWS errors, not found),
2 usage errors, 130 interrupted. A failure the command expects prints what happened and what
to do next (:class:`~control_plane.cli.errors.CommandError`), never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from control_plane.cli.errors import CommandError
from control_plane.cli.parser import build_parser

COMMAND_GROUPS: tuple[str, ...] = ("routes", "up", "keys", "status", "failover", "deploy")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``turnout`` command and return its exit code."""
    parser = build_parser(COMMAND_GROUPS)
    try:
        args = parser.parse_args(argv)
        return int(args.handler(args))
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        if exc.code is None:
            return 0
        return exc.code if isinstance(exc.code, int) else 2
    except CommandError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("turnout: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `turnout routes list | head -1`: the reader left
        _quiet_stdout()
        return 0


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout (e.g. captured in tests)
        pass
