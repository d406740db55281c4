"""The main parser, and the options shared by every command that talks to AWS.

``turnout --help`` lists every leaf command (``routes validate``, ``routes apply``, ...) with
its one-line help, read from the parsers the command groups registered.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Iterator, Sequence
from importlib import metadata

DESCRIPTION = "turnout: a high-availability API gateway for AWS, run as an event-driven control plane."


def build_parser(groups: Sequence[str]) -> argparse.ArgumentParser:
    """The ``turnout`` parser with every command group in ``groups`` registered."""
    parser = argparse.ArgumentParser(
        prog="turnout",
        usage="turnout [-h] [--version] <command> ...",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"turnout {_version()}")
    commands = parser.add_subparsers(
        title="commands", metavar="<command>", dest="command", required=True,
        help=argparse.SUPPRESS, prog="turnout",
    )
    for name in groups:
        module = importlib.import_module(f"control_plane.cli.{name}")
        module.register(commands)
    parser.epilog = _command_listing(parser)
    return parser


def add_command_group(
    commands: argparse._SubParsersAction, name: str, help: str
) -> argparse._SubParsersAction:
    """Add a group such as ``routes`` and return the sub-parsers its commands go into."""
    group = commands.add_parser(name, help=help, description=help)
    return group.add_subparsers(
        title="commands", metavar="<command>", dest=f"{name}_command", required=True
    )


def add_aws_options(parser: argparse.ArgumentParser, *, state_table: bool = False) -> None:
    """``--endpoint-url``, ``--region``, ``--stack``, ``--table`` (and ``--state-table``)."""
    aws = parser.add_argument_group("AWS")
    aws.add_argument(
        "--endpoint-url", metavar="URL",
        help="AWS endpoint, e.g. http://127.0.0.1:4566 for `turnout up` "
             "(default: $AWS_ENDPOINT_URL, else AWS itself)",
    )
    aws.add_argument(
        "--region",
        help="AWS region (default: $AWS_REGION, $AWS_DEFAULT_REGION, your profile's, "
             "else us-east-1)",
    )
    aws.add_argument(
        "--stack", default="turnout",
        help="CloudFormation stack whose outputs name the tables (default: %(default)s)",
    )
    aws.add_argument(
        "--table", metavar="NAME", help="routes table (default: the stack's RoutesTableName)"
    )
    if state_table:
        aws.add_argument(
            "--state-table", metavar="NAME",
            help="state table (default: the stack's StateTableName)",
        )


def add_output_option(parser: argparse.ArgumentParser, *choices: str) -> None:
    """``--output`` / ``-o`` with ``choices``; the first one is the default."""
    parser.add_argument(
        "-o", "--output", choices=choices, default=choices[0],
        help="output format (default: %(default)s)",
    )


def _version() -> str:
    try:
        return metadata.version("turnout")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _command_listing(parser: argparse.ArgumentParser) -> str:
    rows = list(_leaf_commands(parser))
    width = max((len(name) for name, _ in rows), default=0)
    lines = ["commands:"]
    lines += [f"  {name.ljust(width)}  {help_text}" for name, help_text in rows]
    lines += ["", "Run `turnout <command> --help` for a command's options."]
    return "\n".join(lines)


def _leaf_commands(
    parser: argparse.ArgumentParser, prefix: str = ""
) -> Iterator[tuple[str, str]]:
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
        for name, sub in action.choices.items():
            if name not in helps:  # an alias
                continue
            full = f"{prefix}{name}"
            nested = list(_leaf_commands(sub, f"{full} "))
            yield from nested or [(full, helps[name])]
