"""The failover workflow's definition: what AWS and the local interpreter both can run."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from local_cloud.template import load_template

ROOT = Path(__file__).resolve().parents[2]
DEFINITION = json.loads((ROOT / "cloudformation" / "failover.asl.json").read_text())
STATES = DEFINITION["States"]


def targets(state: dict) -> set[str]:
    found = {state[k] for k in ("Next", "Default") if k in state}
    found |= {c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])}
    return found


def walk(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def test_every_transition_names_a_state_and_every_state_is_reachable():
    seen, todo = set(), [DEFINITION["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        assert name in STATES, f"transition to a missing state {name!r}"
        seen.add(name)
        todo.extend(targets(STATES[name]))
    assert seen == set(STATES)


def test_only_jsonpath_no_jsonata_or_variables():
    keys = {key for key, _ in walk(DEFINITION)}
    assert not keys & {"QueryLanguage", "Assign", "Arguments", "Output"}
    strings = [v for _, v in walk(DEFINITION) if isinstance(v, str)]
    assert not [s for s in strings if s.startswith("{%")]


def test_no_null_values_since_they_are_lost_on_the_way_through_cloudformation_locally():
    assert [k for k, v in walk(DEFINITION) if v is None] == []


def test_every_task_that_can_fail_after_locking_is_caught():
    for name, state in STATES.items():
        if state["Type"] != "Task":
            continue
        catches = [e for c in state.get("Catch", []) for e in c["ErrorEquals"]]
        assert "States.ALL" in catches, f"{name} has no catch-all"


def test_every_path_to_a_failure_unlocks_first():
    for name, state in STATES.items():
        if state["Type"] == "Fail" and name not in ("InvalidInput", "UnlockFailed"):
            feeders = [n for n, s in STATES.items() if name in targets(s)]
            assert feeders and all(STATES[f].get("Parameters", {}).get("UpdateExpression", "")
                                    .startswith("REMOVE lock_owner") for f in feeders), name


def test_the_lock_is_a_conditional_write_with_an_expiry():
    lock = STATES["Lock"]
    assert lock["Resource"] == "arn:aws:states:::dynamodb:updateItem"
    assert "lock_expires_at < :now" in lock["Parameters"]["ConditionExpression"]
    release = STATES["Unlock"]["Parameters"]
    assert release["ConditionExpression"].startswith("lock_owner = :owner")


def test_events_are_published_by_native_tasks_on_the_stack_bus():
    published = {s["Parameters"]["Entries"][0].get("DetailType") or "(from the switch)"
                 for s in STATES.values() if s.get("Resource") == "arn:aws:states:::events:putEvents"}
    assert published == {"Failover Started", "(from the switch)", "All Upstreams Unhealthy",
                         "Failover Failed"}
    for state in STATES.values():
        if state.get("Resource") == "arn:aws:states:::events:putEvents":
            entry = state["Parameters"]["Entries"][0]
            assert (entry["Source"], entry["EventBusName"]) == ("turnout", "${EventBusName}")


def test_the_template_deploys_this_definition_with_its_substitutions():
    template = load_template(ROOT / "cloudformation" / "turnout.yaml")
    machine = template["Resources"]["FailoverStateMachine"]["Properties"]
    assert machine["DefinitionS3Location"] == "failover.asl.json"
    text = json.dumps(DEFINITION)
    for name in machine["DefinitionSubstitutions"]:
        assert "${" + name + "}" in text
    assert machine["StateMachineType"] == "STANDARD"  # exactly-once, names de-duplicated


@pytest.mark.parametrize("path", sorted((ROOT / "schemas" / "events").glob("*.schema.json")),
                         ids=lambda p: p.name)
def test_event_schemas_are_valid_json_schemas(path):
    jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))
