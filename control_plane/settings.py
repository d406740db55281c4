"""Environment parsed once into a model.

A Lambda function reads its configuration from environment variables. The local cloud runs
several functions in one process, so it hands each invocation its function's environment
through :data:`function_environment` instead of mutating ``os.environ``; :func:`environ`
reads that first and the process environment after it.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

function_environment: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "turnout_function_environment", default=None
)


def environ() -> Mapping[str, str]:
    """The environment of the function being invoked (falls back to the process's)."""
    override = function_environment.get()
    if override is None:
        return os.environ
    merged = dict(os.environ)
    merged.update(override)
    return merged


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    routes_table: str = ""
    state_table: str = ""
    rest_api_id: str = ""
    stage_name: str = "live"
    event_bus_name: str = ""
    allow_loopback_upstreams: bool = False
    apigateway_rate_per_second: float = Field(default=10.0, gt=0)
    apigateway_burst: int = Field(default=40, ge=1)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = environ() if env is None else env
        return cls(
            routes_table=env.get("ROUTES_TABLE", ""),
            state_table=env.get("STATE_TABLE", ""),
            rest_api_id=env.get("REST_API_ID", ""),
            stage_name=env.get("STAGE_NAME", "live"),
            event_bus_name=env.get("EVENT_BUS_NAME", ""),
            allow_loopback_upstreams=_flag(env.get("TURNOUT_ALLOW_LOOPBACK_UPSTREAMS")),
            apigateway_rate_per_second=float(env.get("TURNOUT_APIGW_RATE_PER_SECOND", "10")),
            apigateway_burst=int(env.get("TURNOUT_APIGW_BURST", "40")),
        )
