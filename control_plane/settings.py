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
    region: str = "us-east-1"
    proxy_function_arn: str = ""
    vpc_link_id: str = ""
    load_balancer_arn: str = ""
    load_balancer_dns: str = ""
    listener_arn: str = ""
    vpc_id: str = ""
    apigateway_rate_per_second: float = Field(default=10.0, gt=0)
    apigateway_burst: int = Field(default=40, ge=1)
    alarm_period_seconds: int = Field(default=10, ge=10)

    def integration_options(self) -> dict[str, str | None]:
        """What :func:`control_plane.plan.apigateway.desired_integration` needs from the stack."""
        return {
            "region": self.region,
            "proxy_function_arn": self.proxy_function_arn or None,
            "vpc_link_id": self.vpc_link_id or None,
            "load_balancer_arn": self.load_balancer_arn or None,
            "load_balancer_dns": self.load_balancer_dns or None,
        }

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
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            proxy_function_arn=env.get("PROXY_FUNCTION_ARN", ""),
            vpc_link_id=env.get("VPC_LINK_ID", ""),
            load_balancer_arn=env.get("LOAD_BALANCER_ARN", ""),
            load_balancer_dns=env.get("LOAD_BALANCER_DNS", ""),
            listener_arn=env.get("LISTENER_ARN", ""),
            vpc_id=env.get("VPC_ID", ""),
            apigateway_rate_per_second=float(env.get("TURNOUT_APIGW_RATE_PER_SECOND", "10")),
            apigateway_burst=int(env.get("TURNOUT_APIGW_BURST", "40")),
            alarm_period_seconds=int(env.get("ALARM_PERIOD_SECONDS") or "10"),
        )
