"""The reconcile function's real handler, built with fault hooks on its own AWS clients.

``handler`` here is :func:`control_plane.handlers.route_stream.make_handler` around
:meth:`~control_plane.handlers.route_stream.Dependencies.from_session`, exactly as the
deployed handler builds it, except that the boto3 session its clients come from carries
botocore event hooks driven by :data:`FAULTS`:

- a crash before the n-th AWS write the function makes (counted across invocations):
  :class:`Crash` is a ``BaseException``, so nothing in the handler catches it and the
  invocation dies half-way, as a Lambda process killed mid-batch does;
- the state table unavailable until a given time: every DynamoDB call on it is answered
  ``503 ServiceUnavailable`` before it leaves the client.

A test points the stack's reconcile function at this handler with
``UpdateFunctionConfiguration`` (the local cloud's runtime imports the handler the function's
configuration names).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field

import boto3
from botocore.awsrequest import AWSResponse

from control_plane.adapters.throttle import is_write
from control_plane.handlers.route_stream import Dependencies, make_handler
from control_plane.settings import Settings

HANDLER = "tests.reliability.fault_handlers.handler"


class Crash(BaseException):
    """The process dies: nothing in the handler can catch this."""


@dataclass
class Faults:
    crash_before_writes: set[int] = field(default_factory=set)
    state_table: str = ""
    state_table_down_until: float = 0.0
    writes: int = 0
    crashes: int = 0
    refused_calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.crash_before_writes = set()
            self.state_table = ""
            self.state_table_down_until = 0.0
            self.writes = self.crashes = self.refused_calls = 0


FAULTS = Faults()


class RawBody:
    """The raw body botocore reads from an HTTP response."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **kwargs):
        yield self._body

    def read(self, *args, **kwargs) -> bytes:
        body, self._body = self._body, b""
        return body


def state_table_down(request, table: str) -> bool:
    """True when ``request`` is a DynamoDB call on ``table``."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return False
    names = {body.get("TableName")}
    names.update((body.get("RequestItems") or {}).keys())
    for entry in body.get("TransactItems") or []:
        names.update(part.get("TableName") for part in entry.values() if isinstance(part, dict))
    return table in names


def unavailable(request) -> AWSResponse:
    payload = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#ServiceUnavailable",
                          "message": "Service unavailable"}).encode()
    return AWSResponse(request.url, 503, {"x-amzn-ErrorType": "ServiceUnavailable",
                                          "x-amzn-RequestId": str(uuid.uuid4()),
                                          "Content-Type": "application/x-amz-json-1.0"},
                       RawBody(payload))


def _before_call(model, **kwargs) -> None:
    if not is_write(model.name):
        return
    with FAULTS.lock:
        FAULTS.writes += 1
        crash = FAULTS.writes in FAULTS.crash_before_writes
        if crash:
            FAULTS.crashes += 1
    if crash:
        raise Crash(f"killed before write {FAULTS.writes} ({model.name})")


def _before_send(request, **kwargs) -> AWSResponse | None:
    if time.monotonic() >= FAULTS.state_table_down_until or not FAULTS.state_table:
        return None
    if not state_table_down(request, FAULTS.state_table):
        return None
    with FAULTS.lock:
        FAULTS.refused_calls += 1
    return unavailable(request)


def _dependencies() -> Dependencies:
    session = boto3.Session()
    session.events.register("before-call", _before_call)
    session.events.register("before-send.dynamodb", _before_send)
    return Dependencies.from_session(session, Settings.from_env())


handler = make_handler(_dependencies)
