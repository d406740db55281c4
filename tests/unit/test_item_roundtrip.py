"""Route documents <-> DynamoDB items, as written with ``aws dynamodb put-item``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control_plane.model.item import from_item, to_item
from control_plane.model.validation import validate_route

VALID = sorted((Path(__file__).resolve().parents[2] / "schemas/examples/valid").glob("*.json"))
PLAIN_TYPES = {"S", "N", "BOOL", "L", "M", "NULL"}


def attribute_types(value: dict) -> set[str]:
    found = set()
    for kind, inner in value.items():
        found.add(kind)
        if kind == "L":
            for item in inner:
                found |= attribute_types(item)
        if kind == "M":
            for item in inner.values():
                found |= attribute_types(item)
    return found


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_example_survives_a_round_trip_through_dynamodb_unchanged(path):
    doc = json.loads(path.read_text())
    back = from_item(to_item(doc))
    assert back == doc
    assert json.dumps(back, sort_keys=True) == json.dumps(doc, sort_keys=True)


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_item_uses_only_the_types_a_person_writes_by_hand(path):
    item = to_item(json.loads(path.read_text()))
    kinds = set().union(*(attribute_types(value) for value in item.values()))
    assert kinds <= PLAIN_TYPES


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_full_document_round_trip_keeps_the_spec_hash(path):
    route = validate_route(json.loads(path.read_text()))
    assert validate_route(from_item(to_item(route.to_document()))).spec_hash() == (
        route.spec_hash()
    )


def test_item_written_with_the_aws_cli_reads_as_a_valid_route():
    item = {
        "route_id": {"S": "payments"},
        "path": {"S": "/payments/{proxy+}"},
        "methods": {"L": [{"S": "GET"}, {"S": "POST"}]},
        "upstreams": {"L": [
            {"M": {"name": {"S": "primary"}, "url": {"S": "https://api.example.com"},
                   "priority": {"N": "0"}}},
            {"M": {"name": {"S": "backup"}, "url": {"S": "https://backup.example.com"},
                   "priority": {"N": "1"}, "weight": {"N": "1.0"}}},
        ]},
        "timeout_ms": {"N": "10000"},
        "security": {"M": {"allowed_cidrs": {"L": []}, "api_key_required": {"BOOL": True}}},
    }
    doc = from_item(item)
    assert doc["timeout_ms"] == 10000 and type(doc["timeout_ms"]) is int
    assert doc["upstreams"][1]["weight"] == 1 and type(doc["upstreams"][1]["weight"]) is int
    route = validate_route(doc)
    assert route.primary().name == "primary"
    assert route.security.api_key_required is True


def test_numbers_read_back_as_int_when_whole_and_float_otherwise():
    doc = from_item({"a": {"N": "5"}, "b": {"N": "5.50"}, "c": {"N": "-0"}, "d": {"N": "1E+3"},
                     "e": {"N": "12345678901234567890123456789012345678"}})
    assert doc == {"a": 5, "b": 5.5, "c": 0, "d": 1000,
                   "e": 12345678901234567890123456789012345678}
    assert [type(doc[k]) for k in "abcde"] == [int, float, int, int, int]


def test_sets_read_back_as_sorted_lists():
    doc = from_item({"methods": {"SS": ["POST", "GET"]}, "statuses": {"NS": ["204", "200"]}})
    assert doc == {"methods": ["GET", "POST"], "statuses": [200, 204]}


def test_null_and_booleans_round_trip():
    doc = {"a": None, "b": True, "c": False, "d": [None, {"e": False}], "f": {}, "g": ""}
    assert to_item(doc)["a"] == {"NULL": True}
    assert from_item(to_item(doc)) == doc


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e-200, 1e200, 10**40 + 1])
def test_numbers_dynamodb_cannot_hold_are_refused(value):
    with pytest.raises(ValueError):
        to_item({"x": value})


@pytest.mark.parametrize("value", [b"bytes", {1, 2}, object()])
def test_values_json_cannot_hold_are_refused(value):
    with pytest.raises(TypeError):
        to_item({"x": value})


json_values = st.recursive(
    st.none() | st.booleans() | st.text(max_size=20)
    | st.integers(min_value=-(10**37), max_value=10**37)
    | st.floats(min_value=-1e100, max_value=1e100).filter(
        lambda f: not f.is_integer() and (f == 0 or abs(f) > 1e-100)
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=10,
)


@settings(max_examples=60, deadline=None, database=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=6))
def test_any_json_document_survives_a_round_trip(doc):
    assert from_item(to_item(doc)) == doc
