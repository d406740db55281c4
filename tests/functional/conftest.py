"""Fixtures for functional tests: the reconciler's stack on the embedded AWS endpoint."""

from __future__ import annotations

import pytest

from tests.functional.stack import Harness, Stack


@pytest.fixture
def stack(aws) -> Stack:
    return Stack(aws).create()


@pytest.fixture
def harness(stack, monkeypatch) -> Harness:
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack.aws.url)
    return Harness(stack)
