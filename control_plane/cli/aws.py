"""The CLI's one door to AWS: clients, the stack's table names, and errors as one line.

The endpoint is ``--endpoint-url``, else ``$AWS_ENDPOINT_URL`` (boto3 reads it), else AWS.
Table names come from the CloudFormation stack's outputs unless given on the command line;
the stack is described at most once per command, and only when a name is missing.

botocore exceptions become :class:`~control_plane.cli.errors.CommandError` in
:func:`aws_errors`, worded by :mod:`control_plane.cli.aws_advice` with what to do next.
"""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from control_plane.cli import aws_advice
from control_plane.cli.errors import CommandError
from control_plane.errors import GatewayError

DEFAULT_REGION = "us-east-1"
ROUTES_TABLE_OUTPUT = "RoutesTableName"
STATE_TABLE_OUTPUT = "StateTableName"

_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard"})


@functools.cache
def _session() -> boto3.session.Session:
    """One boto3 session per process: clients share its loaded service models."""
    return boto3.session.Session()


def resolve_region(explicit: str | None) -> str:
    """``--region``, else ``$AWS_REGION``, ``$AWS_DEFAULT_REGION``, the profile's, us-east-1."""
    if explicit:
        return explicit
    from_env = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if from_env:
        return from_env
    try:
        return _session().region_name or DEFAULT_REGION
    except BotoCoreError:  # e.g. $AWS_PROFILE names a profile that does not exist
        return DEFAULT_REGION


@dataclass
class AwsContext:
    """Where a command's AWS calls go, from the common AWS options."""

    region: str
    stack: str = "turnout"
    endpoint_url: str | None = None
    routes_table_override: str | None = None
    state_table_override: str | None = None
    _clients: dict[str, object] = field(default_factory=dict, repr=False)
    _outputs: dict[str, str] | None = field(default=None, repr=False)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AwsContext:
        return cls(
            region=resolve_region(args.region),
            stack=args.stack,
            endpoint_url=args.endpoint_url or None,
            routes_table_override=getattr(args, "table", None),
            state_table_override=getattr(args, "state_table", None),
        )

    def client(self, service: str):
        """A boto3 client for ``service`` (one per context)."""
        if service not in self._clients:
            with aws_errors(self):
                try:
                    self._clients[service] = _session().client(
                        service, region_name=self.region, endpoint_url=self.endpoint_url,
                        config=_CONFIG,
                    )
                except ValueError as exc:  # botocore: "Invalid endpoint: ..." / bad region
                    if "endpoint" in str(exc).lower():
                        raise aws_advice.invalid_endpoint(str(self.endpoint)) from None
                    raise CommandError(
                        f"invalid AWS region {self.region!r}",
                        next_step="pass --region with a region name such as us-east-1",
                    ) from None
        return self._clients[service]

    @property
    def endpoint(self) -> str | None:
        """The endpoint the calls go to (``--endpoint-url``, else ``$AWS_ENDPOINT_URL``), or
        None when they go to AWS itself."""
        return self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None

    @property
    def where(self) -> str:
        """Where the calls go, for messages: ``us-east-1 at http://127.0.0.1:4566``."""
        return self.target().where

    def target(self, table: str | None = None, option: str = "--table") -> aws_advice.Target:
        """Where the calls go, for :func:`aws_advice.explain`."""
        overrides = {"--table": self.routes_table_override,
                     "--state-table": self.state_table_override}
        return aws_advice.Target(
            region=self.region, endpoint=self.endpoint, stack=self.stack, table=table,
            table_option=option,
            table_from_stack=table is not None and option in overrides
            and not overrides[option],
        )

    @property
    def routes_table(self) -> str:
        return self.routes_table_override or self._output(ROUTES_TABLE_OUTPUT, "--table")

    @property
    def state_table(self) -> str:
        return self.state_table_override or self._output(STATE_TABLE_OUTPUT, "--state-table")

    def _output(self, key: str, option: str) -> str:
        outputs = self._stack_outputs(option)
        if key not in outputs:
            raise aws_advice.missing_output(self.target(), key, option)
        return outputs[key]

    def _stack_outputs(self, option: str) -> dict[str, str]:
        if self._outputs is None:
            cloudformation = self.client("cloudformation")
            with aws_errors(self):
                try:
                    stacks = cloudformation.describe_stacks(StackName=self.stack)["Stacks"]
                except ClientError as exc:
                    if _is_missing_stack(exc):
                        raise aws_advice.missing_stack(self.target(), option) from None
                    raise
            outputs = stacks[0].get("Outputs", []) if stacks else []
            self._outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in outputs}
        return self._outputs


def _is_missing_stack(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") == "ValidationError" and "does not exist" in error.get("Message", "")


@contextmanager
def aws_errors(
    context: AwsContext, *, table: str | None = None, option: str = "--table"
) -> Iterator[None]:
    """Turn AWS failures into :class:`CommandError` messages that say what to do next.

    ``table`` (named by ``option`` on the command line) is the table the calls use, so a
    missing table is reported by name.
    """
    try:
        yield
    except (ClientError, BotoCoreError, GatewayError) as exc:
        raise aws_advice.explain(exc, context.target(table, option)) from exc
