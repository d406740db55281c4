"""``turnout keys create | list | revoke`` against the embedded AWS endpoint, on routes the
real handler reconciled."""

from __future__ import annotations

import json

import pytest

from control_plane.cli import main
from tests.functional.stack import route


@pytest.fixture
def keys(stack, capsys):
    def run(*args: str) -> tuple[int, str, str]:
        code = main(["keys", *args, "--endpoint-url", stack.aws.url,
                     "--rest-api-id", stack.rest_api_id])
        out, err = capsys.readouterr()
        return code, out, err
    return run


@pytest.fixture
def keyed_routes(stack, harness):
    for route_id in ("payments", "orders"):
        stack.put_route(route(route_id, f"/{route_id}", "https://api.example",
                              security={"api_key_required": True}))
    stack.put_route(route("open", "/open", "https://api.example"))
    harness.run()


def test_create_issues_a_key_into_the_routes_plan_and_prints_its_value_once(
        stack, keys, keyed_routes):
    code, out, err = keys("create", "--route", "payments", "--name", "mobile-app")
    assert code == 0, err
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    key_id, value = fields["id"].strip(), fields["value"].strip()
    assert len(value) >= 40 and value.isalnum()
    assert out.count(value) == 1 and value not in err

    api = stack.aws.client("apigateway")
    plan = next(p for p in api.get_usage_plans()["items"] if p["name"] == "turnout-payments")
    assert [k["id"] for k in api.get_usage_plan_keys(usagePlanId=plan["id"])["items"]] == [key_id]
    key = api.get_api_key(apiKey=key_id, includeValue=True)
    assert key["enabled"] is True and key["name"] == "mobile-app" and key["value"] == value

    others = {json.loads(keys("create", "--route", "payments", "-o", "json")[1])["value"]
              for _ in range(2)}
    assert len(others | {value}) == 3, "no two keys share a value"

    code, out, err = keys("create", "--route", "open")
    assert code == 1 and out == ""
    assert "api_key_required" in err and "READY" in err
    code, _, err = keys("create", "--route", "no-such-route")
    assert code == 1 and "no usage plan" in err


def test_list_shows_keys_per_route_and_never_their_values(keys, keyed_routes):
    issued = [json.loads(keys("create", "--route", r, "-o", "json")[1])
              for r in ("payments", "orders", "payments")]
    code, out, _ = keys("list")
    assert code == 0
    assert out.splitlines()[0].split() == ["ID", "NAME", "ROUTE", "ENABLED", "CREATED"]
    assert all(k["id"] in out and k["value"] not in out for k in issued)

    code, out, _ = keys("list", "--route", "payments", "-o", "json")
    listed = json.loads(out)
    assert sorted(k["id"] for k in listed) == sorted(k["id"] for k in issued
                                                     if k["route"] == "payments")
    assert all(set(k) == {"id", "name", "route", "enabled", "created"} for k in listed)
    assert all(k["enabled"] is True for k in listed)


def test_revoke_deletes_the_key_and_leaves_keys_turnout_did_not_issue_alone(
        stack, keys, keyed_routes):
    issued = json.loads(keys("create", "--route", "orders", "-o", "json")[1])
    code, out, err = keys("revoke", issued["id"])
    assert code == 0, err
    assert issued["id"] in out and issued["value"] not in out
    api = stack.aws.client("apigateway")
    assert issued["id"] not in {k["id"] for k in api.get_api_keys()["items"]}

    foreign = api.create_api_key(name="someone-elses", enabled=True)["id"]
    code, _, err = keys("revoke", foreign)
    assert code == 1 and "not issued by `turnout keys create`" in err
    assert api.get_api_key(apiKey=foreign)["enabled"] is True

    code, _, err = keys("revoke", "nosuchkey")
    assert code == 1 and "turnout keys list" in err
