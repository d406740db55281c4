"""What a route document means: strict reading, defaults, the spec hash, priorities."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from control_plane.errors import InvalidRouteError
from control_plane.model.route import Route
from control_plane.model.validation import check_route, route_id_of, validate_route

REPO = Path(__file__).resolve().parents[2]
VALID = sorted((REPO / "schemas" / "examples" / "valid").glob("*.json"))


def minimal(**extra) -> dict:
    doc = {
        "route_id": "payments",
        "path": "/payments/{proxy+}",
        "upstreams": [{"name": "primary", "url": "https://api.example.com", "priority": 0}],
    }
    doc.update(extra)
    return doc


def problems_of(doc: object) -> list[tuple[str, str]]:
    with pytest.raises(InvalidRouteError) as caught:
        validate_route(doc)
    return [(p.field, p.reason) for p in caught.value.problems]


# ---- strict reading -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("timeout_ms", "5000"), ("timeout_ms", True), ("timeout_ms", 5000.5),
     ("methods", "GET"), ("mode", ["direct"]), ("description", 5)],
)
def test_values_of_the_wrong_type_are_not_coerced(field, value):
    assert problems_of(minimal(**{field: value})) == [(field, "WrongType")]


def test_a_whole_number_written_as_a_decimal_is_that_integer():
    route = validate_route(minimal(timeout_ms=5000.0))
    assert route.timeout_ms == 5000
    assert isinstance(route.timeout_ms, int)


def test_null_is_refused_for_an_optional_field():
    assert problems_of(minimal(upstream_auth=None)) == [("upstream_auth", "WrongType")]


def test_a_route_cannot_be_changed_after_reading():
    route = validate_route(minimal())
    with pytest.raises(ValidationError):
        route.timeout_ms = 100  # type: ignore[misc]


def test_a_typo_is_named_with_a_suggestion():
    with pytest.raises(InvalidRouteError) as caught:
        validate_route(minimal(health_check={"interval_second": 30}))
    [problem] = caught.value.problems
    assert problem.field == "health_check.interval_second"
    assert problem.reason == "UnknownField"
    assert "interval_seconds" in problem.message


def test_every_problem_is_reported_not_only_the_first():
    doc = minimal(route_id="Bad_Id", timeout_ms=10, methods=["GET", "GET"], extra=1)
    assert problems_of(doc) == [
        ("route_id", "PatternMismatch"),
        ("methods", "DuplicateItem"),
        ("timeout_ms", "OutOfRange"),
        ("extra", "UnknownField"),
    ]


def test_every_broken_rule_is_reported_not_only_the_first():
    doc = minimal(
        path="/a//b",
        methods=["ANY", "GET"],
        upstreams=[
            {"name": "a", "url": "https://10.0.0.1", "priority": 1},
            {"name": "a", "url": "ftp://x.example", "priority": 2},
        ],
        security={"allowed_cidrs": ["10.0.0.0/33"]},
    )
    assert set(problems_of(doc)) == {
        ("path", "InvalidPath"),
        ("methods", "AnyMethodNotAlone"),
        ("upstreams[1].name", "DuplicateUpstreamName"),
        ("upstreams", "NoPrimaryUpstream"),
        ("upstreams[0].url", "UpstreamAddressNotAllowed"),
        ("upstreams[1].url", "UpstreamSchemeNotAllowed"),
        ("security.allowed_cidrs[0]", "InvalidCidr"),
    }


def test_a_flood_of_problems_is_cut_short_with_a_count():
    doc = minimal(**{f"junk{i}": i for i in range(10_000)})
    with pytest.raises(InvalidRouteError) as caught:
        validate_route(doc)
    problems = caught.value.problems
    assert len(problems) == 51
    assert problems[-1].reason == "TooManyProblems"
    assert "9950 more" in problems[-1].message
    assert len(str(caught.value)) < 10_000


def test_a_document_that_is_not_an_object_is_rejected_as_a_whole():
    assert problems_of("route") == [("", "WrongType")]


def test_check_route_returns_no_route_when_anything_is_wrong():
    route, problems = check_route(minimal(path="/a/"))
    assert route is None
    assert [p.reason for p in problems] == ["InvalidPath"]
    route, problems = check_route(minimal())
    assert route is not None and problems == []


@pytest.mark.parametrize(
    ("doc", "expected"),
    [(minimal(), "payments"), ({"route_id": "x-1"}, "x-1"), ({"route_id": "Bad"}, None),
     ({"route_id": "a" * 64}, None), ({"route_id": 5}, None), ({"route_id": "ok\n"}, None),
     ([], None), (None, None)],
)
def test_route_id_is_named_in_messages_only_when_well_formed(doc, expected):
    assert route_id_of(doc) == expected


def test_rejection_carries_the_route_id():
    with pytest.raises(InvalidRouteError) as caught:
        validate_route(minimal(timeout_ms=0))
    assert caught.value.route_id == "payments"
    assert caught.value.reason == "OutOfRange"


# ---- paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/", "/a", "/a/b", "/payments/{proxy+}", "/users/{user_id}/orders/{order_id}",
     "/v1.2/a_b/c~d/e-f", "/{proxy+}", "/files/{path+}"],
)
def test_api_gateway_resource_paths_are_accepted(path):
    assert validate_route(minimal(path=path)).path == path


@pytest.mark.parametrize(
    "path",
    ["", "a/b", "/a/", "//", "/a//b", "/a/../b", "/..", "/.", "/a/./b", "/{proxy+}/x",
     "/a/{id}/b/{id}", "/a b", "/a%2e", "/a?b=1", "/a#b", "/{}", "/{a}{b}", "/x{id}",
     "/caf\u00e9", "/a\n"],
)
def test_paths_outside_the_resource_path_shape_are_rejected(path):
    reasons = {reason for _, reason in problems_of(minimal(path=path))}
    assert reasons <= {"InvalidPath", "TooShort"} and reasons


# ---- defaults and the document --------------------------------------------------------------


def test_defaults_are_filled_in():
    route = validate_route(minimal())
    assert route.methods == ["ANY"]
    assert route.mode == "direct"
    assert route.timeout_ms == 29000
    assert route.health_check.interval_seconds == 10
    assert route.health_check.timeout_ms == 2000
    assert route.health_check.expected_statuses == [200]
    assert route.failover.min_hold_seconds == 300
    assert route.security.allowed_cidrs == []
    assert route.retries.attempts == 1
    assert route.upstreams[0].weight == 1
    assert route.upstreams[0].allow_insecure is False


def test_document_includes_defaults_and_leaves_out_absent_optionals():
    document = validate_route(minimal()).to_document()
    assert document["health_check"]["unhealthy_threshold"] == 3
    assert "upstream_auth" not in document
    assert "description" not in document
    assert "rate_limit" not in document["security"]
    assert "targets" not in document["upstreams"][0]
    json.dumps(document)


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_a_routes_document_reads_back_as_the_same_route(path):
    route = validate_route(json.loads(path.read_text()))
    again = validate_route(route.to_document())
    assert again == route
    assert again.spec_hash() == route.spec_hash()


# ---- the spec hash --------------------------------------------------------------------------


def test_spec_hash_ignores_key_order_and_written_out_defaults():
    doc = minimal()
    reordered = dict(reversed(list(doc.items())))
    explicit = minimal(mode="direct", methods=["ANY"], timeout_ms=29000,
                       failover={"automatic": True})
    hashes = {validate_route(d).spec_hash() for d in (doc, reordered, explicit)}
    assert len(hashes) == 1
    assert len(hashes.pop()) == 64


def test_spec_hash_changes_when_the_route_changes():
    assert validate_route(minimal()).spec_hash() != validate_route(
        minimal(timeout_ms=28000)
    ).spec_hash()


def test_spec_hash_is_the_same_in_another_process():
    code = (
        "import json,sys; from control_plane.model.validation import validate_route;"
        "print(validate_route(json.load(sys.stdin)).spec_hash())"
    )
    doc = json.loads(VALID[0].read_text())
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(doc), capture_output=True, text=True,
        cwd=REPO, env=env, check=True, timeout=60,
    ).stdout.strip()
    assert out == validate_route(doc).spec_hash()


# ---- priorities -----------------------------------------------------------------------------


def test_upstreams_sort_by_priority_keeping_list_order_within_a_priority():
    doc = minimal(
        mode="proxy",
        upstreams=[
            {"name": "dr", "url": "https://dr.example", "priority": 2},
            {"name": "b", "url": "https://b.example", "priority": 0},
            {"name": "backup", "url": "https://backup.example", "priority": 1},
            {"name": "a", "url": "https://a.example", "priority": 0},
        ],
    )
    route = validate_route(doc)
    assert [u.name for u in route.upstreams_by_priority()] == ["b", "a", "backup", "dr"]
    assert route.primary().name == "b"
    assert [u.name for u in route.upstreams] == ["dr", "b", "backup", "a"]


def test_upstream_kind_says_url_or_targets():
    route = validate_route(json.loads((VALID[0].parent / "targets-in-vpc.json").read_text()))
    assert {u.kind for u in route.upstreams} == {"targets"}
    assert validate_route(minimal()).primary().kind == "url"


def test_model_reads_the_same_as_validate_route_for_valid_input():
    doc = minimal()
    assert Route.model_validate(doc) == validate_route(doc)
