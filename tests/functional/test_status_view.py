"""The status view (``control_plane.status_view``) read from real tables and alarms on the
embedded AWS endpoint, and served by the local gateway at ``/__turnout/``.

The state table is written as the control plane writes it (status items, the prober's health
items, the failover record and audit items); alarms are real CloudWatch alarms whose state is
set as CloudWatch sets it.
"""

from __future__ import annotations

import http.client
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from control_plane.model.failover import AuditEntry, iso
from control_plane.model.health_signals import alarm_name
from control_plane.model.item import to_item
from control_plane.status_view import StatusSource, read_view
from data_plane.gateway_config import GatewayConfig
from data_plane.local_gateway import LocalGateway
from tests.functional.test_cli_routes import create_tables

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
ROUTES, STATE = "routes", "state"


@dataclass
class World:
    """The two tables and CloudWatch, written as users and the control plane write them."""

    aws: object
    routes: str = ROUTES
    state: str = STATE
    now: datetime = NOW

    def __post_init__(self) -> None:
        self.dynamodb = self.aws.client("dynamodb")
        self.cloudwatch = self.aws.client("cloudwatch")

    def source(self, *, cloudwatch: object | None = None) -> StatusSource:
        return StatusSource(dynamodb=self.dynamodb, cloudwatch=cloudwatch or self.cloudwatch,
                            routes_table=self.routes, state_table=self.state)

    def put(self, table: str, item: dict) -> None:
        self.dynamodb.put_item(TableName=table, Item=to_item(item))

    def route(self, route_id: str, *upstreams: str, mode: str | None = None,
              urls: dict[str, str] | None = None) -> None:
        doc = {"route_id": route_id, "path": f"/{route_id}/{{proxy+}}", "methods": ["GET"],
               "upstreams": [{"name": name, "url": (urls or {}).get(name, f"https://{name}.example"),
                              "priority": priority} for priority, name in enumerate(upstreams)]}
        if mode:
            doc["mode"] = mode
        self.put(self.routes, doc)

    def status(self, route_id: str, phase: str, *, active: str | None = None,
               reason: str | None = None, message: str | None = None) -> None:
        item = {"route_id": route_id, "kind": "status", "phase": phase,
                "observed_spec_hash": "h", "last_transition_time": iso(self.now)}
        for key, value in (("active_upstream", active), ("reason", reason),
                           ("message", message)):
            if value is not None:
                item[key] = value
        if active:
            item["active_url"] = f"https://{active}.example"
        self.put(self.state, item)

    def health(self, route_id: str, upstream: str, healthy: bool, *, ago_seconds: int = 1,
               failures: int = 0, successes: int = 0) -> None:
        self.put(self.state, {"route_id": route_id, "kind": f"health#{upstream}",
                              "healthy": healthy, "consecutive_failures": failures,
                              "consecutive_successes": successes,
                              "last_probe_time": iso(self.now - timedelta(seconds=ago_seconds)),
                              "last_change_time": iso(self.now - timedelta(seconds=30))})

    def switch(self, route_id: str, seconds_ago: int, kind: str, source: str, target: str) -> None:
        self.put(self.state, AuditEntry(
            route_id=route_id, time=iso(self.now - timedelta(seconds=seconds_ago)), kind=kind,
            from_upstream=source, to_upstream=target, reason="ActiveUpstreamUnhealthy",
            why=f"'{source}' is unhealthy", who=f"alarm {alarm_name(route_id, source)}",
            execution_arn=f"arn:aws:states:us-east-1:123456789012:execution:failover:{route_id}",
            spec_hash="h", mode="direct").to_item())

    def record(self, route_id: str, **fields: str) -> None:
        self.put(self.state, {"route_id": route_id, "kind": "failover", **fields})

    def alarm(self, route_id: str, upstream: str, state: str) -> None:
        name = alarm_name(route_id, upstream)
        self.cloudwatch.put_metric_alarm(
            AlarmName=name, Namespace="Turnout", MetricName="UpstreamHealthy",
            Dimensions=[{"Name": "Route", "Value": route_id},
                        {"Name": "Upstream", "Value": upstream}],
            Statistic="Minimum", Period=10, EvaluationPeriods=1, Threshold=1,
            ComparisonOperator="LessThanThreshold")
        self.cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")


@pytest.fixture
def world(aws) -> World:
    create_tables(aws.client("dynamodb"), ROUTES, STATE)
    return World(aws)


def failed_over(world: World) -> None:
    """``orders`` moved from primary to backup 40 s ago; the primary is still down."""
    world.route("orders", "primary", "backup")
    world.status("orders", "READY", active="backup")
    world.health("orders", "primary", False, failures=4)
    world.health("orders", "backup", True, successes=40)
    world.switch("orders", 40, "failover", "primary", "backup")


def routes_by_id(view: dict) -> dict[str, dict]:
    return {r["route_id"]: r for r in view["routes"]}


def upstreams_by_name(route: dict) -> dict[str, dict]:
    return {u["name"]: u for u in route["upstreams"]}


# ---- the view ---------------------------------------------------------------------------------


def test_every_route_shows_its_phase_reason_mode_and_active_upstream(world):
    failed_over(world)
    world.route("catalog", "main", mode="proxy")
    world.status("catalog", "REJECTED", reason="RouteConflict",
                 message="GET /orders/{proxy+} is owned by route 'orders'")
    world.route("fresh", "main")
    world.status("gone", "DELETED")

    view = read_view(world.source(), now=NOW)

    routes = routes_by_id(view)
    assert list(routes) == ["catalog", "fresh", "gone", "orders"]
    assert (routes["orders"]["phase"], routes["orders"]["active_upstream"],
            routes["orders"]["mode"]) == ("READY", "backup", "direct")
    assert (routes["catalog"]["phase"], routes["catalog"]["reason"],
            routes["catalog"]["mode"]) == ("REJECTED", "RouteConflict", "proxy")
    assert "owned by route 'orders'" in routes["catalog"]["message"]
    assert routes["fresh"]["phase"] == "PENDING"
    assert routes["gone"]["phase"] == "DELETED"
    assert view["summary"]["phases"] == {"DELETED": 1, "PENDING": 1, "READY": 1, "REJECTED": 1}
    assert view["generated_at"] == "2030-01-01T12:00:00.000Z"


def test_upstream_health_is_the_probers_verdict_else_its_alarm_else_unknown(world):
    world.route("pay", "a", "b", "c", "d")
    world.status("pay", "READY", active="b")
    world.health("pay", "a", False, failures=3)
    world.alarm("pay", "a", "OK")  # not evaluated yet: the prober's verdict is newer
    world.alarm("pay", "b", "OK")
    world.alarm("pay", "c", "ALARM")

    view = read_view(world.source(), now=NOW)

    upstreams = upstreams_by_name(routes_by_id(view)["pay"])
    assert {name: (u["health"], u["alarm"]) for name, u in upstreams.items()} == {
        "a": ("unhealthy", "OK"), "b": ("healthy", "OK"), "c": ("unhealthy", "ALARM"),
        "d": ("unknown", None)}
    assert [u["name"] for u in routes_by_id(view)["pay"]["upstreams"]] == ["a", "b", "c", "d"]
    assert upstreams["b"]["active"] and not upstreams["a"]["active"]
    assert upstreams["a"]["consecutive_failures"] == 3
    assert view["summary"]["health"] == {"healthy": 1, "unhealthy": 2, "unknown": 1}


def test_timeline_lists_every_switch_and_the_all_down_mark_oldest_first(world):
    failed_over(world)
    world.route("pay", "a", "b")
    world.status("pay", "READY", active="a")
    world.switch("pay", 200, "failover", "a", "b")
    world.switch("pay", 100, "failback", "b", "a")
    world.switch("pay", 2 * 24 * 3600, "manual", "a", "b")  # older than the timeline's day
    world.record("pay", all_unhealthy_since=iso(NOW - timedelta(seconds=10)))

    timeline = read_view(world.source(), now=NOW)["timeline"]

    assert [(e["route_id"], e["kind"], e["from_upstream"], e["to_upstream"])
            for e in timeline["events"]] == [
        ("pay", "failover", "a", "b"), ("pay", "failback", "b", "a"),
        ("orders", "failover", "primary", "backup"), ("pay", "all-down", "a", "a")]
    assert timeline["events"][2]["who"] == "alarm turnout-orders.primary"
    assert timeline["start"] == iso(NOW - timedelta(seconds=200))  # the earliest event shown
    assert timeline["end"] == iso(NOW)


def test_a_switch_in_progress_and_an_outage_show_on_the_route(world):
    failed_over(world)
    world.put(STATE, {"route_id": "orders", "kind": "failover",
                      "lock_owner": "arn:aws:states:us-east-1:1:execution:f:x",
                      "lock_expires_at": int(NOW.timestamp()) + 30,
                      "all_unhealthy_since": iso(NOW)})
    world.route("stale", "a", "b")
    world.put(STATE, {"route_id": "stale", "kind": "failover",
                      "lock_owner": "arn:aws:states:us-east-1:1:execution:f:crashed",
                      "lock_expires_at": int(NOW.timestamp()) - 1})

    routes = routes_by_id(read_view(world.source(), now=NOW))

    assert routes["orders"]["switch_in_progress"] == "arn:aws:states:us-east-1:1:execution:f:x"
    assert routes["orders"]["all_unhealthy_since"] == iso(NOW)
    assert routes["orders"]["last_failover"]["to_upstream"] == "backup"
    assert routes["stale"]["switch_in_progress"] is None  # an expired lock is no switch


def test_view_carries_no_credentials_or_query_from_upstream_urls(world):
    world.route("leaky", "main", urls={"main": "https://ops:hunter2-pass@api.example:8443/v1?api_key=k3y-value#x"})
    world.status("leaky", "REJECTED", reason="UpstreamUrlInvalid")

    view = read_view(world.source(), now=NOW)

    text = json.dumps(view)
    assert "hunter2-pass" not in text and "k3y-value" not in text and "ops:" not in text
    assert routes_by_id(view)["leaky"]["upstreams"][0]["url"] == "https://api.example:8443/v1"


def test_unreadable_alarms_leave_the_probers_health_and_say_so(world):
    failed_over(world)
    cloudwatch = world.aws.client("cloudwatch")

    def refuse(**_):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DescribeAlarms")

    cloudwatch.meta.events.register("before-call.cloudwatch.DescribeAlarms", refuse)

    view = read_view(world.source(cloudwatch=cloudwatch), now=NOW)

    upstreams = upstreams_by_name(routes_by_id(view)["orders"])
    assert (upstreams["primary"]["health"], upstreams["backup"]["health"]) == (
        "unhealthy", "healthy")
    assert view["problems"] and "AccessDenied" in view["problems"][0]


def test_one_route_is_read_with_its_own_items_only(world):
    failed_over(world)
    world.route("other", "x")

    view = read_view(world.source(), route_id="orders", now=NOW)

    assert [r["route_id"] for r in view["routes"]] == ["orders"]
    assert [e["route_id"] for e in view["timeline"]["events"]] == ["orders"]
    assert view["timeline"]["start"] == iso(NOW - timedelta(minutes=2))  # at least 2 minutes


# ---- served by the local gateway ---------------------------------------------------------------


class Undeployed:
    """The gateway's config provider for a stage with nothing deployed."""

    def __init__(self, rest_api_id: str = "api") -> None:
        self.current = GatewayConfig.undeployed(rest_api_id, "live")


def fetch(gateway: LocalGateway, method: str, path: str) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@pytest.fixture
def gateway(world):
    with LocalGateway(Undeployed(), port=0, access_log=None,
                      status_view=lambda: read_view(world.source())) as served:
        yield served


def test_gateway_serves_the_view_as_json(world, gateway):
    failed_over(world)

    status, headers, body = fetch(gateway, "GET", "/__turnout/api/status")

    assert status == 200
    assert headers["content-type"].startswith("application/json")
    assert headers["cache-control"] == "no-store"
    orders = routes_by_id(json.loads(body))["orders"]
    assert orders["active_upstream"] == "backup"
    assert upstreams_by_name(orders)["primary"]["health"] == "unhealthy"


def test_page_is_one_self_contained_document_whose_policy_allows_only_its_own_code(gateway):
    status, headers, body = fetch(gateway, "GET", "/__turnout/")

    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    page = body.decode()
    assert re.findall(r"<script\b[^>]*>", page) == ["<script>"]  # inline only, no src
    assert re.findall(r"<style\b[^>]*>", page) == ["<style>"]
    assert not re.search(r"(?:src|href)\s*=\s*\"(?!data:)", page)
    assert "@import" not in page and "url(" not in page
    assert set(re.findall(r"https?://[^\s\"')]+", page)) == {"http://www.w3.org/2000/svg"}
    assert "innerHTML" not in page and "insertAdjacentHTML" not in page
    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]+'", policy)
    assert "unsafe-inline" not in policy


def test_status_page_is_read_only(gateway):
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, headers, _ = fetch(gateway, method, "/__turnout/api/status")
        assert (status, headers.get("allow")) == (405, "GET, HEAD"), method
    status, headers, _ = fetch(gateway, "GET", "/__turnout")
    assert (status, headers["location"]) == (301, "/__turnout/")


def test_api_answers_503_with_the_reason_when_the_state_cannot_be_read(aws):
    source = StatusSource(dynamodb=aws.client("dynamodb"), routes_table="missing",
                          state_table="missing-too")
    with LocalGateway(Undeployed(), port=0, access_log=None,
                      status_view=lambda: read_view(source)) as gateway:
        status, _, body = fetch(gateway, "GET", "/__turnout/api/status")

    assert status == 503
    assert "ResourceNotFoundException" in json.loads(body)["error"]


STACK = """
Resources:
  Api: {Type: AWS::ApiGateway::RestApi, Properties: {Name: turnout-api}}
  Routes:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: route_id, AttributeType: S}]
      KeySchema: [{AttributeName: route_id, KeyType: HASH}]
  State:
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
  RestApiId: {Value: !Ref Api}
  RoutesTableName: {Value: !Ref Routes}
  StateTableName: {Value: !Ref State}
"""


def test_gateway_reads_the_stack_that_owns_the_api_it_serves(aws, monkeypatch):
    cloudformation = aws.client("cloudformation")
    cloudformation.create_stack(StackName="other", TemplateBody=STACK)
    cloudformation.create_stack(StackName="mine", TemplateBody=STACK)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in
               cloudformation.describe_stacks(StackName="mine")["Stacks"][0]["Outputs"]}
    world = World(aws, routes=outputs["RoutesTableName"], state=outputs["StateTableName"])
    failed_over(world)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.url)

    with LocalGateway(Undeployed(outputs["RestApiId"]), port=0, access_log=None) as gateway:
        status, _, body = fetch(gateway, "GET", "/__turnout/api/status")

    assert status == 200
    assert [r["route_id"] for r in json.loads(body)["routes"]] == ["orders"]
