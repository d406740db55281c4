"""The data-plane function's environment, parsed once per change.

``ROUTES_TABLE`` and ``STATE_TABLE`` name the tables; ``UPSTREAM_SECRETS_ARN_PREFIX`` is the ARN
prefix of the secrets the function's role may read (empty: no check here);
``UPSTREAM_SECRET_MAX_AGE_SECONDS`` how long a secret is cached (default 60);
``TURNOUT_ALLOW_LOOPBACK_UPSTREAMS`` permits 127.0.0.0/8 upstreams (``turnout up`` sets it
when started with ``--allow-loopback-upstreams``). ``AWS_REGION`` and ``AWS_ENDPOINT_URL`` say
where DynamoDB and Secrets Manager are.

The retry budget (:mod:`~data_plane.proxy.retry_budget`): ``RETRY_BUDGET_PERCENT`` (default 20),
``RETRY_BUDGET_MIN_EXTRA_TRIES`` (default 3) and ``RETRY_BUDGET_WINDOW_SECONDS`` (default 10).
A value that is not a number, or out of range (negative; a window of 0), means the default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from data_plane.proxy.credentials import DEFAULT_MAX_AGE_SECONDS
from data_plane.proxy.retry_budget import RetryBudgetPolicy


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _number(value: str | None, default: float, *, positive: bool = False) -> float:
    """``value`` as a finite number >= 0 (> 0 when ``positive``), else ``default``."""
    try:
        number = float((value or "").strip())
    except ValueError:
        return default
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        return default
    return number


def _retry_budget(env: Mapping[str, str]) -> RetryBudgetPolicy:
    default = RetryBudgetPolicy()
    return RetryBudgetPolicy(
        budget_percent=_number(env.get("RETRY_BUDGET_PERCENT"), default.budget_percent),
        min_extra_tries=int(_number(env.get("RETRY_BUDGET_MIN_EXTRA_TRIES"), default.min_extra_tries)),
        window_seconds=_number(env.get("RETRY_BUDGET_WINDOW_SECONDS"), default.window_seconds,
                               positive=True),
    )


@dataclass(frozen=True)
class ProxySettings:
    """What the function reads from its environment."""

    routes_table: str
    state_table: str
    secrets_arn_prefix: str = ""
    secret_max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS
    allow_loopback_upstreams: bool = False
    region: str = "us-east-1"
    endpoint_url: str | None = None
    retry_budget: RetryBudgetPolicy = field(default_factory=RetryBudgetPolicy)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProxySettings:
        """Settings from ``env`` (a function's environment)."""
        try:
            max_age = int(env.get("UPSTREAM_SECRET_MAX_AGE_SECONDS", "") or DEFAULT_MAX_AGE_SECONDS)
        except ValueError:
            max_age = DEFAULT_MAX_AGE_SECONDS
        return cls(
            routes_table=env.get("ROUTES_TABLE", ""),
            state_table=env.get("STATE_TABLE", ""),
            secrets_arn_prefix=env.get("UPSTREAM_SECRETS_ARN_PREFIX", ""),
            secret_max_age_seconds=max(0, max_age),
            allow_loopback_upstreams=_flag(env.get("TURNOUT_ALLOW_LOOPBACK_UPSTREAMS")),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            retry_budget=_retry_budget(env),
        )
