"""What a route's ``security`` becomes in API Gateway, as pure functions.

- ``api_key_required`` -> a usage plan named ``turnout-<route_id>`` (tags ``turnout:route`` and
  ``turnout:rest-api``) attached to the stage, with ``rate_limit`` as its throttle
  (``rateLimit`` = requests_per_second, ``burstLimit`` = burst; no rate_limit: no throttle).
  Usage-plan throttling applies per API key, which is how API Gateway identifies clients.
- ``rate_limit`` without API keys -> stage method settings: ``throttling/rateLimit`` and
  ``throttling/burstLimit`` of each of the route's methods. A method whose throttle is no
  longer wanted is set back to ``-1`` (API Gateway's "no throttling"); its other settings
  (logging, metrics) are left as they are.
- ``allowed_cidrs`` -> one statement in the REST API's resource policy, merged with the
  others: an ``Allow execute-api:Invoke`` on ``execute-api:/*`` plus, per route with an
  allowlist, a ``Deny`` with ``NotIpAddress aws:SourceIp`` on that route's method ARNs. The
  statement's ``Sid`` names its route, so the policy itself remembers which statement is
  whose; statements turnout did not write are never touched (and when there are any, they,
  not turnout's Allow, decide what is allowed).

Nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PLAN_PREFIX = "turnout-"
ROUTE_TAG = "turnout:route"
REST_API_TAG = "turnout:rest-api"
NO_THROTTLE = -1
ANY = "ANY"

ALLOW_SID = "TurnoutInvoke"
ROUTE_SID_PREFIX = "turnout"
POLICY_VERSION = "2012-10-17"
INVOKE = "execute-api:Invoke"


# ---- usage plans ----------------------------------------------------------------------


def plan_name(route_id: str) -> str:
    """The deterministic name of a route's usage plan."""
    return PLAN_PREFIX + route_id


def route_of_plan(name: str | None) -> str | None:
    if name and name.startswith(PLAN_PREFIX) and len(name) > len(PLAN_PREFIX):
        return name[len(PLAN_PREFIX):]
    return None


@dataclass(frozen=True)
class Throttle:
    """A token bucket as API Gateway configures it."""

    rate_per_second: float
    burst: int

    @classmethod
    def of(cls, route) -> Throttle | None:
        limit = route.security.rate_limit
        return None if limit is None else cls(float(limit.requests_per_second), int(limit.burst))

    @classmethod
    def parse(cls, rate: object, burst: object) -> Throttle | None:
        """From API Gateway's values; None for absent or disabled (negative) limits."""
        if rate is None or burst is None:
            return None
        try:
            rate_value, burst_value = float(rate), int(float(burst))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        if rate_value < 0 or burst_value < 0:
            return None
        return cls(rate_value, burst_value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass(frozen=True)
class PlanSpec:
    """The usage plan a route with ``api_key_required`` needs."""

    route_id: str
    throttle: Throttle | None

    @property
    def name(self) -> str:
        return plan_name(self.route_id)


def desired_plan(route) -> PlanSpec | None:
    """The route's usage plan, or None when it does not require API keys."""
    if not route.security.api_key_required:
        return None
    return PlanSpec(route.route_id, Throttle.of(route))


def plan_tags(route_id: str, rest_api_id: str) -> dict[str, str]:
    return {ROUTE_TAG: route_id, REST_API_TAG: rest_api_id}


def owns_plan(plan: Mapping[str, Any], rest_api_id: str) -> bool:
    """Whether ``plan`` (a ``GetUsagePlans`` item) is turnout's, for this REST API."""
    if route_of_plan(plan.get("name")) is None:
        return False
    tags = plan.get("tags") or {}
    if tags.get(REST_API_TAG) == rest_api_id:
        return True
    return any(stage.get("apiId") == rest_api_id for stage in plan.get("apiStages") or [])


def stage_value(rest_api_id: str, stage_name: str) -> str:
    """How a usage plan's patch operations name an API stage."""
    return f"{rest_api_id}:{stage_name}"


def has_stage(plan: Mapping[str, Any], rest_api_id: str, stage_name: str) -> bool:
    return any(s.get("apiId") == rest_api_id and s.get("stage") == stage_name
               for s in plan.get("apiStages") or [])


def plan_patch(plan: Mapping[str, Any], spec: PlanSpec, rest_api_id: str,
               stage_name: str) -> list[dict[str, str]]:
    """Patch operations that make an existing plan match ``spec`` (empty: it does)."""
    ops: list[dict[str, str]] = []
    if not has_stage(plan, rest_api_id, stage_name):
        ops.append({"op": "add", "path": "/apiStages",
                    "value": stage_value(rest_api_id, stage_name)})
    current = plan.get("throttle") or {}
    observed = Throttle.parse(current.get("rateLimit"), current.get("burstLimit"))
    if spec.throttle is None:
        if current:
            ops.append({"op": "remove", "path": "/throttle"})
    elif observed != spec.throttle:
        ops.append({"op": "replace", "path": "/throttle/rateLimit",
                    "value": _number(spec.throttle.rate_per_second)})
        ops.append({"op": "replace", "path": "/throttle/burstLimit",
                    "value": str(spec.throttle.burst)})
    return ops


def create_plan_request(spec: PlanSpec, rest_api_id: str, stage_name: str) -> dict[str, Any]:
    request: dict[str, Any] = {
        "name": spec.name,
        "description": f"turnout: API keys and throttling of route {spec.route_id}",
        "apiStages": [{"apiId": rest_api_id, "stage": stage_name}],
        "tags": plan_tags(spec.route_id, rest_api_id),
    }
    if spec.throttle is not None:
        request["throttle"] = {"rateLimit": spec.throttle.rate_per_second,
                               "burstLimit": spec.throttle.burst}
    return request


def key_belongs_to(key: Mapping[str, Any], route_id: str, rest_api_id: str) -> bool:
    """Whether an API key (a ``GetApiKeys`` item) was issued by turnout for this route."""
    tags = key.get("tags") or {}
    return tags.get(ROUTE_TAG) == route_id and tags.get(REST_API_TAG) == rest_api_id


# ---- stage method throttling ----------------------------------------------------------

MethodKey = tuple[str, str]  # (resource path, HTTP method as on the resource)


def method_setting_key(path: str, http_method: str) -> str:
    """``/orders/{id}``, ``GET`` -> ``~1orders~1{id}/GET`` (a JSON-pointer-escaped path)."""
    escaped = path.replace("~", "~0").replace("/", "~1")
    return f"{escaped}/{http_method}"


def parse_method_setting_key(key: str) -> MethodKey | None:
    """The inverse of :func:`method_setting_key`; also reads ``orders/{id}/GET``. None for
    the stage-wide ``*/*`` and anything unreadable."""
    head, sep, method = key.rpartition("/")
    if not sep or not head or not method or head == "*":
        return None
    path = head.replace("~1", "/").replace("~0", "~")
    if not path.startswith("/"):
        path = "/" + path
    return path, method


def observed_method_throttles(method_settings: Mapping[str, Any]) -> dict[MethodKey, Throttle]:
    """The enabled per-method throttles of a stage's ``methodSettings``."""
    found: dict[MethodKey, Throttle] = {}
    for key, settings in (method_settings or {}).items():
        parsed = parse_method_setting_key(key)
        if parsed is None or not isinstance(settings, Mapping):
            continue
        throttle = Throttle.parse(settings.get("throttlingRateLimit"),
                                  settings.get("throttlingBurstLimit"))
        if throttle is not None:
            found[parsed] = throttle
    return found


def desired_method_throttles(route) -> dict[MethodKey, Throttle | None]:
    """Per method of ``route``: its stage throttle, or None (usage plans or no limit)."""
    throttle = None if route.security.api_key_required else Throttle.of(route)
    return {(route.path, method): throttle for method in sorted(set(route.methods))}


def method_throttle_patch(changes: Mapping[MethodKey, Throttle | None]) -> list[dict[str, str]]:
    """``UpdateStage`` operations setting (or disabling, for None) each method's throttle."""
    ops: list[dict[str, str]] = []
    for (path, method), throttle in sorted(changes.items()):
        prefix = "/" + method_setting_key(path, method) + "/throttling/"
        rate = NO_THROTTLE if throttle is None else throttle.rate_per_second
        burst = NO_THROTTLE if throttle is None else throttle.burst
        ops.append({"op": "replace", "path": prefix + "rateLimit", "value": _number(rate)})
        ops.append({"op": "replace", "path": prefix + "burstLimit", "value": str(burst)})
    return ops


def plan_method_throttles(
    observed: Mapping[MethodKey, Throttle],
    desired: Mapping[MethodKey, Throttle | None],
    owned: Iterable[MethodKey],
) -> dict[MethodKey, Throttle | None]:
    """What to change: every desired throttle that differs, and every observed one that is
    neither desired nor on a method that exists (``owned``: the methods API Gateway has)."""
    existing = set(owned)
    changes: dict[MethodKey, Throttle | None] = {}
    for key, throttle in desired.items():
        if observed.get(key) != throttle:
            changes[key] = throttle
    for key in observed:
        if key not in desired and key not in existing:
            changes[key] = None
    return changes


# ---- resource policy ------------------------------------------------------------------


def statement_sid(route_id: str) -> str:
    """``payments-eu`` -> ``turnoutpaymentsXeu``.

    IAM statement ids are letters and digits only, and route ids are lower case, so ``-``
    is written as ``X``: one route, one Sid, and back.
    """
    return ROUTE_SID_PREFIX + route_id.replace("-", "X")


def route_of_sid(sid: object) -> str | None:
    if not isinstance(sid, str) or not sid.startswith(ROUTE_SID_PREFIX):
        return None
    body = sid[len(ROUTE_SID_PREFIX):]
    if not body or not all(c.isdigit() or "a" <= c <= "z" or c == "X" for c in body):
        return None
    if body[0] == "X":
        return None
    return body.replace("X", "-")


def arn_path(path: str) -> str:
    """A resource path as the method ARN's path: ``{param}`` and ``{proxy+}`` become ``*``."""
    segments = [s for s in path.split("/") if s]
    return "/".join("*" if s.startswith("{") and s.endswith("}") else s for s in segments)


def method_arns(route, stage_name: str) -> list[str]:
    """``execute-api:/<stage>/<METHOD or *>/<path>`` for each method of the route."""
    methods = sorted({"*" if m == ANY else m for m in route.methods})
    return [f"execute-api:/{stage_name}/{m}/{arn_path(route.path)}" for m in methods]


def allow_statement() -> dict[str, Any]:
    return {"Sid": ALLOW_SID, "Effect": "Allow", "Principal": "*", "Action": INVOKE,
            "Resource": "execute-api:/*"}


def route_statement(route, stage_name: str) -> dict[str, Any] | None:
    """The Deny statement of a route with ``allowed_cidrs`` (None: the route has none)."""
    cidrs = sorted(set(route.security.allowed_cidrs))
    if not cidrs:
        return None
    return {
        "Sid": statement_sid(route.route_id),
        "Effect": "Deny",
        "Principal": "*",
        "Action": INVOKE,
        "Resource": method_arns(route, stage_name),
        "Condition": {"NotIpAddress": {"aws:SourceIp": cidrs}},
    }


class PolicyDocumentError(ValueError):
    """The REST API's current policy cannot be read as JSON."""


def parse_policy(text: str | None) -> dict[str, Any] | None:
    """The policy as API Gateway returns it (which may escape its quotes), or None."""
    if not text:
        return None
    for candidate in (text, text.replace('\\"', '"').replace("\\\\", "\\")):
        try:
            document = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(document, str):
            try:
                document = json.loads(document)
            except ValueError:
                continue
        if isinstance(document, dict):
            return document
    raise PolicyDocumentError("the REST API's resource policy is not a JSON object")


def _statements(document: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not document:
        return []
    statements = document.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    return [dict(s) for s in statements if isinstance(s, Mapping)]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _short_arn(value: Any, rest_api_id: str) -> Any:
    """``arn:aws:execute-api:<region>:<account>:<api>/x`` -> ``execute-api:/x`` for our API."""
    if isinstance(value, str) and value.startswith("arn:"):
        parts = value.split(":", 5)
        if len(parts) == 6 and parts[2] == "execute-api" and parts[5].startswith(rest_api_id + "/"):
            return "execute-api:" + parts[5][len(rest_api_id):]
    return value


def canonical_statement(statement: Mapping[str, Any], rest_api_id: str) -> str:
    """A statement in a form that compares equal however API Gateway re-serialised it."""
    normal: dict[str, Any] = {}
    for key, value in statement.items():
        if key in ("Action", "NotAction"):
            normal[key] = sorted(str(v) for v in _as_list(value))
        elif key in ("Resource", "NotResource"):
            normal[key] = sorted(str(_short_arn(v, rest_api_id)) for v in _as_list(value))
        elif key == "Principal" and isinstance(value, Mapping) and set(value) == {"AWS"} and (
                _as_list(value["AWS"]) == ["*"]):
            normal[key] = "*"
        elif key == "Condition" and isinstance(value, Mapping):
            normal[key] = {op: {k: sorted(str(v) for v in _as_list(vals))
                                for k, vals in (body or {}).items()}
                           for op, body in value.items() if isinstance(body, Mapping)}
        else:
            normal[key] = value
    return json.dumps(normal, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class PolicyChange:
    """The merged policy to write (None: nothing to change)."""

    document: dict[str, Any] | None

    @property
    def text(self) -> str:
        return json.dumps(self.document, separators=(",", ":"))


def merge_policy(
    current: Mapping[str, Any] | None,
    updates: Mapping[str, dict[str, Any] | None],
    rest_api_id: str,
    *,
    live_route_ids: set[str] | None = None,
) -> PolicyChange:
    """The policy with the statements of the routes in ``updates`` replaced (None: removed),
    and, given ``live_route_ids`` (a resync), the statements of every other route dropped.

    Statements that are not turnout's are kept as they are, in their place. turnout's Allow is
    added when a route statement needs it and the policy holds nothing but turnout's own
    statements (a policy someone else wrote decides what is allowed; turnout only adds its
    Denies to it). It stays afterwards (it allows what having no policy allows), so removing
    the last allowlist costs one write, not two.
    """
    statements = _statements(current)
    kept: list[dict[str, Any]] = []
    placed: set[str] = set()
    for statement in statements:
        route_id = route_of_sid(statement.get("Sid"))
        if route_id is None:
            kept.append(statement)
            continue
        if route_id in updates:
            replacement = updates[route_id]
            if replacement is not None and route_id not in placed:
                kept.append(replacement)
                placed.add(route_id)
            continue
        if live_route_ids is not None and route_id not in live_route_ids:
            continue
        kept.append(statement)
    for route_id in sorted(updates):
        replacement = updates[route_id]
        if replacement is not None and route_id not in placed:
            kept.append(replacement)
    has_route_statements = any(route_of_sid(s.get("Sid")) for s in kept)
    foreign = any(route_of_sid(s.get("Sid")) is None and s.get("Sid") != ALLOW_SID for s in kept)
    if has_route_statements and not foreign and not any(s.get("Sid") == ALLOW_SID for s in kept):
        kept.insert(0, allow_statement())
    before = [canonical_statement(s, rest_api_id) for s in statements]
    after = [canonical_statement(s, rest_api_id) for s in kept]
    if before == after:
        return PolicyChange(None)
    document = {"Version": (current or {}).get("Version", POLICY_VERSION), "Statement": kept}
    return PolicyChange(document)
