"""`turnout routes validate`: offline verdicts per route, every problem on its own line."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from control_plane.cli import main
from control_plane.model.validation import route_id_of

REPO = Path(__file__).resolve().parents[2]
VALID = sorted((REPO / "schemas/examples/valid").glob("*.json"))
INVALID_DIR = REPO / "schemas/examples/invalid"
EXPECTED_FILE = INVALID_DIR / "expected.json"
EXPECTED = json.loads(EXPECTED_FILE.read_text()) if EXPECTED_FILE.exists() else {}

GOOD_ROUTE = """\
- route_id: {route_id}
  path: /{route_id}/{{proxy+}}
  upstreams:
    - name: primary
      url: https://{route_id}.example.com
      priority: 0
"""


def validate(capsys, *args: str) -> tuple[int, list[str], str]:
    code = main(["routes", "validate", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def label_of(document: object) -> str:
    route_id = route_id_of(document)
    if isinstance(route_id, str) and re.fullmatch(r"[\w.-]{1,128}", route_id, re.ASCII):
        return route_id
    return "#0"


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_every_valid_example_passes(capsys, path):
    code, out, _ = validate(capsys, path)
    route_id = json.loads(path.read_text())["route_id"]
    assert (code, out) == (0, [f"ok   {path}: {route_id}"])


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=str)
def test_each_invalid_example_is_rejected_naming_its_field_and_reason(capsys, name):
    path = INVALID_DIR / name
    expected = EXPECTED[name]
    document = json.loads(path.read_text())
    label = label_of(document)
    code, out, _ = validate(capsys, path)
    assert code == 1
    field = expected["field"] or "(route)"
    wanted = f"{path}: {label}: {field}: {expected['reason']}"
    assert any(line == wanted or line.startswith(wanted + " (") for line in out), out


def test_schema_examples_exist_to_be_checked():
    assert VALID, "schemas/examples/valid holds no examples"
    assert EXPECTED, "schemas/examples/invalid/expected.json is missing or empty"


def test_invalid_examples_are_all_listed_in_expected_json():
    on_disk = {p.name for p in INVALID_DIR.glob("*.json")} - {"expected.json"}
    assert on_disk == set(EXPECTED)


def test_example_routes_file_is_valid(capsys):
    code, out, _ = validate(capsys, REPO / "examples/routes.yaml")
    assert code == 0
    assert [line.split(": ")[-1] for line in out] == ["payments", "catalog"]


def test_local_demo_needs_the_loopback_flag(capsys):
    demo = REPO / "examples/demo-local.yaml"
    code, out, _ = validate(capsys, demo)
    assert code == 1
    assert any(
        line.startswith(f"{demo}: demo: upstreams[0].url: UpstreamAddressNotAllowed")
        for line in out
    ), out
    code, out, _ = validate(capsys, "--allow-loopback-upstreams", demo)
    assert (code, out) == (0, [f"ok   {demo}: demo"])


def test_list_with_one_bad_route_rejects_it_and_reports_the_others_ok(capsys, tmp_path):
    text = (
        GOOD_ROUTE.format(route_id="orders")
        + "- route_id: users\n  path: /users\n  mode: turbo\n"
        "  upstreams: [{name: a, url: 'https://users.example.com', priority: 0}]\n"
        + GOOD_ROUTE.format(route_id="stock")
    )
    path = write(tmp_path, "routes.yaml", text)
    code, out, err = validate(capsys, path)
    assert code == 1
    assert f"ok   {path}: orders" in out
    assert f"ok   {path}: stock" in out
    assert [line for line in out if not line.startswith("ok")][0].startswith(
        f"{path}: users: mode: "
    )
    assert "1 of 3 routes invalid" in err


def test_every_problem_of_a_route_is_on_its_own_line(capsys, tmp_path):
    path = write(
        tmp_path, "bad.json",
        json.dumps({"route_id": "bad", "path": "/bad", "mode": "turbo", "timeout_ms": -1,
                    "upstreams": [{"name": "a", "url": "https://a.example.com", "priority": 0}]}),
    )
    code, out, _ = validate(capsys, path)
    assert code == 1
    fields = sorted(line.split(": ")[2] for line in out)
    assert fields == ["mode", "timeout_ms"]


def test_route_without_an_id_is_named_by_its_position(capsys, tmp_path):
    path = write(
        tmp_path, "routes.yaml",
        GOOD_ROUTE.format(route_id="first")
        + "- path: /nameless\n  upstreams: [{name: a, url: 'https://a.example.com', priority: 0}]\n",
    )
    code, out, _ = validate(capsys, path)
    assert code == 1
    assert any(line.startswith(f"{path}: #1: route_id: ") for line in out), out


def test_yaml_syntax_error_is_reported_as_a_problem(capsys, tmp_path):
    path = write(tmp_path, "broken.yaml", "route_id: a\npath: /a\n  oops: [\n")
    good = write(tmp_path, "good.yaml", GOOD_ROUTE.format(route_id="good"))
    code, out, err = validate(capsys, path, good)
    assert code == 1
    assert out[0].startswith(f"{path}: -: (file): InvalidYaml (line 3")
    assert out[1] == f"ok   {good}: good"
    assert "Traceback" not in err


def test_missing_file_is_reported_and_the_rest_still_checked(capsys, tmp_path):
    good = write(tmp_path, "good.yaml", GOOD_ROUTE.format(route_id="good"))
    missing = tmp_path / "missing.yaml"
    code, out, _ = validate(capsys, missing, good)
    assert code == 1
    assert out == [
        f"{missing}: -: (file): FileUnreadable (no such file; check the path)",
        f"ok   {good}: good",
    ]


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("dup.yaml", "route_id: a\npath: /a\npath: /b\n", "DuplicateKey"),
        ("dup.json", '{"route_id": "a", "route_id": "b"}', "DuplicateKey"),
        ("broken.json", '{"route_id": "a",', "InvalidJson"),
        ("empty.yaml", "# nothing here\n", "NoRoutes"),
        ("binary.yaml", b"\xff\xfe\x00".decode("latin-1"), "FileUnreadable"),
    ],
)
def test_unusable_file_is_a_problem_with_a_reason(capsys, tmp_path, name, text, reason):
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1"))
    code, out, _ = validate(capsys, path)
    assert code == 1
    assert out[0].startswith(f"{path}: -: (file): {reason} ("), out


@pytest.mark.parametrize("text", ['"just a string"', "42", "null", "[[1, 2]]"])
def test_document_that_is_not_a_route_is_rejected_as_wrong_type(capsys, tmp_path, text):
    path = write(tmp_path, "odd.json", text)
    code, out, _ = validate(capsys, path)
    assert code == 1
    assert out[0].startswith(f"{path}: #0: (route): WrongType ("), out


def test_yaml_on_and_yes_stay_strings_as_in_json(capsys, tmp_path):
    path = write(
        tmp_path, "retries.yaml",
        GOOD_ROUTE.format(route_id="retry")[2:].replace("\n  ", "\n")
        + "mode: proxy\nretries:\n  attempts: 1\n  on: [connect-failure, 5xx]\n",
    )
    code, out, _ = validate(capsys, path)
    assert (code, out) == (0, [f"ok   {path}: retry"])


def test_several_yaml_documents_in_one_file_are_all_checked(capsys, tmp_path):
    text = GOOD_ROUTE.format(route_id="one") + "---\n" + GOOD_ROUTE.format(route_id="two")
    path = write(tmp_path, "multi.yaml", text)
    code, out, _ = validate(capsys, path)
    assert (code, out) == (0, [f"ok   {path}: one", f"ok   {path}: two"])


def test_same_route_id_in_two_files_is_a_problem(capsys, tmp_path):
    first = write(tmp_path, "a.yaml", GOOD_ROUTE.format(route_id="shop"))
    second = write(tmp_path, "b.yaml", GOOD_ROUTE.format(route_id="shop"))
    code, out, _ = validate(capsys, first, second)
    assert code == 1
    assert out[0] == f"ok   {first}: shop"
    assert out[1].startswith(f"{second}: shop: route_id: DuplicateRouteId (")
    assert str(first) in out[1]


def test_standard_input_is_read_for_a_dash(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(
        GOOD_ROUTE.format(route_id="piped").encode()
    )))
    code, out, _ = validate(capsys, "-")
    assert (code, out) == (0, ["ok   <stdin>: piped"])


def test_json_output_gives_machine_readable_verdicts(capsys, tmp_path):
    good = write(tmp_path, "good.yaml", GOOD_ROUTE.format(route_id="good"))
    bad = write(tmp_path, "bad.yaml", "route_id: bad\npath: /bad\n")
    code = main(["routes", "validate", "--output", "json", str(good), str(bad)])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert report["valid"] is False
    verdicts = {v["route_id"]: v for v in report["routes"]}
    assert verdicts["good"] == {
        "file": str(good), "index": 0, "route_id": "good", "valid": True, "problems": [],
    }
    assert verdicts["bad"]["valid"] is False
    assert {p["field"] for p in verdicts["bad"]["problems"]} == {"upstreams"}
    assert all(set(p) == {"field", "reason", "message"} for p in verdicts["bad"]["problems"])
