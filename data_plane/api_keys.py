"""The API keys a stage accepts, as API Gateway decides it.

A key is accepted when it exists, is enabled, and is in a usage plan attached to the
stage; its plan's throttle (if any) then applies to it. Keys are held by the SHA-256 digest
of their value, so a snapshot never carries a key value (nor can a log of it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from data_plane.throttling import Limit

API_KEY_HEADER = "x-api-key"


def key_digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class KeyGrant:
    """An accepted key: its id, the usage plan that admits it and that plan's throttle."""

    key_id: str
    plan_id: str
    limit: Limit | None


@dataclass(frozen=True)
class ApiKeys:
    """Accepted keys by digest."""

    grants: Mapping[str, KeyGrant]

    @classmethod
    def none(cls) -> ApiKeys:
        return cls(MappingProxyType({}))

    @classmethod
    def build(cls, keys: Iterable[Mapping[str, Any]],
              plans: Iterable[tuple[Mapping[str, Any], Iterable[str]]]) -> ApiKeys:
        """``keys``: ``GetApiKeys(includeValues=True)`` items; ``plans``: the usage plans
        attached to the stage, each with the ids of its keys."""
        usable = {k["id"]: k for k in keys if k.get("enabled") and k.get("value")}
        grants: dict[str, KeyGrant] = {}
        for plan, key_ids in plans:
            limit = plan_limit(plan)
            for key_id in sorted(key_ids):
                key = usable.get(key_id)
                if key is None:
                    continue
                grants.setdefault(key_digest(str(key["value"])),
                                  KeyGrant(key_id, str(plan["id"]), limit))
        return cls(MappingProxyType(grants))

    def grant_for(self, presented: str | None) -> KeyGrant | None:
        """The grant of the key the client sent, or None (missing, unknown or disabled)."""
        if not presented:
            return None
        return self.grants.get(key_digest(presented))

    def __len__(self) -> int:
        return len(self.grants)


def plan_limit(plan: Mapping[str, Any]) -> Limit | None:
    throttle = plan.get("throttle") or {}
    rate, burst = throttle.get("rateLimit"), throttle.get("burstLimit")
    if rate is None or burst is None:
        return None
    try:
        limit = Limit(float(rate), int(float(burst)))
    except (TypeError, ValueError):
        return None
    return None if limit.rate_per_second < 0 or limit.burst < 0 else limit
