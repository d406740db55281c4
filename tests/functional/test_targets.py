"""`targets` routes through the real route-stream handler: target groups, a listener rule with
weights on the internal ALB, and an API Gateway integration over the VPC link."""

from __future__ import annotations

import pytest

from control_plane.plan.elb import target_group_name
from tests.functional.stack import Harness
from tests.functional.targets_stack import TargetsStack

HEALTH = {"path": "/healthz", "interval_seconds": 10, "timeout_ms": 3000,
          "healthy_threshold": 2, "unhealthy_threshold": 4, "expected_statuses": [204, 200]}


def targets_route(route_id: str = "orders", *, path: str = "/orders/{proxy+}",
                  upstreams: list[dict] | None = None, **extra) -> dict:
    return {
        "route_id": route_id,
        "path": path,
        "methods": ["GET", "POST"],
        "upstreams": upstreams or [
            {"name": "blue", "priority": 0, "targets": [{"ip": "10.64.1.10", "port": 8080},
                                                        {"ip": "10.64.17.10", "port": 8080}]},
            {"name": "green", "priority": 1, "targets": [{"ip": "10.64.1.20", "port": 9090}]},
        ],
        "health_check": HEALTH,
        **extra,
    }


@pytest.fixture
def stack(aws) -> TargetsStack:
    return TargetsStack(aws).create()


@pytest.fixture
def harness(stack, monkeypatch) -> Harness:
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack.aws.url)
    return Harness(stack)


def writes(harness: Harness, service: str) -> list[str]:
    reads = ("Get", "Describe", "List")
    return [c for c in harness.calls
            if c.startswith(service + ".") and not c.split(".", 1)[1].startswith(reads)]


def test_targets_route_gets_health_checked_target_groups_a_weighted_rule_and_a_vpc_link(
        stack, harness):
    stack.put_route(targets_route())
    assert harness.run() == {"batchItemFailures": []}

    groups = stack.target_groups()
    assert set(groups) == {"orders/blue", "orders/green"}
    blue = groups["orders/blue"]
    assert blue["TargetGroupName"] == target_group_name("orders", "blue", stack.vpc_id)
    assert len(blue["TargetGroupName"]) <= 32
    assert (blue["TargetType"], blue["Protocol"], blue["VpcId"]) == ("ip", "HTTP", stack.vpc_id)
    assert (blue["HealthCheckPath"], blue["HealthCheckIntervalSeconds"],
            blue["HealthCheckTimeoutSeconds"], blue["HealthyThresholdCount"],
            blue["UnhealthyThresholdCount"], blue["Matcher"]["HttpCode"]) == (
        "/healthz", 10, 3, 2, 4, "200,204")
    assert blue["Targets"] == {("10.64.1.10", 8080), ("10.64.17.10", 8080)}
    assert groups["orders/green"]["Targets"] == {("10.64.1.20", 9090)}

    [rule] = stack.rules()
    assert rule["Conditions"] == [{"Field": "http-header", "HttpHeaderConfig": {
        "HttpHeaderName": "X-Turnout-Route", "Values": ["orders"]}}]
    assert rule["Tags"] == {"turnout:route": "orders"}
    assert stack.rule_weights("orders") == {"blue": 1, "green": 0}

    integration = stack.api_methods()[("/orders/{proxy+}", "GET")]["methodIntegration"]
    assert integration["type"] == "HTTP_PROXY"
    assert integration["connectionType"] == "VPC_LINK"
    assert integration["uri"] == f"http://{stack.load_balancer_dns}/orders/{{proxy}}"
    assert integration["requestParameters"]["integration.request.header.X-Turnout-Route"] == (
        "'orders'")
    status = stack.status("orders")
    assert status["phase"] == "READY" and status["active_upstream"] == "blue"


def test_second_run_of_an_unchanged_targets_route_makes_no_elb_or_apigateway_writes(
        stack, harness):
    stack.put_route(targets_route())
    harness.run()
    stack.put_route(targets_route())  # a no-op put still emits a MODIFY record
    harness.run()
    assert writes(harness, "elasticloadbalancing") + writes(harness, "elbv2") == []
    assert harness.apigateway_writes() == []


def test_changing_targets_registers_the_new_and_deregisters_the_removed(stack, harness):
    stack.put_route(targets_route())
    harness.run()
    doc = targets_route()
    doc["upstreams"][0]["targets"] = [{"ip": "10.64.17.10", "port": 8080},
                                      {"ip": "10.64.17.10", "port": 8081},
                                      {"ip": "10.64.2.30", "port": 8080}]
    stack.put_route(doc)
    harness.run()

    groups = stack.target_groups()
    assert groups["orders/blue"]["Targets"] == {
        ("10.64.17.10", 8080), ("10.64.17.10", 8081), ("10.64.2.30", 8080)}
    assert groups["orders/green"]["Targets"] == {("10.64.1.20", 9090)}
    assert sorted(c.split(".", 1)[1] for c in writes(harness, "elbv2")) == [
        "DeregisterTargets", "RegisterTargets"]


def test_upstreams_sharing_a_priority_split_the_rule_by_weight_and_changes_converge(
        stack, harness):
    stack.put_route(targets_route())
    harness.run()
    doc = targets_route()
    doc["upstreams"][0]["weight"] = 3
    doc["upstreams"][1].update(priority=0, weight=1)
    doc["health_check"] = dict(HEALTH, path="/ready", expected_statuses=[200])
    stack.put_route(doc)
    harness.run()

    assert stack.rule_weights("orders") == {"blue": 3, "green": 1}
    groups = stack.target_groups()
    assert {g["HealthCheckPath"] for g in groups.values()} == {"/ready"}
    assert {g["Matcher"]["HttpCode"] for g in groups.values()} == {"200"}
    assert len(stack.rules()) == 1

    doc["upstreams"][1]["priority"] = 2
    stack.put_route(doc)
    harness.run()
    assert stack.rule_weights("orders") == {"blue": 3, "green": 0}


def test_a_failed_over_rule_keeps_its_weights_when_the_route_is_edited(stack, harness):
    stack.put_route(targets_route())
    harness.run()
    groups = stack.target_groups()
    [rule] = stack.rules()
    stack.aws.client("elbv2").modify_rule(RuleArn=rule["RuleArn"], Actions=[{
        "Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": groups["orders/blue"]["TargetGroupArn"], "Weight": 0},
            {"TargetGroupArn": groups["orders/green"]["TargetGroupArn"], "Weight": 1}]}}])
    doc = targets_route()
    doc["upstreams"][1]["targets"].append({"ip": "10.64.1.21", "port": 9090})
    stack.put_route(doc)
    harness.run()

    assert stack.rule_weights("orders") == {"blue": 0, "green": 1}
    assert stack.target_groups()["orders/green"]["Targets"] == {
        ("10.64.1.20", 9090), ("10.64.1.21", 9090)}


def test_removing_an_upstream_repoints_the_rule_before_deleting_its_target_group(stack, harness):
    stack.put_route(targets_route())
    harness.run()
    doc = targets_route()
    doc["upstreams"] = doc["upstreams"][:1]
    stack.put_route(doc)
    harness.run()

    assert set(stack.target_groups()) == {"orders/blue"}
    assert stack.rule_weights("orders") == {"blue": 1}
    elb_writes = [c.split(".", 1)[1] for c in writes(harness, "elbv2")]
    assert elb_writes == ["ModifyRule", "DeleteTargetGroup"]


def test_deleting_the_route_removes_its_rule_then_its_target_groups(stack, harness):
    stack.put_route(targets_route())
    stack.put_route(targets_route("billing", path="/billing", upstreams=[
        {"name": "main", "priority": 0, "targets": [{"ip": "10.64.3.3", "port": 80}]}]))
    harness.run()
    stack.delete_route("orders")
    harness.run()

    assert set(stack.target_groups()) == {"billing/main"}
    assert [r["Tags"]["turnout:route"] for r in stack.rules()] == ["billing"]
    elb_writes = [c.split(".", 1)[1] for c in writes(harness, "elbv2")]
    assert elb_writes == ["DeleteRule", "DeleteTargetGroup", "DeleteTargetGroup"]
    assert stack.status("orders")["phase"] == "DELETED"


def test_a_route_moved_from_targets_to_a_url_leaves_nothing_on_the_alb(stack, harness):
    stack.put_route(targets_route())
    harness.run()
    stack.put_route({"route_id": "orders", "path": "/orders/{proxy+}",
                     "upstreams": [{"name": "saas", "priority": 0,
                                    "url": "https://orders.example"}]})
    harness.run()
    assert stack.target_groups() == {}
    assert stack.rules() == []
    assert stack.status("orders")["phase"] == "READY"


def test_each_route_gets_its_own_rule_priority(stack, harness):
    for name in ("a", "b", "c", "d"):
        stack.put_route(targets_route(name, path=f"/{name}", upstreams=[
            {"name": "main", "priority": 0, "targets": [{"ip": "10.64.3.3", "port": 80}]}]))
    harness.run()
    rules = stack.rules()
    assert sorted(r["Tags"]["turnout:route"] for r in rules) == ["a", "b", "c", "d"]
    assert len({r["Priority"] for r in rules}) == 4


def test_more_target_upstreams_than_an_alb_rule_forwards_to_is_rejected(stack, harness):
    upstreams = [{"name": f"u{i}", "priority": i, "targets": [{"ip": f"10.64.4.{i}", "port": 80}]}
                 for i in range(6)]
    stack.put_route(targets_route(upstreams=upstreams))
    harness.run()
    status = stack.status("orders")
    assert status["phase"] == "REJECTED"
    assert status["reason"] == "TooManyTargetUpstreams"
    assert stack.rules() == []


def test_resync_removes_the_rule_and_groups_of_a_route_whose_delete_was_missed(stack, harness):
    stack.put_route(targets_route())
    harness.run()
    stack.delete_route("orders")
    stack.next_event()  # the stream record is lost

    harness.resync()
    assert stack.target_groups() == {}
    assert stack.rules() == []


ELB_WRITES = ["CreateTargetGroup", "RegisterTargets", "CreateTargetGroup", "RegisterTargets",
              "CreateRule"]


class CrashingHarness(Harness):
    """Fails the ``crash_at``-th ELB write of a run (1-based), as a crash there would."""

    crash_at: int | None = None

    def run(self, event: dict | None = None) -> dict:
        self._elb_writes = 0
        return super().run(event)

    def _on_call(self, model, **kwargs):
        name = f"{model.service_model.service_name}.{model.name}"
        if name.startswith("elbv2.") and not model.name.startswith(("Describe", "Get")):
            self._elb_writes += 1
            if self._elb_writes == self.crash_at:
                self.calls.append(name)
                raise RuntimeError(f"crash before {name}")
        return super()._on_call(model, **kwargs)


def test_a_crash_before_any_elb_write_converges_to_the_same_state_on_retry(stack, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack.aws.url)
    harness = CrashingHarness(stack)
    for k, operation in enumerate(ELB_WRITES, start=1):
        route_id = f"crash-{k}"
        stack.put_route(targets_route(route_id, path=f"/{route_id}"))
        event = stack.next_event()
        harness.crash_at = k
        assert harness.run(event)["batchItemFailures"], "the crash fails the record"
        assert harness.calls[-1] == f"elbv2.{operation}"
        harness.crash_at = None
        assert harness.run(event) == {"batchItemFailures": []}

        groups = {name: g["Targets"] for name, g in stack.target_groups().items()
                  if name.startswith(route_id + "/")}
        assert groups == {f"{route_id}/blue": {("10.64.1.10", 8080), ("10.64.17.10", 8080)},
                          f"{route_id}/green": {("10.64.1.20", 9090)}}
        assert [r["Tags"]["turnout:route"] for r in stack.rules()].count(route_id) == 1
        assert stack.rule_weights(route_id) == {"blue": 1, "green": 0}
        assert stack.status(route_id)["phase"] == "READY"
        harness.run(event)
        assert writes(harness, "elbv2") == []


def test_targets_outside_the_albs_vpc_are_registered_in_every_availability_zone(stack, harness):
    registered: list[dict] = []
    harness.session_events.register(
        "provide-client-params.elastic-load-balancing-v2.RegisterTargets",
        lambda params, **kwargs: registered.extend(params["Targets"]))
    stack.put_route(targets_route(upstreams=[
        {"name": "mixed", "priority": 0, "targets": [{"ip": "10.64.1.10", "port": 80},
                                                     {"ip": "10.99.0.5", "port": 80}]}]))
    harness.run()
    assert sorted(registered, key=lambda t: t["Id"]) == [
        {"Id": "10.64.1.10", "Port": 80},
        {"Id": "10.99.0.5", "Port": 80, "AvailabilityZone": "all"}]
    assert stack.target_groups()["orders/mixed"]["Targets"] == {("10.64.1.10", 80),
                                                                ("10.99.0.5", 80)}
