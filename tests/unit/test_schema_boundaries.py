"""The JSON Schema and the model agree at every constraint's edge.

For every field of every object in the schema, a valid example is edited to put the field just
inside and just outside each of its bounds (numbers, lengths, item counts), to each allowed and
almost-allowed choice, and to values of every other JSON type. The schema and the model must
give the same verdict on each edited document.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from control_plane.model.route import Route
from control_plane.model.schema import SCHEMA_PATH

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples" / "valid"
SCHEMA = json.loads(SCHEMA_PATH.read_text())
DEFS = SCHEMA["$defs"]
VALIDATOR = Draft202012Validator(SCHEMA)
OTHER_TYPES: list[Any] = [None, True, False, "1", 1, 1.0, 0.5, -1, [], {}, float("nan")]


def _ref(prop: dict) -> str | None:
    ref = prop.get("$ref") or prop.get("items", {}).get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def objects_in(doc: Any, schema: dict, name: str = "Route", path: tuple = ()):
    """(object name, object schema, path) for every object of ``doc`` the schema describes."""
    yield name, schema, path
    for key, prop in schema["properties"].items():
        ref = _ref(prop)
        if ref is None or key not in doc:
            continue
        if prop.get("type") == "array":
            for index, item in enumerate(doc[key]):
                yield from objects_in(item, DEFS[ref], ref, (*path, key, index))
        else:
            yield from objects_in(doc[key], DEFS[ref], ref, (*path, key))


def pool(items: dict, current: list) -> list:
    """Distinct items of the kind a list holds, as many as any bound needs."""
    if "enum" in items:
        return list(items["enum"])
    if items.get("type") == "integer":
        return list(range(items.get("minimum", 0), items.get("minimum", 0) + 30))
    if items.get("type") == "string":
        return [f"10.{i}.0.0/16" for i in range(60)]
    seed = current[0] if current else {}
    made = []
    for i in range(25):
        item = copy.deepcopy(seed)
        if "name" in item:
            item["name"] = f"n{i}"
            item["priority"] = i % 3
        if "ip" in item:
            item["ip"] = f"10.0.0.{i + 1}"
        made.append(item)
    return made


def edge_values(prop: dict, current: Any) -> list[Any]:
    values = list(OTHER_TYPES)
    kind = prop.get("type")
    if kind == "integer":
        for bound in (prop.get("minimum"), prop.get("maximum")):
            if bound is not None:
                values += [bound - 1, bound, bound + 1, float(bound), bound + 0.5, bound - 0.5]
    if kind == "string":
        base = current if isinstance(current, str) and current else "a"
        for length in (prop.get("minLength"), prop.get("maxLength")):
            if length is not None:
                for n in (length - 1, length, length + 1):
                    if n >= 0:
                        values.append((base + base[-1] * n)[:n])
        values += [base + "\n", "\n" + base, base.upper(), " " + base, base + "\u00e9", ""]
        for choice in prop.get("enum", []):
            values += [choice, choice.lower(), choice + " ", choice + "\n"]
    if kind == "array":
        items = prop.get("items", {})
        current_list = current if isinstance(current, list) else []
        distinct = pool(items, current_list)
        for length in (prop.get("minItems"), prop.get("maxItems")):
            if length is not None:
                for n in (length - 1, length, length + 1):
                    if 0 <= n <= len(distinct):
                        values.append(distinct[:n])
        if current_list:
            values += [current_list + current_list[:1], [*current_list, None]]
        if "$ref" not in items:
            sample = current_list[0] if current_list else None
            values += [[v] for v in edge_values(items, sample)]
    if _ref(prop) and kind != "array":
        values += [{}, {"unknown": 1}]
    return values


def edited(doc: Any, path: tuple, key: str, value: Any) -> Any:
    out = copy.deepcopy(doc)
    node = out
    for part in path:
        node = node[part]
    if value is _DELETE:
        node.pop(key, None)
    else:
        node[key] = value
    return out


_DELETE = object()


def edits() -> list[tuple[str, Any]]:
    seen: set[str] = set()
    cases: list[tuple[str, Any]] = []
    for example in sorted(EXAMPLES.glob("*.json")):
        doc = json.loads(example.read_text())
        for name, schema, path in objects_in(doc, SCHEMA):
            node = doc
            for part in path:
                node = node[part]
            for key, prop in schema["properties"].items():
                for value in [_DELETE, *edge_values(prop, node.get(key))]:
                    label = f"{name}.{key}={json.dumps(value, default=lambda _: 'DELETE')[:40]}"
                    marker = f"{name}.{key}:" + json.dumps(value, default=lambda _: "DELETE")
                    if marker in seen:
                        continue
                    seen.add(marker)
                    cases.append((label, edited(doc, path, key, value)))
    return cases


EDITS = edits()


def model_accepts(doc: object) -> bool:
    try:
        Route.model_validate(doc)
    except ValidationError:
        return False
    return True


@functools.cache
def schema_verdicts() -> tuple[bool, ...]:
    return tuple(VALIDATOR.is_valid(doc) for _, doc in EDITS)


def test_edits_cover_every_object_and_both_verdicts():
    names = {label.split(".", 1)[0] for label, _ in EDITS}
    assert names == {"Route", *DEFS}
    assert schema_verdicts().count(True) >= 100
    assert schema_verdicts().count(False) >= 500


def test_schema_and_model_agree_at_every_edge():
    disagreements = [
        (label, schema_says)
        for (label, doc), schema_says in zip(EDITS, schema_verdicts(), strict=True)
        if schema_says != model_accepts(doc)
    ]
    assert disagreements == []


@pytest.mark.parametrize("field", ["route_id", "timeout_ms", "methods", "description"])
def test_an_edge_just_outside_a_bound_is_refused_by_both(field):
    outside = {
        "route_id": "r" * 64,
        "timeout_ms": 29001,
        "methods": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "ANY", "GET"],
        "description": "d" * 1025,
    }[field]
    doc = json.loads((EXAMPLES / "minimal.json").read_text())
    doc[field] = outside
    assert not VALIDATOR.is_valid(doc)
    assert not model_accepts(doc)
