"""What the local gateway enforces before an integration, read with the stage's snapshot.

:func:`load_access_config` is called by :func:`data_plane.gateway_config.load_gateway_config`
on every reload (so a key created or revoked with ``turnout keys`` counts within one refresh
interval, as do the reconciler's changes), never per request:

- the REST API's resource policy (``GetRestApi``);
- when a method requires an API key: the usage plans attached to this stage
  (``GetUsagePlans``, ``GetUsagePlanKeys`` per such plan) and the API keys
  (``GetApiKeys`` with values, kept only as digests, see :mod:`data_plane.api_keys`);
- per-method throttling from the stage's ``methodSettings`` (already read with the stage).

Failures propagate as botocore errors, which the snapshot loader turns into "keep the last
good snapshot".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from data_plane.api_keys import ApiKeys
from data_plane.resource_policy import PolicyError, ResourcePolicy
from data_plane.throttling import Limit

LOG = logging.getLogger("turnout.gateway.config")

PAGE_SIZE = 500
STAGE_WIDE = ("*", "*")
_accounts: dict[tuple[str | None, str], str] = {}
_accounts_lock = threading.Lock()


@dataclass(frozen=True)
class AccessConfig:
    """The access rules of one stage snapshot."""

    arn_prefix: str = ""
    policy: ResourcePolicy | None = None
    api_keys: ApiKeys = field(default_factory=ApiKeys.none)
    method_limits: Mapping[tuple[str, str], Limit] = field(
        default_factory=lambda: MappingProxyType({}))
    problems: tuple[str, ...] = ()

    @property
    def account_id(self) -> str:
        parts = self.arn_prefix.split(":")
        return parts[4] if len(parts) > 4 else ""

    def method_limit(self, resource_path: str, http_method: str) -> Limit | None:
        """The stage throttle of a resource method: its own setting, else the stage-wide one."""
        return (self.method_limits.get((resource_path, http_method))
                or self.method_limits.get(STAGE_WIDE))


def load_access_config(client: Any, *, rest_api_id: str, stage_name: str,
                       stage: Mapping[str, Any],
                       resources: Iterable[Mapping[str, Any]]) -> AccessConfig:
    """Read the access rules of stage ``stage_name`` (``stage``: its ``GetStage`` answer)."""
    region = client.meta.region_name or "us-east-1"
    arn_prefix = f"arn:aws:execute-api:{region}:{_account_id(client, region)}:{rest_api_id}"
    problems: list[str] = []
    policy = _policy(client, rest_api_id, arn_prefix, problems)
    needs_keys = any(method.get("apiKeyRequired")
                     for resource in resources
                     for method in (resource.get("resourceMethods") or {}).values())
    api_keys = _api_keys(client, rest_api_id, stage_name) if needs_keys else ApiKeys.none()
    return AccessConfig(
        arn_prefix=arn_prefix,
        policy=policy,
        api_keys=api_keys,
        method_limits=MappingProxyType(method_limits(stage.get("methodSettings") or {})),
        problems=tuple(problems),
    )


def _policy(client: Any, rest_api_id: str, arn_prefix: str,
            problems: list[str]) -> ResourcePolicy | None:
    text = client.get_rest_api(restApiId=rest_api_id).get("policy")
    if not text:
        return None
    try:
        policy = ResourcePolicy.parse(text, arn_prefix=arn_prefix)
    except PolicyError as exc:
        problems.append(f"resource policy unreadable, every request is refused: {exc}")
        return ResourcePolicy(())
    problems.extend(f"resource policy {problem}; the statement is ignored"
                    for problem in policy.unsupported)
    return policy


def _api_keys(client: Any, rest_api_id: str, stage_name: str) -> ApiKeys:
    plans = [
        plan for page in client.get_paginator("get_usage_plans").paginate(
            PaginationConfig={"PageSize": PAGE_SIZE})
        for plan in page.get("items", [])
        if any(s.get("apiId") == rest_api_id and s.get("stage") == stage_name
               for s in plan.get("apiStages") or [])
    ]
    if not plans:
        return ApiKeys.none()
    members = []
    for plan in plans:
        pages = client.get_paginator("get_usage_plan_keys").paginate(
            usagePlanId=plan["id"], PaginationConfig={"PageSize": PAGE_SIZE})
        try:
            key_ids = [item["id"] for page in pages for item in page.get("items", [])]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NotFoundException":
                raise
            continue  # deleted since it was listed
        members.append((plan, key_ids))
    keys = [key for page in client.get_paginator("get_api_keys").paginate(
        includeValues=True, PaginationConfig={"PageSize": PAGE_SIZE})
        for key in page.get("items", [])]
    return ApiKeys.build(keys, members)


def method_limits(method_settings: Mapping[str, Any]) -> dict[tuple[str, str], Limit]:
    """Enabled throttles of ``methodSettings``, by (resource path, method); ``*/*`` as
    ``("*", "*")``. Keys are ``~1orders~1{id}/GET`` (or ``orders/{id}/GET``)."""
    limits: dict[tuple[str, str], Limit] = {}
    for key, settings in method_settings.items():
        head, sep, method = str(key).rpartition("/")
        if not sep or not head or not method or not isinstance(settings, Mapping):
            continue
        rate, burst = settings.get("throttlingRateLimit"), settings.get("throttlingBurstLimit")
        try:
            limit = Limit(float(rate), int(float(burst)))
        except (TypeError, ValueError):
            continue
        if limit.rate_per_second < 0 or limit.burst < 0:
            continue
        if head == "*":
            limits[STAGE_WIDE if method == "*" else ("*", method)] = limit
            continue
        path = head.replace("~1", "/").replace("~0", "~")
        limits[(path if path.startswith("/") else "/" + path, method)] = limit
    return limits


def _account_id(client: Any, region: str) -> str:
    """The account of the API (for its ARNs), asked of STS once per endpoint."""
    endpoint = client.meta.endpoint_url
    custom = None if endpoint and ".amazonaws.com" in endpoint else endpoint
    cache_key = (custom, region)
    with _accounts_lock:
        if cache_key in _accounts:
            return _accounts[cache_key]
    try:
        sts = boto3.client("sts", endpoint_url=custom, region_name=region,
                           config=Config(retries={"max_attempts": 1}, connect_timeout=2,
                                         read_timeout=5))
        account = str(sts.get_caller_identity()["Account"])
    except (ClientError, BotoCoreError) as exc:
        LOG.warning("account id unknown (%s); policy ARNs use an empty account", exc)
        return ""
    with _accounts_lock:
        _accounts[cache_key] = account
    return account
