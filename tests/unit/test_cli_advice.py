"""Every kind of AWS failure is worded with a next step, whether it reaches the CLI from
botocore directly or already translated into turnout's errors by the adapters."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from control_plane.adapters.aws_errors import translate
from control_plane.cli.aws_advice import Target, explain, missing_stack

LOCAL = Target(region="us-east-1", endpoint="http://127.0.0.1:4566", table="routes",
               table_option="--table")
ON_AWS = Target(region="eu-west-1")


def client_error(code: str, message: str = "", status: int = 400,
                 operation: str = "PutItem") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


CASES = [
    # (failure, target, words in the message, words in the next step)
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:4566/"), LOCAL,
     "cannot reach AWS at http://127.0.0.1:4566", "is `turnout up` running?"),
    (ConnectTimeoutError(endpoint_url="http://127.0.0.1:4566/"), LOCAL,
     "cannot reach AWS", "is `turnout up` running?"),
    (EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com/"), ON_AWS,
     "cannot reach AWS at https://dynamodb.eu-west-1.amazonaws.com", "AWS_ENDPOINT_URL=http://127.0.0.1:4566"),
    (ReadTimeoutError(endpoint_url="http://127.0.0.1:4566/"), LOCAL,
     "did not answer in time", "run the command again"),
    (NoCredentialsError(), LOCAL, "no usable AWS credentials",
     "export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local"),
    (PartialCredentialsError(provider="env", cred_var="aws_secret_access_key"), ON_AWS,
     "missing: aws_secret_access_key", "`aws configure`"),
    (ProfileNotFound(profile="prod"), ON_AWS, "AWS profile 'prod' not found",
     "`aws configure list-profiles`"),
    (client_error("AccessDeniedException", "not authorized to perform dynamodb:PutItem"), LOCAL,
     "AWS denied PutItem", "`aws sts get-caller-identity`"),
    (client_error("ExpiredTokenException", "expired"), ON_AWS,
     "AWS rejected the credentials (ExpiredTokenException)", "aws sso login"),
    (client_error("ProvisionedThroughputExceededException"), LOCAL, "AWS throttled PutItem",
     "AWS_MAX_ATTEMPTS=10"),
    (client_error("TooManyRequestsException", status=429, operation="GetUsagePlans"), ON_AWS,
     "AWS throttled GetUsagePlans", "wait a minute"),
    (client_error("ResourceNotFoundException", "Requested resource not found"), LOCAL,
     "table 'routes' not found in us-east-1 at http://127.0.0.1:4566", "aws dynamodb list-tables"),
    (client_error("NotFoundException", "Invalid API Key identifier", 404, "GetApiKey"), ON_AWS,
     "AWS found nothing for GetApiKey", "check the name or id"),
    (client_error("InternalServerError", "boom", 500), LOCAL, "on its side",
     "run the command again"),
    (client_error("BadGatewayish", "odd", 502), LOCAL, "on its side", "run the command again"),
    (client_error("ValidationException", "One or more parameter values were invalid"), LOCAL,
     "AWS refused PutItem", "--help"),
]


@pytest.mark.parametrize(("failure", "target", "said", "advice"), CASES)
def test_every_aws_failure_says_what_happened_and_what_to_do(failure, target, said, advice):
    error = explain(failure, target)
    assert said in error.message
    assert error.next_step and advice in error.next_step
    assert error.exit_code == 1
    assert "\n" not in error.message + error.next_step


@pytest.mark.parametrize(("failure", "target", "said", "advice"), CASES)
def test_a_failure_translated_by_the_adapters_gets_the_same_advice(failure, target, said,
                                                                    advice):
    try:
        try:
            raise failure
        except Exception as exc:
            raise translate(exc, action="read route") from exc
    except Exception as translated:
        error = explain(translated, target)
    assert error.lines() == explain(failure, target).lines()


def test_a_translated_error_without_its_cause_is_still_advised_by_reason():
    translated = translate(client_error("ThrottlingException", "Rate exceeded"))
    error = explain(translated, LOCAL)  # raised without `from`: no cause to look at
    assert "AWS throttled" in error.message and "AWS_MAX_ATTEMPTS" in error.next_step


def test_missing_stack_advice_depends_on_where_the_calls_went():
    local = missing_stack(Target(region="us-east-1", endpoint="http://127.0.0.1:4566"), "--table")
    on_aws = missing_stack(ON_AWS, "--table")
    assert "the endpoint `turnout up` printed" in local.next_step
    assert "AWS_ENDPOINT_URL=http://127.0.0.1:4566" in on_aws.next_step
    assert "turnout deploy --stack turnout --s3-bucket BUCKET" in on_aws.next_step


def test_long_aws_messages_are_trimmed_to_one_short_line():
    error = explain(client_error("ValidationException", "x" * 5000 + "\nsecond line"), LOCAL)
    assert len(error.message) < 400 and "\n" not in error.message
