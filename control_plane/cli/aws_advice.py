"""What an AWS failure means to a person at the terminal, and what they can do about it.

The one place where the CLI words AWS errors. :func:`explain` turns botocore's exceptions (and
turnout's own, from :mod:`control_plane.adapters.aws_errors`, by their cause or reason) into a
:class:`~control_plane.cli.errors.CommandError` with a next step::

    kind                      examples                                    next step
    unreachable endpoint      connection refused, DNS failure, timeout    `turnout up` / --endpoint-url
    no or bad credentials     NoCredentialsError, ExpiredToken            AWS_PROFILE, dummy keys locally
    unknown profile           ProfileNotFound                             `aws configure list-profiles`
    access denied             AccessDenied, AccessDeniedException         `aws sts get-caller-identity`
    throttled                 ThrottlingException, ProvisionedThroughput  wait, AWS_MAX_ATTEMPTS
    missing table             ResourceNotFoundException on a table        --table / the stack's outputs
    missing stack             ValidationError "does not exist"            `turnout up`, `turnout deploy`
    AWS-side failure          InternalError, 5xx                          run it again
    anything else AWS refused ValidationException, ...                    AWS's message, trimmed

Messages name the endpoint and region the calls went to and never carry a secret: only AWS's
error code and message (which name identities and resources, never key values).
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from control_plane.adapters.aws_errors import THROTTLING_CODES, TRANSIENT_CODES
from control_plane.cli.errors import LOCAL_CREDENTIALS, LOCAL_ENDPOINT_URL, CommandError
from control_plane.errors import GatewayError

MESSAGE_LIMIT = 240

ACCESS_DENIED_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
    "UnauthorizedException", "403",
})
BAD_CREDENTIALS_CODES = frozenset({
    "UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException",
    "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException", "RequestExpired",
    "AuthFailure", "InvalidAccessKeyId", "MissingAuthenticationToken",
})
NOT_FOUND_CODES = frozenset({"ResourceNotFoundException", "NotFoundException", "NotFound", "404"})



@dataclass(frozen=True)
class Target:
    """Where the failed call went, for the message: region, endpoint (None: AWS itself),
    the stack whose outputs name the tables, and the table the call used, if any.

    ``table_option`` is the command-line option that names the table; ``table_from_stack`` says
    the name came from the stack's outputs rather than that option.
    """

    region: str
    endpoint: str | None = None
    stack: str = "turnout"
    table: str | None = None
    table_option: str = "--table"
    table_from_stack: bool = False

    @property
    def where(self) -> str:
        """``us-east-1 at http://127.0.0.1:4566``, or ``us-east-1 (AWS)`` without an endpoint."""
        return f"{self.region} at {self.endpoint}" if self.endpoint else f"{self.region} (AWS)"


def explain(exc: BaseException, target: Target) -> CommandError:
    """The error to show for ``exc``, an AWS failure met while calling ``target``."""
    if isinstance(exc, GatewayError):
        cause = exc.__cause__
        if isinstance(cause, ClientError | BotoCoreError):
            return explain(cause, target)
        return _by_code(exc.reason, str(exc), "", target)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Error")
        message = str(error.get("Message") or "")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return _by_code(code, message, getattr(exc, "operation_name", "") or "", target,
                        server_error=status >= 500)
    if isinstance(exc, ReadTimeoutError):
        return CommandError(
            f"AWS at {_url(exc, target)} did not answer in time",
            next_step="run the command again" + (
                "; if that endpoint is `turnout up`, check that it is still running"
                if target.endpoint else ""),
        )
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ConnectionClosedError
                  | BotoConnectionError):
        return unreachable(_url(exc, target), target)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return no_credentials(str(exc), target)
    if isinstance(exc, ProfileNotFound):
        return CommandError(
            f"AWS profile {exc.kwargs.get('profile')!r} not found",
            next_step="list the profiles with `aws configure list-profiles` and set AWS_PROFILE "
                      "to one of them, or unset AWS_PROFILE",
        )
    if isinstance(exc, BotoCoreError):
        return CommandError(
            f"AWS call failed ({target.where}): {_trim(str(exc))}",
            next_step="check --endpoint-url and --region, then run the command again",
        )
    return CommandError(f"AWS call failed ({target.where}): {type(exc).__name__}")


def unreachable(url: str, target: Target) -> CommandError:
    """Nothing answers at ``url``."""
    if target.endpoint:
        return CommandError(
            f"cannot reach AWS at {url}: nothing answers there",
            next_step="is `turnout up` running? Start it, or point --endpoint-url / "
                      f"AWS_ENDPOINT_URL at the endpoint it printed (default {LOCAL_ENDPOINT_URL})",
        )
    return CommandError(
        f"cannot reach AWS at {url} (region {target.region})",
        next_step=f"check your network and --region; for the local cloud set "
                  f"AWS_ENDPOINT_URL={LOCAL_ENDPOINT_URL} (with `turnout up` running)",
    )


def no_credentials(detail: str, target: Target) -> CommandError:
    """boto3 found no usable credentials, so nothing was sent."""
    if target.endpoint:
        return CommandError(
            f"no usable AWS credentials ({_trim(detail)})",
            next_step=f"any values work against `turnout up`: export {LOCAL_CREDENTIALS}",
        )
    return CommandError(
        f"no usable AWS credentials ({_trim(detail)})",
        next_step="run `aws configure` or set AWS_PROFILE; for the local cloud instead, export "
                  f"AWS_ENDPOINT_URL={LOCAL_ENDPOINT_URL} {LOCAL_CREDENTIALS}",
    )


def invalid_endpoint(url: str) -> CommandError:
    """``--endpoint-url`` / ``$AWS_ENDPOINT_URL`` is not a URL boto3 can use."""
    return CommandError(
        f"invalid AWS endpoint URL {url!r}",
        next_step=f"give a full URL such as {LOCAL_ENDPOINT_URL} (what `turnout up` serves) with "
                  "--endpoint-url or AWS_ENDPOINT_URL",
    )


def missing_stack(target: Target, option: str) -> CommandError:
    """The stack that names the tables does not exist where the calls went."""
    if target.endpoint:
        step = ("check that this is the endpoint `turnout up` printed, or pass --stack NAME "
                f"(or name the table with {option})")
    else:
        step = (f"for the local cloud set AWS_ENDPOINT_URL={LOCAL_ENDPOINT_URL} (with `turnout "
                f"up` running); on AWS deploy it with `turnout deploy --stack {target.stack} "
                f"--s3-bucket BUCKET`, or pass --stack NAME / {option}")
    return CommandError(f"stack {target.stack!r} not found in {target.where}", next_step=step)


def missing_output(target: Target, key: str, option: str) -> CommandError:
    """The stack exists but lacks an output the command needs."""
    return CommandError(
        f"stack {target.stack!r} ({target.where}) has no output {key}; is it fully deployed?",
        next_step=f"see `aws cloudformation describe-stacks --stack-name {target.stack}`, "
                  f"or pass {option}",
    )


def _by_code(code: str, message: str, operation: str, target: Target, *,
             server_error: bool = False) -> CommandError:
    call = operation or "the call"
    detail = f"{code}: {_trim(message)}" if message else code
    if code in NOT_FOUND_CODES and target.table:
        return _missing_table(target)
    if code in THROTTLING_CODES:
        return CommandError(
            f"AWS throttled {call} ({code}) in {target.where}, even after retries",
            next_step="wait a minute and run the command again (it is safe to repeat), or "
                      "let it retry longer with AWS_MAX_ATTEMPTS=10",
        )
    if code in ACCESS_DENIED_CODES:
        return CommandError(
            f"AWS denied {call} in {target.where} ({detail})",
            next_step="check which identity you use with `aws sts get-caller-identity` and grant "
                      "it that permission, or use another AWS_PROFILE",
        )
    if code in BAD_CREDENTIALS_CODES:
        local = (f"; to use the local cloud instead set AWS_ENDPOINT_URL={LOCAL_ENDPOINT_URL}"
                 if not target.endpoint else "")
        return CommandError(
            f"AWS rejected the credentials ({code}) in {target.where}",
            next_step="refresh them (`aws sso login`, or new AWS_ACCESS_KEY_ID / "
                      f"AWS_SECRET_ACCESS_KEY){local}",
        )
    if code == "EndpointUnreachable":
        return unreachable(target.endpoint or target.region, target)
    if code in TRANSIENT_CODES or server_error:
        return CommandError(
            f"AWS failed {call} on its side ({detail}) in {target.where}",
            next_step="run the command again in a moment (it is safe to repeat)",
        )
    if code in NOT_FOUND_CODES:
        return CommandError(
            f"AWS found nothing for {call} in {target.where} ({detail})",
            next_step="check the name or id you gave, and --region / --endpoint-url",
        )
    return CommandError(
        f"AWS refused {call} in {target.where} ({detail})",
        next_step="check the values the message names; `turnout <command> --help` lists the "
                  "options",
    )


def _missing_table(target: Target) -> CommandError:
    if target.table_from_stack:
        step = (f"stack {target.stack!r} names it in its outputs, but it is gone: deploy the "
                "stack again (`turnout up` restarts the local one), or name a table with "
                f"{target.table_option}")
    else:
        step = (f"check the name with `aws dynamodb list-tables`, or leave out "
                f"{target.table_option} to use stack {target.stack!r}'s table")
    return CommandError(f"table {target.table!r} not found in {target.where}", next_step=step)


def _url(exc: BotoCoreError, target: Target) -> str:
    kwargs = getattr(exc, "kwargs", {}) or {}
    return str(kwargs.get("endpoint_url") or target.endpoint or target.region).rstrip("/")


def _trim(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"
