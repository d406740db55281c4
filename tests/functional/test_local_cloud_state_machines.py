"""State-machine executions on the embedded AWS, with the definition parsed once.

Executions of one definition share its parse tree but nothing else: side by side, each
follows its own input through the states; a broken definition is refused every time.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from local_cloud import patches
from local_cloud.emulator import Emulator

ROLE = "arn:aws:iam::123456789012:role/turnout-test"

DEFINITION = json.dumps({
    "StartAt": "Pick",
    "States": {
        "Pick": {"Type": "Choice", "Choices": [
            {"Variable": "$.n", "NumericGreaterThan": 10, "Next": "Big"}],
            "Default": "Small"},
        "Big": {"Type": "Pass", "Parameters": {"size": "big", "n.$": "$.n"}, "End": True},
        "Small": {"Type": "Pass", "Parameters": {"size": "small", "n.$": "$.n"}, "End": True},
    },
})


def _finished(sfn, arn: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = sfn.describe_execution(executionArn=arn)
        if execution["status"] != "RUNNING":
            return execution
        time.sleep(0.05)
    raise AssertionError(f"execution {arn} still running after {timeout} s")


def test_executions_of_one_definition_each_follow_their_own_input(aws):
    Emulator.attach(aws.url)
    patches.apply_patches()
    sfn = aws.client("stepfunctions")
    machine = sfn.create_state_machine(name="sizes", definition=DEFINITION,
                                       roleArn=ROLE)["stateMachineArn"]
    inputs = list(range(0, 24))

    def run(n: int) -> dict:
        arn = sfn.start_execution(stateMachineArn=machine, name=f"n-{n}",
                                  input=json.dumps({"n": n}))["executionArn"]
        return _finished(sfn, arn)

    with ThreadPoolExecutor(8) as pool:
        executions = list(pool.map(run, inputs))

    assert [e["status"] for e in executions] == ["SUCCEEDED"] * len(inputs)
    assert [json.loads(e["output"]) for e in executions] == [
        {"size": "big" if n > 10 else "small", "n": n} for n in inputs]


def test_a_broken_definition_is_refused_every_time(aws):
    Emulator.attach(aws.url)
    patches.apply_patches()
    sfn = aws.client("stepfunctions")
    broken = json.dumps({"StartAt": "Nowhere", "States": {"A": {"Type": "Pass", "End": True,
                                                                 "Bogus": 1}}})
    for name in ("first", "second"):
        with pytest.raises(ClientError) as refused:
            sfn.create_state_machine(name=name, definition=broken, roleArn=ROLE)
        error = refused.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert "Bogus" in error["Error"]["Message"]
