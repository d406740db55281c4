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

:func:`try_timeouts` gives each try its time limits within the route's ``timeout_ms``; for
idempotent requests it also says when to hedge (start the next try without giving up this one).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
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


CONNECT_TIMEOUT_SECONDS = 1.5
"""The longest a try may spend connecting when a connect failure would be retried: one lost
SYN is retransmitted after 1 s, so this allows one retransmission plus a round trip."""
HEDGE_FLOOR_SECONDS = 0.15
"""The shortest hedging delay, whatever the upstream's recent latency."""
HEDGE_PERCENTILE = 0.95
"""The percentile of the upstream's recent first-byte times the hedging delay is a multiple of."""
HEDGE_LATENCY_MULTIPLE = 3.0
"""The hedging delay, in multiples of that percentile."""


@dataclass(frozen=True)
class TryTimeouts:
    """How long one try may take.

    ``total_seconds`` bounds the whole exchange and ``connect_seconds`` its connection.
    ``hedge_after_seconds``, when set, is the hedging delay: with no answer by then, the next
    try starts on the next upstream while this one keeps waiting, and the first answer wins.
    """

    total_seconds: float
    connect_seconds: float
    hedge_after_seconds: float | None = None


def try_timeouts(
    remaining_seconds: float,
    *,
    later_tries: int,
    method: str,
    retry_on: Collection[str],
    next_is_other_upstream: bool,
    recent_p95_seconds: float | None,
) -> TryTimeouts:
    """The time limits of the next try, given ``remaining_seconds`` of the route's budget.

    - A timeout that may be retried on another upstream (idempotent method, ``timeout`` listed,
      a later try on a different upstream) is hedged: the try may run until the budget ends,
      and the next one starts after the hedging delay, ``HEDGE_LATENCY_MULTIPLE`` times the
      upstream's recent p95 first-byte time (at least ``HEDGE_FLOOR_SECONDS``), never later than
      this try's equal share of the remaining time (the share alone while no recent latency is
      known). So a request already waiting on an upstream that hangs still gets its answer from
      the next one, well within the budget.
    - A timeout that may be retried on the same upstream (it is the only one left) gets the
      equal share, so the retry still fits.
    - Otherwise the try may use all the remaining time.

    When a connect failure would be retried, connecting is limited to
    ``CONNECT_TIMEOUT_SECONDS`` (a connect failure is safe to repeat for any method).
    """
    remaining = max(0.0, remaining_seconds)
    share = remaining / (later_tries + 1) if later_tries > 0 else remaining
    timeout_retried = later_tries > 0 and may_retry(method, Failure.TIMEOUT, retry_on)
    hedge_after = None
    total = remaining
    if timeout_retried and next_is_other_upstream:
        hedge_after = share
        if recent_p95_seconds is not None:
            hedge_after = min(share, max(HEDGE_FLOOR_SECONDS, HEDGE_LATENCY_MULTIPLE * recent_p95_seconds))
    elif timeout_retried:
        total = share
    connect = total
    if later_tries > 0 and may_retry(method, Failure.CONNECT, retry_on):
        connect = min(total, CONNECT_TIMEOUT_SECONDS)
    return TryTimeouts(total_seconds=total, connect_seconds=connect, hedge_after_seconds=hedge_after)
