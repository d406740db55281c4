"""`turnout routes apply/list/get/delete/status` against the embedded AWS endpoint (moto).

Commands run in-process through ``main([...])``; the tables are real moto tables, created
directly or by a CloudFormation stack whose outputs name them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import yaml

from control_plane.cli import main
from control_plane.cli.route_files import read_route_file
from control_plane.model.item import to_item
from control_plane.model.validation import validate_route

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples/routes.yaml"

STACK_TEMPLATE = """
Resources:
  RoutesTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: route_id, AttributeType: S}]
      KeySchema: [{AttributeName: route_id, KeyType: HASH}]
  StateTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: route_id, AttributeType: S}
        - {AttributeName: kind, AttributeType: S}
      KeySchema:
        - {AttributeName: route_id, KeyType: HASH}
        - {AttributeName: kind, KeyType: RANGE}
Outputs:
  RoutesTableName: {Value: !Ref RoutesTable}
  StateTableName: {Value: !Ref StateTable}
"""


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@dataclass(frozen=True)
class Tables:
    routes: str
    state: str


@pytest.fixture
def turnout(capsys, aws):
    """Run ``turnout <args>`` in-process against the test endpoint."""

    def run(*args: object, endpoint: bool = True) -> Result:
        argv = [str(a) for a in args]
        if endpoint:
            argv += ["--endpoint-url", aws.url]
        code = main(argv)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def tables(aws) -> Tables:
    """A routes table and a state table, created directly (no stack)."""
    dynamodb = aws.client("dynamodb")
    create_tables(dynamodb, "my-routes", "my-state")
    return Tables("my-routes", "my-state")


def create_tables(dynamodb, routes: str, state: str) -> None:
    dynamodb.create_table(
        TableName=routes, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "route_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "route_id", "KeyType": "HASH"}],
    )
    dynamodb.create_table(
        TableName=state, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "route_id", "AttributeType": "S"},
                              {"AttributeName": "kind", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "route_id", "KeyType": "HASH"},
                   {"AttributeName": "kind", "KeyType": "RANGE"}],
    )


def stack_outputs(aws, stack: str = "turnout") -> Tables:
    cloudformation = aws.client("cloudformation")
    cloudformation.create_stack(StackName=stack, TemplateBody=STACK_TEMPLATE)
    outputs = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
    names = {o["OutputKey"]: o["OutputValue"] for o in outputs}
    return Tables(names["RoutesTableName"], names["StateTableName"])


def example_documents() -> dict[str, dict]:
    """The example routes as the control plane reads them: validated, defaults filled."""
    routes = [validate_route(doc) for doc in read_route_file(str(EXAMPLE)).documents]
    return {route.route_id: route.to_document() for route in routes}


def scan(aws, table: str) -> list[dict]:
    return aws.client("dynamodb").scan(TableName=table)["Items"]


def put_status(aws, table: str, route_id: str, **fields: str) -> None:
    item = {"route_id": {"S": route_id}, "kind": {"S": "status"}}
    item.update({key: {"S": value} for key, value in fields.items()})
    aws.client("dynamodb").put_item(TableName=table, Item=item)


def write_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def route_yaml(route_id: str, **extra: str) -> str:
    lines = [f"route_id: {route_id}", f"path: /{route_id}",
             "upstreams: [{name: a, url: 'https://a.example.com', priority: 0}]"]
    lines += [f"{key}: {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


# ---- apply and get -----------------------------------------------------------------------


def test_apply_then_get_round_trips_the_route_unchanged(turnout, tables):
    applied = turnout("routes", "apply", EXAMPLE, "--table", tables.routes)
    assert (applied.code, applied.out) == (0, "applied payments\napplied catalog\n")
    for route_id, document in example_documents().items():
        got = turnout("routes", "get", route_id, "--output", "json", "--table", tables.routes)
        assert got.code == 0
        assert json.loads(got.out) == document


def test_get_prints_yaml_that_applies_back_to_the_same_route(turnout, tables, tmp_path):
    turnout("routes", "apply", EXAMPLE, "--table", tables.routes)
    got = turnout("routes", "get", "payments", "--table", tables.routes)
    assert got.out.startswith("route_id: payments\npath: /payments/{proxy+}\n")
    assert yaml.safe_load(got.out) == example_documents()["payments"]
    copy = write_file(tmp_path, "copy.yaml", got.out)
    assert turnout("routes", "validate", copy, endpoint=False).code == 0


def test_applied_item_is_what_aws_dynamodb_put_item_would_write(turnout, tables, aws):
    turnout("routes", "apply", EXAMPLE, "--table", tables.routes)
    item = aws.client("dynamodb").get_item(
        TableName=tables.routes, Key={"route_id": {"S": "catalog"}}
    )["Item"]
    assert item == to_item(example_documents()["catalog"])
    used = json.dumps(item)
    assert all(f'"{t}":' not in used for t in ("SS", "NS", "B", "BS"))


def test_apply_overwrites_the_whole_route_item(turnout, tables, tmp_path):
    first = write_file(tmp_path, "v1.yaml", route_yaml("shop", description="first"))
    second = write_file(tmp_path, "v2.yaml", route_yaml("shop", timeout_ms="5000"))
    turnout("routes", "apply", first, "--table", tables.routes)
    assert turnout("routes", "apply", second, "--table", tables.routes).code == 0
    got = json.loads(turnout("routes", "get", "shop", "-o", "json", "--table", tables.routes).out)
    assert got["timeout_ms"] == 5000
    assert "description" not in got


def test_invalid_file_writes_nothing(turnout, tables, aws, tmp_path):
    path = write_file(
        tmp_path, "routes.yaml",
        "- " + route_yaml("good").replace("\n", "\n  ").rstrip() + "\n"
        "- route_id: bad\n  path: /bad\n  upstreams: [{name: a, url: 'http://10.0.0.1', priority: 0}]\n",
    )
    result = turnout("routes", "apply", path, "--table", tables.routes)
    assert result.code == 1
    assert f"{path}: bad: upstreams[0].url: " in result.out
    assert "applied" not in result.out
    assert "nothing applied" in result.err
    assert scan(aws, tables.routes) == []


def test_unreadable_file_among_good_ones_writes_nothing(turnout, tables, aws, tmp_path):
    good = write_file(tmp_path, "good.yaml", route_yaml("good"))
    result = turnout("routes", "apply", good, tmp_path / "missing.yaml", "--table", tables.routes)
    assert result.code == 1
    assert f"{tmp_path / 'missing.yaml'}: -: (file): FileUnreadable" in result.out
    assert scan(aws, tables.routes) == []


def test_same_route_id_in_two_files_writes_nothing(turnout, tables, aws, tmp_path):
    first = write_file(tmp_path, "a.yaml", route_yaml("shop"))
    second = write_file(tmp_path, "b.json", json.dumps(read_route_file(str(first)).documents[0]))
    result = turnout("routes", "apply", first, second, "--table", tables.routes)
    assert result.code == 1
    assert f"{second}: shop: route_id: DuplicateRouteId" in result.out
    assert scan(aws, tables.routes) == []


def test_local_demo_applies_only_with_the_loopback_flag(turnout, tables, aws):
    demo = REPO / "examples/demo-local.yaml"
    assert turnout("routes", "apply", demo, "--table", tables.routes).code == 1
    assert scan(aws, tables.routes) == []
    result = turnout("routes", "apply", "--allow-loopback-upstreams", demo, "--table", tables.routes)
    assert (result.code, result.out) == (0, "applied demo\n")


def test_get_of_a_missing_route_says_so(turnout, tables):
    result = turnout("routes", "get", "nope", "--table", tables.routes)
    assert result.code == 1
    assert result.err == (f"turnout: error: route 'nope' not found in table {tables.routes}\n"
                          "  next: see the routes there are with `turnout routes list`\n")


# ---- list and delete ---------------------------------------------------------------------


def test_list_shows_route_path_methods_mode_and_upstreams(turnout, tables):
    turnout("routes", "apply", EXAMPLE, "--table", tables.routes)
    result = turnout("routes", "list", "--table", tables.routes)
    assert result.code == 0
    header, *rows = [line.split() for line in result.out.splitlines()]
    assert header == ["ROUTE", "PATH", "METHODS", "MODE", "UPSTREAMS"]
    assert rows == [
        ["catalog", "/catalog/{proxy+}", "GET,HEAD", "proxy", "catalog-main,catalog-fallback"],
        ["payments", "/payments/{proxy+}", "GET,POST", "direct",
         "provider-primary,provider-standby"],
    ]


def test_list_as_json_gives_every_route_document(turnout, tables):
    turnout("routes", "apply", EXAMPLE, "--table", tables.routes)
    result = turnout("routes", "list", "-o", "json", "--table", tables.routes)
    documents = example_documents()
    assert json.loads(result.out) == [documents["catalog"], documents["payments"]]


def test_list_of_an_empty_table_shows_only_the_header(turnout, tables):
    result = turnout("routes", "list", "--table", tables.routes)
    assert (result.code, result.out.split()) == (0, ["ROUTE", "PATH", "METHODS", "MODE",
                                                     "UPSTREAMS"])


def test_list_shows_items_written_by_hand_even_if_odd(turnout, tables, aws):
    aws.client("dynamodb").put_item(TableName=tables.routes, Item={
        "route_id": {"S": "manual"}, "path": {"S": "/manual"},
        "methods": {"SS": ["GET", "POST"]}, "timeout_ms": {"N": "1000"},
    })
    result = turnout("routes", "list", "--table", tables.routes)
    assert result.out.splitlines()[1].split() == ["manual", "/manual", "GET,POST", "-", "-"]


def test_delete_removes_the_route_item(turnout, tables, aws):
    turnout("routes", "apply", EXAMPLE, "--table", tables.routes)
    result = turnout("routes", "delete", "payments", "--table", tables.routes)
    assert result.code == 0
    assert result.out.startswith("deleted payments")
    assert [item["route_id"]["S"] for item in scan(aws, tables.routes)] == ["catalog"]


def test_delete_of_a_missing_route_fails_and_says_so(turnout, tables):
    result = turnout("routes", "delete", "ghost", "--table", tables.routes)
    assert result.code == 1
    assert "route 'ghost' not found" in result.err


# ---- status ------------------------------------------------------------------------------


def test_status_shows_phase_reason_active_upstream_and_last_transition(turnout, tables, aws):
    turnout("routes", "apply", EXAMPLE, "--table", tables.routes)
    put_status(aws, tables.state, "payments", phase="READY", active_upstream="provider-standby",
               last_transition_time="2024-05-01T10:00:00Z", message="failed over at 10:00")
    put_status(aws, tables.state, "old", phase="DELETED", reason="RouteDeleted")
    result = turnout("routes", "status", "--table", tables.routes, "--state-table", tables.state)
    assert result.code == 0
    rows = [line.split() for line in result.out.splitlines()]
    assert rows == [
        ["ROUTE", "PHASE", "REASON", "ACTIVE", "UPSTREAM", "LAST", "TRANSITION"],
        ["catalog", "PENDING", "-", "-", "-"],
        ["old", "DELETED", "RouteDeleted", "-", "-"],
        ["payments", "READY", "-", "provider-standby", "2024-05-01T10:00:00Z"],
    ]
    assert "failed over" not in result.out


def test_status_wide_adds_the_message(turnout, tables, aws):
    put_status(aws, tables.state, "payments", phase="REJECTED", reason="InvalidPath",
               message="a path has no empty segments")
    result = turnout("routes", "status", "--wide", "--table", tables.routes,
                     "--state-table", tables.state)
    header, row = result.out.splitlines()
    assert header.split()[-1] == "MESSAGE"
    assert row.endswith("a path has no empty segments")


def test_status_of_one_route_shows_its_message(turnout, tables, aws):
    put_status(aws, tables.state, "payments", phase="FAILED", reason="AccessDenied",
               message="not allowed to call apigateway:PATCH", observed_spec_hash="abc123")
    result = turnout("routes", "status", "payments", "--table", tables.routes,
                     "--state-table", tables.state)
    assert result.code == 0
    lines = dict(line.split(":", 1) for line in result.out.splitlines())
    assert {k: v.strip() for k, v in lines.items()} == {
        "route_id": "payments", "phase": "FAILED", "reason": "AccessDenied",
        "message": "not allowed to call apigateway:PATCH", "observed_spec_hash": "abc123",
    }


def test_status_of_an_applied_route_not_yet_reconciled_is_pending(turnout, tables):
    turnout("routes", "apply", EXAMPLE, "--table", tables.routes)
    result = turnout("routes", "status", "catalog", "-o", "json", "--table", tables.routes,
                     "--state-table", tables.state)
    assert json.loads(result.out)["phase"] == "PENDING"


def test_status_of_an_unknown_route_fails(turnout, tables):
    result = turnout("routes", "status", "ghost", "--table", tables.routes,
                     "--state-table", tables.state)
    assert result.code == 1
    assert "route 'ghost' not found" in result.err


def test_status_as_json_lists_every_status(turnout, tables, aws):
    put_status(aws, tables.state, "b", phase="READY")
    put_status(aws, tables.state, "a", phase="PENDING")
    result = turnout("routes", "status", "-o", "json", "--table", tables.routes,
                     "--state-table", tables.state)
    assert json.loads(result.out) == [
        {"route_id": "a", "phase": "PENDING"}, {"route_id": "b", "phase": "READY"}
    ]


# ---- where the tables are, and how AWS is reached ----------------------------------------


def test_stack_outputs_name_the_tables_when_no_table_is_given(turnout, aws):
    names = stack_outputs(aws)
    assert turnout("routes", "apply", EXAMPLE).code == 0
    assert len(scan(aws, names.routes)) == 2
    put_status(aws, names.state, "payments", phase="READY")
    result = turnout("routes", "status", "payments")
    assert (result.code, "READY" in result.out) == (0, True)


def test_stack_option_picks_another_stack(turnout, aws):
    names = stack_outputs(aws, stack="turnout-staging")
    assert turnout("routes", "apply", EXAMPLE, "--stack", "turnout-staging").code == 0
    assert len(scan(aws, names.routes)) == 2


def test_missing_stack_says_what_to_do_next(turnout, aws):
    result = turnout("routes", "list")
    assert result.code == 1
    error, advice = result.err.splitlines()
    assert error.startswith("turnout: error: stack 'turnout' not found")
    assert advice.startswith("  next: ")
    assert "turnout up" in advice and "--stack" in advice and "--table" in advice


def test_missing_stack_is_not_needed_when_the_tables_are_named(turnout, tables):
    result = turnout("routes", "status", "--table", tables.routes, "--state-table", tables.state)
    assert result.code == 0


def test_missing_table_is_named_with_how_to_find_the_right_one(turnout, aws):
    result = turnout("routes", "list", "--table", "no-such-table")
    assert result.code == 1
    error, advice = result.err.splitlines()
    assert error.startswith("turnout: error: table 'no-such-table' not found")
    assert advice == ("  next: check the name with `aws dynamodb list-tables`, or leave out "
                      "--table to use stack 'turnout''s table")


def test_aws_endpoint_url_environment_variable_is_honoured(turnout, tables, aws, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.url)
    result = turnout("routes", "apply", EXAMPLE, "--table", tables.routes, endpoint=False)
    assert result.code == 0
    assert len(scan(aws, tables.routes)) == 2


def test_region_option_chooses_the_region(turnout, aws):
    eu = boto3.client("dynamodb", endpoint_url=aws.url, region_name="eu-west-1")
    create_tables(eu, "eu-routes", "eu-state")
    result = turnout("routes", "apply", EXAMPLE, "--table", "eu-routes", "--region", "eu-west-1")
    assert result.code == 0
    assert eu.scan(TableName="eu-routes")["Count"] == 2
    assert turnout("routes", "list", "--table", "eu-routes").code == 1


def test_unreachable_endpoint_asks_whether_turnout_up_is_running(turnout, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    result = turnout("routes", "list", "--table", "t", "--endpoint-url", "http://127.0.0.1:9",
                     endpoint=False)
    assert result.code == 1
    error, advice = result.err.splitlines()
    assert error.startswith("turnout: error: cannot reach AWS at http://127.0.0.1:9")
    assert advice.startswith("  next: is `turnout up` running?")
    assert "http://127.0.0.1:4566" in advice
