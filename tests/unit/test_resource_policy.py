"""The resource policy as the local gateway evaluates it (``aws:SourceIp``, Allow/Deny,
ARN wildcards), and the policy the reconciler writes, evaluated together."""

from __future__ import annotations

import json

import pytest

from control_plane.model.route import Route
from control_plane.plan.security import merge_policy, route_statement
from data_plane.resource_policy import (
    Decision,
    PolicyError,
    ResourcePolicy,
    glob_matches,
    method_arn,
)

PREFIX = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5"
STAGE = "live"
OUTSIDE = "198.51.100.7"
OFFICE = "203.0.113.9"


def policy(*statements: dict) -> ResourcePolicy:
    return ResourcePolicy.parse(json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
                                arn_prefix=PREFIX)


def arn(method: str, path: str) -> str:
    return method_arn(PREFIX, STAGE, method, path)


ALLOW_ALL = {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke",
             "Resource": "execute-api:/*"}


@pytest.mark.parametrize(("pattern", "value", "matches"), [
    ("execute-api:/*", "execute-api:/live/GET/a/b", True),
    ("a/*/c", "a/x/y/c", True),
    ("a/?/c", "a/x/c", True),
    ("a/?/c", "a/xy/c", False),
    ("a/b", "a/b/", False),
    ("A/b", "a/b", False),
])
def test_wildcards_match_as_iam_does(pattern, value, matches):
    assert glob_matches(pattern, value) is matches


def test_an_explicit_deny_wins_over_an_allow():
    rules = policy(ALLOW_ALL, {"Effect": "Deny", "Principal": "*", "Action": "execute-api:*",
                               "Resource": "execute-api:/live/GET/secret"})
    assert rules.decide(arn("GET", "/secret"), OFFICE) is Decision.EXPLICIT_DENY
    assert rules.decide(arn("POST", "/secret"), OFFICE) is Decision.ALLOW


def test_without_an_applicable_allow_the_request_is_refused():
    rules = policy({"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke",
                    "Resource": "execute-api:/live/GET/open"})
    assert rules.decide(arn("GET", "/open"), OUTSIDE) is Decision.ALLOW
    assert rules.decide(arn("GET", "/other"), OUTSIDE) is Decision.IMPLICIT_DENY


def test_source_ip_conditions_allow_inside_and_deny_outside_a_network():
    rules = policy({**ALLOW_ALL, "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}})
    assert rules.decide(arn("GET", "/x"), OFFICE) is Decision.ALLOW
    assert rules.decide(arn("GET", "/x"), OUTSIDE) is Decision.IMPLICIT_DENY
    assert rules.decide(arn("GET", "/x"), None) is Decision.IMPLICIT_DENY


def test_ipv4_mapped_ipv6_peers_count_as_their_ipv4_address():
    rules = policy({**ALLOW_ALL, "Condition": {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24"]}}})
    assert rules.decide(arn("GET", "/x"), "::ffff:203.0.113.9") is Decision.ALLOW


def test_statements_naming_an_identity_never_apply_to_anonymous_callers():
    rules = policy({**ALLOW_ALL, "Principal": {"AWS": "arn:aws:iam::123456789012:root"}})
    assert rules.decide(arn("GET", "/x"), OFFICE) is Decision.IMPLICIT_DENY
    assert policy({**ALLOW_ALL, "Principal": {"AWS": "*"}}).decide(
        arn("GET", "/x"), OFFICE) is Decision.ALLOW


def test_not_resource_and_full_arns_are_understood():
    rules = policy(ALLOW_ALL, {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke",
                               "NotResource": f"{PREFIX}/live/*/public/*"})
    assert rules.decide(arn("GET", "/public/page"), OUTSIDE) is Decision.ALLOW
    assert rules.decide(arn("GET", "/private"), OUTSIDE) is Decision.EXPLICIT_DENY


def test_a_condition_the_gateway_cannot_evaluate_is_reported_and_its_statement_ignored():
    rules = policy(ALLOW_ALL, {"Sid": "Vpce", "Effect": "Deny", "Principal": "*",
                               "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
                               "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}})
    assert rules.unsupported and "Vpce" in rules.unsupported[0]
    assert rules.decide(arn("GET", "/x"), OUTSIDE) is Decision.ALLOW


def test_the_policy_as_api_gateway_returns_it_with_escaped_quotes_is_read():
    text = json.dumps({"Version": "2012-10-17", "Statement": [ALLOW_ALL]}).replace('"', '\\"')
    assert ResourcePolicy.parse(text, arn_prefix=PREFIX).decide(
        arn("GET", "/x"), OUTSIDE) is Decision.ALLOW
    with pytest.raises(PolicyError):
        ResourcePolicy.parse("not json", arn_prefix=PREFIX)


def test_a_path_written_differently_reaches_the_same_statements():
    assert arn("GET", "/secret") == arn("GET", "//secr%65t/")
    assert arn("GET", "/a/b?x=1") == f"{PREFIX}/live/GET/a/b"


# ---- the reconciler's merged policy, evaluated by the gateway -------------------------


def _route(route_id: str, path: str, methods=("GET",), cidrs=()) -> Route:
    return Route.model_validate({
        "route_id": route_id, "path": path, "methods": list(methods),
        "upstreams": [{"name": "main", "url": "https://api.example", "priority": 0}],
        "security": {"allowed_cidrs": list(cidrs)},
    })


ROUTES = [
    _route("pay", "/pay/{proxy+}", cidrs=["203.0.113.0/24"]),
    _route("payments", "/payments/{proxy+}"),
    _route("reports", "/reports/{id}", methods=("GET",), cidrs=["203.0.113.0/24"]),
    _route("reports-upload", "/reports/{id}", methods=("POST",)),
    _route("admin", "/admin", methods=("ANY",), cidrs=["192.0.2.0/24"]),
    _route("open", "/open"),
]


def _merged() -> ResourcePolicy:
    document = merge_policy(None, {r.route_id: route_statement(r, STAGE) for r in ROUTES},
                            "a1b2c3d4e5").document
    return ResourcePolicy.parse(json.dumps(document), arn_prefix=PREFIX)


@pytest.mark.parametrize(("method", "path", "caller", "decision"), [
    ("GET", "/pay/charge", OUTSIDE, Decision.EXPLICIT_DENY),
    ("GET", "/pay/charge", OFFICE, Decision.ALLOW),
    ("GET", "/payments/charge", OUTSIDE, Decision.ALLOW),   # a sibling with a longer name
    ("GET", "/reports/7", OUTSIDE, Decision.EXPLICIT_DENY),
    ("POST", "/reports/7", OUTSIDE, Decision.ALLOW),        # same path, another route's method
    ("DELETE", "/admin", OFFICE, Decision.EXPLICIT_DENY),   # ANY covers every method
    ("DELETE", "/admin", "192.0.2.1", Decision.ALLOW),
    ("GET", "/open", OUTSIDE, Decision.ALLOW),
])
def test_each_routes_allowlist_closes_only_its_own_paths(method, path, caller, decision):
    assert _merged().decide(arn(method, path), caller) is decision
