"""The CLI's one door to AWS: clients, the stack's table names, and errors as one line.

The endpoint is ``--endpoint-url``, else ``$AWS_ENDPOINT_URL`` (boto3 reads it), else AWS.
Table names come from the CloudFormation stack's outputs unless given on the command line;
the stack is described at most once per command, and only when a name is missing.

botocore exceptions become :class:`~control_plane.cli.errors.CommandError` in
:func:`aws_errors`, with a message that says what to do next.
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
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)

from control_plane.cli.errors import CommandError

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
                self._clients[service] = _session().client(
                    service, region_name=self.region, endpoint_url=self.endpoint_url,
                    config=_CONFIG,
                )
        return self._clients[service]

    @property
    def where(self) -> str:
        """Where the calls go, for messages: ``us-east-1 at http://127.0.0.1:4566``."""
        endpoint = self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        return f"{self.region} at {endpoint}" if endpoint else self.region

    @property
    def routes_table(self) -> str:
        return self.routes_table_override or self._output(ROUTES_TABLE_OUTPUT, "--table")

    @property
    def state_table(self) -> str:
        return self.state_table_override or self._output(STATE_TABLE_OUTPUT, "--state-table")

    def _output(self, key: str, option: str) -> str:
        outputs = self._stack_outputs(option)
        if key not in outputs:
            raise CommandError(
                f"stack {self.stack!r} ({self.where}) has no output {key}; is it fully "
                f"deployed? Check `aws cloudformation describe-stacks --stack-name {self.stack}`,"
                f" or pass {option}"
            )
        return outputs[key]

    def _stack_outputs(self, option: str) -> dict[str, str]:
        if self._outputs is None:
            cloudformation = self.client("cloudformation")
            with aws_errors(self):
                try:
                    stacks = cloudformation.describe_stacks(StackName=self.stack)["Stacks"]
                except ClientError as exc:
                    if _is_missing_stack(exc):
                        raise CommandError(self._missing_stack_message(option)) from None
                    raise
            outputs = stacks[0].get("Outputs", []) if stacks else []
            self._outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in outputs}
        return self._outputs

    def _missing_stack_message(self, option: str) -> str:
        return (
            f"stack {self.stack!r} not found in {self.where}. Start the local cloud with "
            f"`turnout up` (then pass --endpoint-url http://127.0.0.1:4566), deploy "
            f"cloudformation/turnout.yaml as stack {self.stack!r}, name another stack with "
            f"--stack, or name the table with {option}"
        )


def _is_missing_stack(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") == "ValidationError" and "does not exist" in error.get("Message", "")


@contextmanager
def aws_errors(
    context: AwsContext, *, table: str | None = None, option: str = "--table"
) -> Iterator[None]:
    """Turn botocore's exceptions into one-line :class:`CommandError` messages.

    ``table`` (named by ``option`` on the command line) is the table the calls use, so a
    missing table is reported by name.
    """
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "Error")
        message = error.get("Message", "") or str(exc)
        operation = getattr(exc, "operation_name", "") or "call"
        if code == "ResourceNotFoundException" and table:
            raise CommandError(
                f"table {table!r} not found in {context.where}; check {option} "
                f"(or the outputs of stack {context.stack!r})"
            ) from exc
        raise CommandError(f"AWS {operation} failed ({context.where}): {code}: {message}") from exc
    except EndpointConnectionError as exc:
        raise CommandError(
            f"cannot reach AWS at {exc.kwargs.get('endpoint_url', context.where)}; "
            f"is `turnout up` running, or is --endpoint-url / $AWS_ENDPOINT_URL right?"
        ) from exc
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise CommandError(
            f"no usable AWS credentials ({exc}); set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
            f"AWS_SECRET_ACCESS_KEY (any values work against `turnout up`)"
        ) from exc
    except BotoCoreError as exc:
        raise CommandError(f"AWS call failed ({context.where}): {exc}") from exc
