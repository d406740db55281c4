"""A REST API's resource policy, evaluated per request as API Gateway does for callers
without IAM credentials (``anonymous``).

- A statement applies when its principal is everyone (``"*"`` or ``{"AWS": "*"}``), its
  action covers ``execute-api:Invoke`` (``Action``/``NotAction``, ``*`` wildcards), its
  resource covers the request's method ARN (``Resource``/``NotResource``; ``*`` matches any
  run of characters including ``/``, ``?`` one character; ``execute-api:/...`` is short for
  this API's ARN) and every condition holds.
- Conditions: ``IpAddress`` and ``NotIpAddress`` (and their ``...IfExists`` forms) on
  ``aws:SourceIp``, with one CIDR or a list. A statement with any other condition never
  applies here (it is reported in :attr:`ResourcePolicy.unsupported`): the local gateway
  knows only the caller's address.
- The decision: an explicit Deny wins; otherwise the request needs an applicable Allow.
  An API without a policy is open.

The method ARN is ``arn:aws:execute-api:<region>:<account>:<api>/<stage>/<METHOD>/<path>``,
with the path percent-decoded and its empty segments dropped, so a path written another way
reaches the same statements as the path the router matched.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from control_plane.plan.security import PolicyDocumentError, parse_policy

INVOKE = "execute-api:Invoke"
SOURCE_IP = "aws:sourceip"
_IP_OPERATORS = {"ipaddress": False, "notipaddress": True,
                 "ipaddressifexists": False, "notipaddressifexists": True}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class PolicyError(ValueError):
    """The policy cannot be read (not JSON, or no statements)."""


class Decision(enum.Enum):
    ALLOW = "allow"
    IMPLICIT_DENY = "implicit deny"
    EXPLICIT_DENY = "explicit deny"


@lru_cache(maxsize=4096)
def _glob(pattern: str) -> re.Pattern[str]:
    parts = ("." + "*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def glob_matches(pattern: str, value: str) -> bool:
    """IAM's wildcard match: ``*`` any run of characters, ``?`` one character."""
    return _glob(pattern).fullmatch(value) is not None


@dataclass(frozen=True)
class IpCondition:
    negated: bool
    networks: tuple[Network, ...]

    def holds(self, address: Address | None) -> bool:
        if address is None:
            return False
        inside = any(address.version == n.version and address in n for n in self.networks)
        return inside != self.negated


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    conditions: tuple[IpCondition, ...]

    def applies(self, arn: str, address: Address | None) -> bool:
        if self.actions is not None and not any(glob_matches(a.lower(), INVOKE.lower())
                                                for a in self.actions):
            return False
        if self.not_actions is not None and any(glob_matches(a.lower(), INVOKE.lower())
                                                for a in self.not_actions):
            return False
        if self.resources is not None and not any(glob_matches(r, arn) for r in self.resources):
            return False
        if self.not_resources is not None and any(glob_matches(r, arn)
                                                  for r in self.not_resources):
            return False
        return all(condition.holds(address) for condition in self.conditions)


@dataclass(frozen=True)
class ResourcePolicy:
    """A parsed policy; :meth:`decide` is pure and cheap."""

    statements: tuple[Statement, ...]
    unsupported: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str, *, arn_prefix: str) -> ResourcePolicy:
        """Read ``text`` (as ``GetRestApi`` returns it); ``arn_prefix`` is
        ``arn:aws:execute-api:<region>:<account>:<api>``, what ``execute-api:`` stands for."""
        document = _load(text)
        raw = document.get("Statement")
        if isinstance(raw, Mapping):
            raw = [raw]
        if not isinstance(raw, list):
            raise PolicyError("the policy has no Statement list")
        statements: list[Statement] = []
        unsupported: list[str] = []
        for index, item in enumerate(raw):
            if not isinstance(item, Mapping):
                raise PolicyError(f"statement {index} is not an object")
            name = str(item.get("Sid") or f"#{index}")
            if not _everyone(item.get("Principal")) or "NotPrincipal" in item:
                continue  # names an identity; never an anonymous caller
            conditions, problem = _conditions(item.get("Condition"))
            if problem is not None:
                unsupported.append(f"statement {name}: {problem}")
                continue
            statements.append(Statement(
                effect=str(item.get("Effect", "")).capitalize(),
                actions=_strings(item.get("Action")),
                not_actions=_strings(item.get("NotAction")),
                resources=_resources(item.get("Resource"), arn_prefix),
                not_resources=_resources(item.get("NotResource"), arn_prefix),
                conditions=conditions,
            ))
        return cls(tuple(statements), tuple(unsupported))

    def decide(self, arn: str, source_ip: str | None) -> Decision:
        address = _address(source_ip)
        allowed = False
        for statement in self.statements:
            if not statement.applies(arn, address):
                continue
            if statement.effect == "Deny":
                return Decision.EXPLICIT_DENY
            if statement.effect == "Allow":
                allowed = True
        return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def method_arn(arn_prefix: str, stage_name: str, http_method: str, raw_path: str) -> str:
    """The ARN a request is authorised against."""
    segments = [unquote(s) for s in raw_path.split("?", 1)[0].split("/") if s]
    return f"{arn_prefix}/{stage_name}/{http_method}/" + "/".join(segments)


def _load(text: str) -> Mapping[str, Any]:
    """The policy document, read the same way the reconciler reads it."""
    try:
        document = parse_policy(text)
    except PolicyDocumentError as exc:
        raise PolicyError("the resource policy is not a JSON object") from exc
    if document is None:
        raise PolicyError("the resource policy is not a JSON object")
    return document


def _everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping) and set(principal) == {"AWS"}:
        value = principal["AWS"]
        return value == "*" or (isinstance(value, list) and "*" in value)
    return False


def _strings(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    values = value if isinstance(value, list) else [value]
    return tuple(str(v) for v in values)


def _resources(value: Any, arn_prefix: str) -> tuple[str, ...] | None:
    values = _strings(value)
    if values is None:
        return None
    return tuple(arn_prefix + v[len("execute-api:"):] if v.startswith("execute-api:/") else v
                 for v in values)


def _conditions(block: Any) -> tuple[tuple[IpCondition, ...], str | None]:
    if block is None:
        return (), None
    if not isinstance(block, Mapping):
        return (), "Condition is not an object"
    conditions: list[IpCondition] = []
    for operator, body in block.items():
        negated = _IP_OPERATORS.get(str(operator).lower())
        if negated is None or not isinstance(body, Mapping):
            return (), f"condition operator {operator} is not emulated"
        for key, values in body.items():
            if str(key).lower() != SOURCE_IP:
                return (), f"condition key {key} is not emulated"
            try:
                networks = tuple(_networks(values if isinstance(values, list) else [values]))
            except ValueError:
                return (), f"aws:SourceIp value {values!r} is not an address or CIDR"
            conditions.append(IpCondition(negated, networks))
    return tuple(conditions), None


def _networks(values: Iterable[Any]) -> Iterable[Network]:
    for value in values:
        yield ipaddress.ip_network(str(value), strict=False)


def _address(source_ip: str | None) -> Address | None:
    if not source_ip:
        return None
    try:
        address = ipaddress.ip_address(source_ip.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
