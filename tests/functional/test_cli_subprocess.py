"""The `turnout` console script run as a user runs it: a real process, real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from control_plane.cli.route_files import read_route_file
from control_plane.model.item import to_item
from control_plane.model.validation import validate_route
from tests.functional.test_cli_routes import create_tables

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TURNOUT = BIN / "turnout"
AWS_CLI = BIN / "aws"
EXAMPLE = REPO / "examples/routes.yaml"

pytestmark = pytest.mark.skipif(
    not TURNOUT.exists(), reason="install the project first: pip install -e . --no-deps"
)


def shell(*args: object, env: dict[str, str] | None = None, program: Path = TURNOUT):
    environment = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    environment.update(env or {})
    return subprocess.run(
        [str(program), *map(str, args)], capture_output=True, text=True, env=environment,
        cwd=REPO, timeout=60, check=False,
    )


def test_validate_exits_0_for_valid_routes_and_1_for_invalid_ones_without_aws():
    offline = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "",
               "AWS_SECRET_ACCESS_KEY": ""}
    ok = shell("routes", "validate", "examples/routes.yaml", env=offline)
    assert (ok.returncode, ok.stdout) == (
        0, "ok   examples/routes.yaml: payments\nok   examples/routes.yaml: catalog\n"
    )
    demo = shell("routes", "validate", "examples/demo-local.yaml", env=offline)
    assert demo.returncode == 1
    assert demo.stdout.startswith(
        "examples/demo-local.yaml: demo: upstreams[0].url: UpstreamAddressNotAllowed ("
    )


def test_validate_usage_error_exits_2():
    result = shell("routes", "validate", "--no-such-option", "examples/routes.yaml")
    assert result.returncode == 2
    assert "unrecognized arguments: --no-such-option" in result.stderr


def test_broken_yaml_is_a_problem_line_not_a_traceback(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("route_id: x\n  path: [\n")
    result = shell("routes", "validate", broken, "examples/routes.yaml")
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].startswith(f"{broken}: -: (file): InvalidYaml (line ")
    assert "ok   examples/routes.yaml: payments" in result.stdout
    assert "Traceback" not in result.stderr


def test_apply_writes_the_routes_through_aws_endpoint_url(aws):
    create_tables(aws.client("dynamodb"), "routes", "state")
    result = shell("routes", "apply", EXAMPLE, "--table", "routes",
                   env={"AWS_ENDPOINT_URL": aws.url})
    assert (result.returncode, result.stdout) == (0, "applied payments\napplied catalog\n")
    got = shell("routes", "get", "payments", "-o", "json", "--table", "routes",
                "--endpoint-url", aws.url)
    expected = validate_route(read_route_file(str(EXAMPLE)).documents[0]).to_document()
    assert json.loads(got.stdout) == expected


def test_apply_of_an_invalid_file_writes_nothing_and_exits_1(aws, tmp_path):
    create_tables(aws.client("dynamodb"), "routes", "state")
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("route_id: catalog", "route_id: Catalog"))
    result = shell("routes", "apply", bad, "--table", "routes", "--endpoint-url", aws.url)
    assert result.returncode == 1
    assert f"{bad}: #1: route_id: PatternMismatch (" in result.stdout
    assert "nothing applied" in result.stderr
    assert aws.client("dynamodb").scan(TableName="routes")["Items"] == []


def test_missing_stack_error_is_one_line_without_traceback(aws):
    result = shell("routes", "list", "--endpoint-url", aws.url)
    assert result.returncode == 1
    error, advice = result.stderr.splitlines()
    assert error.startswith("turnout: error: stack 'turnout' not found")
    assert advice.startswith("  next: ")


def test_route_written_with_the_aws_cli_reads_back_with_turnout(aws, tmp_path):
    create_tables(aws.client("dynamodb"), "routes", "state")
    document = validate_route(read_route_file(str(EXAMPLE)).documents[1]).to_document()
    item_file = tmp_path / "item.json"
    item_file.write_text(json.dumps(to_item(document)))
    put = shell("dynamodb", "put-item", "--table-name", "routes", "--item", f"file://{item_file}",
                "--endpoint-url", aws.url, program=AWS_CLI)
    assert put.returncode == 0, put.stderr
    got = shell("routes", "get", "catalog", "-o", "json", "--table", "routes",
                "--endpoint-url", aws.url)
    assert json.loads(got.stdout) == document
