"""Generated and mutated route documents.

Two properties, over thousands of documents built from the valid examples by mutation (keys
dropped, renamed or added, values replaced by wrong types, huge strings, unicode, NaN and
infinity, negative and boundary numbers, nested junk) and built from scratch:

- the JSON Schema and the pydantic model always give the same verdict on a JSON document;
- ``validate_route`` never raises anything but ``InvalidRouteError``, whatever the input, and
  every rejection explains itself.
"""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError

from control_plane.errors import InvalidRouteError
from control_plane.model import route as route_module
from control_plane.model.route import Route
from control_plane.model.schema import SCHEMA_PATH
from control_plane.model.validation import REASONS, validate_route

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "schemas" / "examples"
VALID_DOCS = [json.loads(p.read_text()) for p in sorted((EXAMPLES_DIR / "valid").glob("*.json"))]
VALIDATOR = Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
PROPERTY_SETTINGS = settings(
    max_examples=100, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

FIELD_NAMES = sorted({
    name
    for model in vars(route_module).values()
    if isinstance(model, type) and issubclass(model, BaseModel) and model is not BaseModel
    for name in model.model_fields
} | {"ip", "port"})
BOUNDARY_INTS = [
    -(2**63), -1, 0, 1, 2, 4, 5, 10, 11, 20, 21, 43, 50, 63, 64, 99, 100, 120, 199, 200, 299,
    300, 301, 499, 500, 599, 600, 999, 1000, 1024, 1999, 2000, 5000, 10000, 28999, 29000, 29001,
    65535, 65536, 86400, 86401, 120000, 120001, 2**31, 2**64, 10**30,
]
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:key-AbCdEf"
SPECIAL_STRINGS = [
    "", " ", "x", "GET", "ANY", "POST", "OPTIONS", "get", "direct", "proxy", "5xx", "timeout",
    "connect-failure", "https://api.example.com", "https://api.example.com/v1/", "http://a.b",
    "https://127.0.0.1", "https://[::1]", "https://0x7f.1", "https://localhost", "ftp://a.b",
    "10.0.0.1", "8.8.8.8", "fd00::1", "127.0.0.1", "203.0.113.0/24", "10.0.0.1/8", "::/0",
    "/", "/a", "/a/{proxy+}", "/a/../b", "/{id}", "{secret}", "Bearer {secret}", ARN,
    "Authorization", "Host", "a" * 63, "a" * 64, "a-" * 31, "x" * 45, "x" * 512, "x" * 513,
    "x" * 1024, "x" * 1025, "x" * 100_000, "é", "\u202e", "\x00", "\t", "5", "5.0", "true",
    "null", "abc\n", "\U0001f642" * 10, "ÅNY", "GET ", "primary",
]
SPECIAL_STRINGS.extend(FIELD_NAMES)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.sampled_from(BOUNDARY_INTS),
    st.sampled_from([float(n) for n in BOUNDARY_INTS if abs(n) < 2**53]),
    st.floats(),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), -0.0, 0.5, 1e308]),
    st.text(max_size=12),
    st.sampled_from(SPECIAL_STRINGS),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


class Nested(list):
    """A list too deep (or cyclic) to print: it names itself instead."""

    def __repr__(self) -> str:
        return f"<nested list {id(self):x}>"


class NestedDict(dict):
    """A mapping too deep (or cyclic) to print: it names itself instead."""

    def __repr__(self) -> str:
        return f"<nested dict {id(self):x}>"


def deep_list(depth: int) -> list:
    node: list = []
    for _ in range(depth):
        node = [node]
    return Nested(node)


def deep_dict(depth: int) -> dict:
    node: dict = {}
    for _ in range(depth):
        node = {"upstreams": node}
    return NestedDict(node)


CYCLIC_LIST: list = Nested()
CYCLIC_LIST.append(CYCLIC_LIST)
CYCLIC_DICT: dict = NestedDict(route_id="cycle")
CYCLIC_DICT["upstreams"] = [CYCLIC_DICT]
SHARED_ODDITIES = [deep_list(20_000), deep_dict(20_000), CYCLIC_LIST, CYCLIC_DICT]
ODDITY_IDS = {id(value) for value in SHARED_ODDITIES}


def oddity(index: int) -> Any:
    return SHARED_ODDITIES[index]


class Opaque:
    """An object no JSON parser produces."""


exotic_scalars = st.one_of(
    st.binary(max_size=8),
    st.sampled_from([b"GET", bytearray(b"x"), (1, 2), ("GET",), frozenset({"GET"}), {"GET"},
                     Decimal("5"), Decimal("NaN"), 5 + 0j, Opaque(), Opaque, len, range(3),
                     "\ud800", "a\udfffb"]),
    st.sampled_from([5000, -5000]).map(lambda n: 10 ** abs(n) * (1 if n > 0 else -1)),
    st.integers(min_value=0, max_value=len(SHARED_ODDITIES) - 1).map(oddity),
)
any_values = st.recursive(
    st.one_of(json_scalars, exotic_scalars),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.integers(0, 3) | st.none(), inner,
                      max_size=3)
    | st.tuples(inner),
    max_leaves=8,
)

payloads = st.one_of(
    st.sampled_from(BOUNDARY_INTS),
    st.sampled_from([float(n) for n in BOUNDARY_INTS if abs(n) < 2**53] + [0.5, float("nan")]),
    st.sampled_from(SPECIAL_STRINGS),
    st.booleans(),
    json_values,
)

OPS = ["delete", "rename", "replace", "insert", "append", "remove_item", "duplicate_item",
       "nudge", "nudge"]
RENAMES = [str.upper, lambda k: k + "s", lambda k: k[:-1], lambda k: k.replace("_", "-"),
           lambda k: k + " ", lambda k: "\u00e9" + k]


def steps(values: st.SearchStrategy) -> st.SearchStrategy:
    """Up to three edits: where (choices along a path), what, with which value and key."""
    return st.lists(
        st.tuples(
            st.lists(st.integers(min_value=0, max_value=40), max_size=5),
            st.sampled_from(OPS),
            values,
            st.sampled_from(FIELD_NAMES) | st.text(max_size=6),
            st.integers(min_value=0, max_value=len(RENAMES) - 1),
        ),
        min_size=1,
        max_size=3,
    )


def _copy(value: Any) -> Any:
    if id(value) in ODDITY_IDS:
        return value
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def mutate(doc: Any, plan: list) -> Any:
    """Apply each step of ``plan`` to a copy of ``doc``; shared oddities are never changed."""
    doc = _copy(doc)
    for path, op, value, key, rename in plan:
        doc = _apply(doc, path, op, _copy(value), key, RENAMES[rename])
    return doc


def _apply(doc: Any, path: list[int], op: str, value: Any, key: Any, rename: Any) -> Any:
    if not path and op == "replace":
        return value
    node = doc
    for choice in path:
        if id(node) in ODDITY_IDS:
            return doc
        children = list(node.values()) if isinstance(node, dict) else node
        if not isinstance(node, dict | list) or not children:
            break
        child = children[choice % len(children)]
        if not isinstance(child, dict | list) or id(child) in ODDITY_IDS:
            break
        node = child
    if id(node) in ODDITY_IDS:
        return doc
    position = sum(path) if path else 0
    if isinstance(node, dict):
        keys = list(node)
        target = keys[position % len(keys)] if keys else None
        if op == "delete" and target is not None:
            del node[target]
        elif op == "rename" and isinstance(target, str):
            node[rename(target) if rename(target) != target else target + "x"] = node.pop(target)
        elif op == "nudge" and target is not None:
            node[target] = _nudge(node[target], value)
        elif op in ("replace", "append", "duplicate_item") and target is not None:
            node[target] = value
        else:
            node[key] = value
    elif isinstance(node, list):
        if op == "append" or not node:
            node.append(value)
        elif op == "nudge":
            index = position % len(node)
            node[index] = _nudge(node[index], value)
        elif op == "remove_item":
            node.pop(position % len(node))
        elif op == "duplicate_item":
            node.append(_copy(node[position % len(node)]))
        else:
            node[position % len(node)] = value
    return doc


def _nudge(current: Any, value: Any) -> Any:
    """A value next to ``current``: one more or less, a little longer, another case."""
    if isinstance(current, bool):
        return not current
    if isinstance(current, int):
        return current + (value if isinstance(value, int) and abs(value) <= 2 else 1)
    if isinstance(current, str):
        return current + "\n" if isinstance(value, bool) else current.upper() + "-x"
    if isinstance(current, list) and current:
        return [*current, current[0]]
    return value


# ---- documents built from scratch -----------------------------------------------------------


def pick(good: tuple, bad: tuple = ()) -> st.SearchStrategy:
    """Mostly a good value; sometimes a bad one; now and then any JSON scalar."""
    choices = {"good": st.sampled_from(good), "bad": st.sampled_from(bad or good),
               "junk": json_scalars}
    return st.sampled_from(["junk"] * 2 + ["bad"] * 4 + ["good"] * 94).flatmap(choices.get)


def or_junk(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """``strategy``, or (rarely) any JSON scalar in its place."""
    return st.sampled_from([False] + [True] * 29).flatmap(
        lambda keep: strategy if keep else json_scalars
    )


names = pick(("primary", "backup", "a", "b-2", "0", "n" * 63), ("Primary", "a" * 64, ""))
target_dicts = st.fixed_dictionaries(
    {"ip": pick(("10.0.0.1", "10.0.0.2", "fd00::1", "100.64.1.1"), ("8.8.8.8", "10.1")),
     "port": pick((1, 443, 8443, 65535), (0, 65536, "443"))},
)
upstream_common = {
    "name": names,
    "priority": pick((0, 1, 2, 99), (100, -1, 0.0, 1.5)),
}
upstream_optional = {
    "weight": pick((1, 3, 999), (1000, 0)),
    "allow_insecure": pick((True, False)),
}
urls = pick(("https://api.example.com", "https://b.example/v1", "http://c.example"),
            ("https://10.0.0.1", "ftp://x.example", "x" * 513))
target_lists = or_junk(st.lists(target_dicts, min_size=1, max_size=3))
upstream_dicts = st.one_of(
    st.fixed_dictionaries({**upstream_common, "url": urls}, optional=upstream_optional),
    st.fixed_dictionaries({**upstream_common, "targets": target_lists},
                          optional=upstream_optional),
    st.fixed_dictionaries(upstream_common, optional={"url": urls, "targets": target_lists}),
)
health_checks = st.fixed_dictionaries({}, optional={
    "path": pick(("/", "/health", "/status?x=1"), ("health", "/a b", "/\n")),
    "interval_seconds": pick((5, 10, 300), (0, 301)),
    "timeout_ms": pick((100, 2000, 4000), (99, 120001)),
    "unhealthy_threshold": pick((2, 3, 10), (0, 11)),
    "healthy_threshold": pick((2, 5), (0, 11)),
    "expected_statuses": or_junk(
        st.lists(pick((200, 204, 302), (99, 600)), min_size=1, max_size=3, unique=True)
    ),
})
securities = st.fixed_dictionaries({}, optional={
    "api_key_required": pick((True, False)),
    "allowed_cidrs": or_junk(st.lists(pick(("203.0.113.0/24", "10.0.0.0/8"), ("x", "1" * 44)),
                                      max_size=3, unique=True)),
    "rate_limit": or_junk(st.fixed_dictionaries(
        {"requests_per_second": pick((1, 50), (0,)), "burst": pick((1, 100), (5001,))}
    )),
})
auths = st.fixed_dictionaries(
    {"header": pick(("Authorization", "X-Api-Key"), ("bad header", "")),
     "secret_arn": pick((ARN,), ("arn:aws:ssm:us-east-1:1:parameter/x",))},
    optional={"format": pick(("{secret}", "Bearer {secret}"), ("\n{secret}",))},
)
routes = st.fixed_dictionaries(
    {"route_id": pick(("payments", "a", "0-x", "r" * 63), ("Bad", "x" * 64, "r-\n")),
     "path": pick(("/payments/{proxy+}", "/a", "/"), ("", "x" * 1025)),
     "upstreams": or_junk(st.lists(upstream_dicts, min_size=1, max_size=3))},
    optional={
        "methods": or_junk(st.lists(pick(("GET", "POST", "ANY"), ("FETCH", "get")), min_size=1,
                                    max_size=3, unique=True)),
        "mode": pick(("direct", "proxy"), ("both",)),
        "health_check": or_junk(health_checks),
        "failover": or_junk(st.fixed_dictionaries({}, optional={
            "automatic": pick((True, False)), "failback": pick((True, False)),
            "min_hold_seconds": pick((0, 300), (86401, -1)),
        })),
        "security": or_junk(securities),
        "upstream_auth": or_junk(auths),
        "timeout_ms": pick((50, 29000), (49, 29001)),
        "retries": or_junk(st.fixed_dictionaries({}, optional={
            "attempts": pick((0, 5), (6,)),
            "on": st.lists(pick(("5xx", "timeout", "connect-failure"), ("4xx",)), max_size=3,
                           unique=True),
        })),
        "description": pick(("text", "", "d" * 1024), ("x" * 1025,)),
    },
)


# ---- the properties -------------------------------------------------------------------------


def model_accepts(doc: object) -> bool:
    try:
        Route.model_validate(doc)
    except ValidationError:
        return False
    return True


def assert_same_verdict(doc: object) -> None:
    schema_says = VALIDATOR.is_valid(doc)
    model_says = model_accepts(doc)
    assert schema_says == model_says, (
        f"schema says {schema_says}, model says {model_says}: "
        f"{[e.message[:200] for e in VALIDATOR.iter_errors(doc)]}"
    )


@PROPERTY_SETTINGS
@given(steps(payloads))
def test_schema_and_model_agree_on_mutated_examples(plan):
    for doc in VALID_DOCS:
        assert_same_verdict(mutate(doc, plan))


@PROPERTY_SETTINGS
@given(routes)
def test_schema_and_model_agree_on_generated_documents(doc):
    assert_same_verdict(doc)


@settings(PROPERTY_SETTINGS, max_examples=60)
@given(json_values)
def test_schema_and_model_agree_on_arbitrary_json(doc):
    assert_same_verdict(doc)


FIELD_PATH = re.compile(
    r"(?:[A-Za-z_][A-Za-z0-9_-]*|\[\d+\]|\[\".*\"\])(?:\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\]|\[\".*\"\])*",
    re.DOTALL,
)


def odd_resolver(host: str) -> Any:
    answers = {0: ["93.184.215.14"], 1: ["10.0.0.1", "not-an-ip", 5, None], 2: [], 3: None}
    return answers[len(host) % 4]


def assert_rejects_cleanly_or_accepts(doc: object) -> None:
    try:
        route = validate_route(doc, resolver=odd_resolver)
    except InvalidRouteError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.reason in REASONS
            assert problem.reason != "UnreadableDocument"
            assert problem.message and len(problem.message) <= 600
            assert len(problem.field) <= 300
            if problem.field:
                assert FIELD_PATH.fullmatch(problem.field), problem.field
            else:
                assert problem.reason in ("WrongType", "TooManyProblems")
    else:
        assert isinstance(route, Route)
        assert len(route.spec_hash()) == 64


@PROPERTY_SETTINGS
@given(steps(st.one_of(payloads, any_values)))
def test_validation_rejects_any_mutated_document_cleanly(plan):
    for doc in VALID_DOCS:
        assert_rejects_cleanly_or_accepts(mutate(doc, plan))


@PROPERTY_SETTINGS
@given(routes)
def test_validation_rejects_any_generated_document_cleanly(doc):
    assert_rejects_cleanly_or_accepts(doc)


@settings(PROPERTY_SETTINGS, max_examples=60)
@given(any_values)
def test_validation_rejects_any_value_cleanly(doc):
    assert_rejects_cleanly_or_accepts(doc)


def test_oddities_are_rejected_cleanly():
    for oddity in [*SHARED_ODDITIES, b"{}", "{}", 5, None, float("nan"), Opaque(), [VALID_DOCS],
                   {"route_id": "\ud800"}, {"route_id": "a", "path": "/" + "a" * 10**6},
                   {k: None for k in FIELD_NAMES}, {None: 1, 2: 3, (4,): 5}]:
        assert_rejects_cleanly_or_accepts(oddity)


def test_mutations_reach_both_verdicts():
    """The generators are worth something only if they make valid and invalid documents."""
    plan_keep = [([0], "rename", None, "x", 0)]
    renamed = mutate(VALID_DOCS[0], plan_keep)
    assert not model_accepts(renamed)
    harmless = mutate(VALID_DOCS[0], [([], "insert", "text", "description", 0)])
    assert model_accepts(harmless)
    assert copy.deepcopy(VALID_DOCS[0]) == VALID_DOCS[0]
