"""The route contract's examples, its JSON Schema and its reference page agree with the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from control_plane.errors import InvalidRouteError
from control_plane.model import validation
from control_plane.model.route import Route
from control_plane.model.schema import SCHEMA_PATH, main, render_reference, render_schema
from control_plane.model.validation import REASONS, validate_route

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
VALID = sorted((EXAMPLES / "valid").glob("*.json"))
INVALID = sorted(p for p in (EXAMPLES / "invalid").glob("*.json") if p.name != "expected.json")
EXPECTED = json.loads((EXAMPLES / "invalid" / "expected.json").read_text())
SCHEMA = json.loads(SCHEMA_PATH.read_text())
VALIDATOR = Draft202012Validator(SCHEMA)


def load(path: Path) -> object:
    return json.loads(path.read_text())


def model_accepts(doc: object) -> bool:
    try:
        Route.model_validate(doc)
    except ValidationError:
        return False
    return True


def test_there_are_enough_examples_of_each_kind():
    assert len(VALID) >= 6
    assert len(INVALID) >= 20


def test_every_invalid_example_has_an_expected_problem_and_no_stale_entries():
    assert sorted(EXPECTED) == sorted(p.name for p in INVALID)


def test_invalid_examples_cover_schema_and_rule_failures():
    schema_level = [p for p in INVALID if not VALIDATOR.is_valid(load(p))]
    rule_level = [p for p in INVALID if VALIDATOR.is_valid(load(p))]
    assert len(schema_level) >= 10
    assert len(rule_level) >= 10


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_example_passes_the_json_schema(path):
    errors = [e.message for e in VALIDATOR.iter_errors(load(path))]
    assert errors == []


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_example_passes_route_validation(path):
    route = validate_route(load(path))
    assert route.route_id == load(path)["route_id"]


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_example_is_rejected_with_its_expected_field_and_reason(path):
    expected = EXPECTED[path.name]
    with pytest.raises(InvalidRouteError) as caught:
        validate_route(load(path))
    found = [(p.field, p.reason) for p in caught.value.problems]
    assert (expected["field"], expected["reason"]) in found
    assert all(p.message for p in caught.value.problems)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_example_reports_only_what_its_name_says(path):
    problems = validation.check_route(load(path))[1]
    assert {p.reason for p in problems} == {EXPECTED[path.name]["reason"]}


@pytest.mark.parametrize("path", VALID + INVALID, ids=lambda p: p.parent.name + "/" + p.name)
def test_json_schema_and_model_give_the_same_structural_verdict(path):
    doc = load(path)
    assert VALIDATOR.is_valid(doc) == model_accepts(doc)


def test_committed_schema_is_what_the_model_generates():
    assert SCHEMA_PATH.read_text() == render_schema(), (
        "schemas/route.schema.json is stale: run python -m control_plane.model.schema"
    )


def test_committed_reference_page_is_what_the_model_generates():
    reference = SCHEMA_PATH.parents[1] / "docs" / "route-reference.md"
    assert reference.read_text() == render_reference(), (
        "docs/route-reference.md is stale: run python -m control_plane.model.schema --docs"
    )


def test_schema_check_command_reports_a_stale_file(tmp_path, capsys):
    stale = tmp_path / "route.schema.json"
    stale.write_text("{}\n")
    assert main(["--check", "--output", str(stale)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main(["--output", str(stale)]) == 0
    assert main(["--check", "--output", str(stale)]) == 0


def test_schema_is_draft_2020_12_with_an_id():
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"]


def _objects(node):
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def test_every_object_in_the_schema_refuses_unknown_fields():
    objects = list(_objects(SCHEMA))
    assert len(objects) == 1 + len(SCHEMA["$defs"])
    assert all(obj.get("additionalProperties") is False for obj in objects)


def test_schema_states_that_an_upstream_has_url_or_targets():
    upstream = SCHEMA["$defs"]["Upstream"]
    assert upstream["oneOf"] == [{"required": ["url"]}, {"required": ["targets"]}]


def _leaves(node, path=""):
    if isinstance(node, dict):
        if "type" in node and node["type"] != "object":
            yield path, node
        for key, value in node.items():
            yield from _leaves(value, f"{path}/{key}")


def test_every_string_and_list_in_the_schema_has_a_size_bound():
    for path, node in _leaves(SCHEMA):
        if node["type"] == "string" and "enum" not in node:
            assert "maxLength" in node, path
        if node["type"] == "array":
            assert "maxItems" in node, path


def test_every_property_has_a_description():
    for name, obj in [("Route", SCHEMA), *SCHEMA["$defs"].items()]:
        for field, prop in obj["properties"].items():
            ref = prop.get("$ref", "").rsplit("/", 1)[-1]
            described = prop.get("description") or SCHEMA["$defs"].get(ref, {}).get(
                "description"
            )
            assert described, f"{name}.{field}"


def test_every_reason_code_is_documented_in_the_validation_module():
    doc = validation.__doc__ or ""
    missing = [reason for reason in REASONS if f"``{reason}``" not in doc]
    assert missing == []


def test_expected_reasons_are_known_reason_codes():
    assert {e["reason"] for e in EXPECTED.values()} <= set(REASONS)
