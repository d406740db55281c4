"""Usage plans and the API keys in them, through API Gateway's control plane.

turnout's plans are found by name (``turnout-<route_id>``) and tags; API keys issued by
``turnout keys create`` carry the route and REST API in their tags. Key values are never
read here (``includeValues`` is left off). Every botocore failure leaves through
:func:`control_plane.adapters.aws_errors.translate`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from control_plane.adapters.aws_errors import error_code, translate
from control_plane.plan.security import PlanSpec, create_plan_request, has_stage, stage_value

PAGE_SIZE = 500


@contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, action=action) from exc


class UsagePlansAdapter:
    """Reads and writes usage plans and usage-plan keys with one ``apigateway`` client."""

    def __init__(self, client) -> None:
        self.client = client

    def list_plans(self) -> list[dict[str, Any]]:
        """Every usage plan of the account and region (one paginated read)."""
        with _translated("GetUsagePlans"):
            pages = self.client.get_paginator("get_usage_plans").paginate(
                PaginationConfig={"PageSize": PAGE_SIZE})
            return [dict(item) for page in pages for item in page.get("items", [])]

    def list_keys(self) -> list[dict[str, Any]]:
        """Every API key's id, name, enabled flag, dates and tags (never its value)."""
        with _translated("GetApiKeys"):
            pages = self.client.get_paginator("get_api_keys").paginate(
                includeValues=False, PaginationConfig={"PageSize": PAGE_SIZE})
            keys = [dict(item) for page in pages for item in page.get("items", [])]
        for key in keys:
            key.pop("value", None)
        return keys

    def plan_key_ids(self, plan_id: str) -> set[str]:
        with _translated("GetUsagePlanKeys"):
            pages = self.client.get_paginator("get_usage_plan_keys").paginate(
                usagePlanId=plan_id, PaginationConfig={"PageSize": PAGE_SIZE})
            return {item["id"] for page in pages for item in page.get("items", [])}

    def create_plan(self, spec: PlanSpec, rest_api_id: str, stage_name: str) -> dict[str, Any]:
        with _translated("CreateUsagePlan"):
            raw = self.client.create_usage_plan(**create_plan_request(spec, rest_api_id,
                                                                      stage_name))
        raw.pop("ResponseMetadata", None)
        return raw

    def update_plan(self, plan_id: str, operations: list[dict[str, str]]) -> dict[str, Any]:
        with _translated("UpdateUsagePlan"):
            raw = self.client.update_usage_plan(usagePlanId=plan_id,
                                                patchOperations=operations)
        raw.pop("ResponseMetadata", None)
        return raw

    def add_key(self, plan_id: str, key_id: str) -> None:
        with _translated("CreateUsagePlanKey"):
            try:
                self.client.create_usage_plan_key(usagePlanId=plan_id, keyId=key_id,
                                                  keyType="API_KEY")
            except ClientError as exc:
                if error_code(exc) != "ConflictException":  # already in the plan
                    raise

    def delete_plan(self, plan: dict[str, Any], rest_api_id: str, stage_name: str) -> None:
        """Remove the plan's keys and its stage from it, then delete it (each step idempotent)."""
        plan_id = plan["id"]
        for key_id in sorted(self.plan_key_ids(plan_id)):
            with _translated("DeleteUsagePlanKey"):
                try:
                    self.client.delete_usage_plan_key(usagePlanId=plan_id, keyId=key_id)
                except ClientError as exc:
                    if error_code(exc) != "NotFoundException":
                        raise
        if has_stage(plan, rest_api_id, stage_name):
            self.update_plan(plan_id, [{"op": "remove", "path": "/apiStages",
                                        "value": stage_value(rest_api_id, stage_name)}])
        with _translated("DeleteUsagePlan"):
            try:
                self.client.delete_usage_plan(usagePlanId=plan_id)
            except ClientError as exc:
                if error_code(exc) != "NotFoundException":
                    raise
