"""Whether a failed try may be repeated on the next upstream (pure).

A route's ``retries.on`` names the failures it retries: ``connect-failure``, ``5xx`` and
``timeout``. What may be repeated also depends on the method:

==================  =====================================  ===================================
failure             idempotent methods                      other methods (POST, PATCH)
==================  =====================================  ===================================
connect failure     if ``connect-failure`` is listed        the same: the request never left
reset               if ``connect-failure`` or ``5xx`` is    never: the upstream may have acted
                    listed                                  on it
5xx answer          if ``5xx`` is listed                    never
timeout             if ``timeout`` is listed                never
==================  =====================================  ===================================

Idempotent methods are GET, HEAD, OPTIONS, TRACE, PUT and DELETE (RFC 9110, 9.2.2).
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class Failure(StrEnum):
    """How one try failed."""

    CONNECT = "connect-failure"
    """No connection: the request provably never reached the upstream."""
    RESET = "reset"
    """The connection broke after the request went out, before a usable answer."""
    STATUS_5XX = "5xx"
    """The upstream answered with a 5xx status."""
    TIMEOUT = "timeout"
    """No complete answer within the try's time budget."""


def may_retry(method: str, failure: Failure, retry_on: Collection[str]) -> bool:
    """Whether a try of ``method`` that failed with ``failure`` may be repeated."""
    if failure is Failure.CONNECT:
        return Failure.CONNECT.value in retry_on
    if method.upper() not in IDEMPOTENT_METHODS:
        return False
    if failure is Failure.RESET:
        return Failure.CONNECT.value in retry_on or Failure.STATUS_5XX.value in retry_on
    return failure.value in retry_on


def try_budget_seconds(
    remaining_seconds: float, *, later_tries: int, method: str, retry_on: Collection[str]
) -> float:
    """How long the next try may take out of ``remaining_seconds``.

    When a timeout of this try could be retried, the remaining time is shared equally with the
    ``later_tries`` still allowed, so a hanging upstream leaves time for the next one; otherwise
    the try may use all of it.
    """
    remaining = max(0.0, remaining_seconds)
    if later_tries > 0 and may_retry(method, Failure.TIMEOUT, retry_on):
        return remaining / (later_tries + 1)
    return remaining
