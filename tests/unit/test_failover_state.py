"""Failover items in the state table, read back as decisions and ``turnout status`` need them."""

from __future__ import annotations

from datetime import UTC, datetime

from control_plane.adapters.failover_store import route_state_of
from control_plane.cli.status import report
from control_plane.model.failover import AuditEntry, Health, Record

AUDIT = AuditEntry(route_id="pay", time="2030-01-01T00:00:01.000Z", kind="failover",
                   from_upstream="a", to_upstream="b", reason="ActiveUpstreamUnhealthy",
                   why="'a' is unhealthy", who="alarm turnout-pay.a", execution_arn="arn:x",
                   spec_hash="h", mode="direct", trigger_alarm="turnout-pay.a",
                   changed=("status.active_upstream",))


def test_health_item_of_the_prober_is_read():
    item = {"route_id": "pay", "kind": "health#a", "healthy": False, "consecutive_successes": 0,
            "consecutive_failures": 3, "last_probe_time": "t1", "last_change_time": "t0"}
    assert Health.from_item(item) == Health(False, 0, 3, "t1", "t0")


def test_health_of_targets_only_item_is_healthy_while_any_target_is():
    assert Health.from_item({"targets": {"10.0.0.1:80": "unhealthy", "10.0.0.2:80": "healthy"}}
                            ).healthy is True
    assert Health.from_item({"targets": {"10.0.0.1:80": "unhealthy"}}).healthy is False
    assert Health.from_item({}).healthy is None


def test_record_reads_the_last_switch_time():
    record = Record.from_item({"last_switch_time": "2030-01-01T00:00:01.500Z",
                               "manual_choice": "b"})
    assert record.last_switch_time == datetime(2030, 1, 1, 0, 0, 1, 500000, tzinfo=UTC)
    assert record.manual_choice == "b"
    assert Record.from_item(None) == Record()


def test_audit_item_round_trips():
    assert AuditEntry.from_item(AUDIT.to_item()) == AUDIT
    assert AuditEntry.from_item({"kind": "status"}) is None


def test_route_state_sorts_items_and_finds_the_last_switch():
    later = AuditEntry(**{**AUDIT.__dict__, "time": "2030-01-01T00:05:00.000Z",
                          "from_upstream": "b", "to_upstream": "a", "kind": "failback"})
    items = [later.to_item(), AUDIT.to_item(),
             {"route_id": "pay", "kind": "status", "phase": "READY", "active_upstream": "b"},
             {"route_id": "pay", "kind": "health#a", "healthy": True},
             {"route_id": "pay", "kind": "failover", "lock_owner": "arn:y"}]
    state = route_state_of(items)
    assert state.status.active_upstream == "b"
    assert state.health["a"].healthy is True
    assert state.last_switch.kind == "failback"
    assert state.record.lock_owner == "arn:y"


def test_status_report_lists_upstreams_by_priority_with_health():
    document = {"route_id": "pay", "upstreams": [{"name": "b", "priority": 1},
                                                 {"name": "a", "priority": 0}]}
    state = route_state_of([AUDIT.to_item(),
                            {"route_id": "pay", "kind": "status", "phase": "READY",
                             "active_upstream": "b"},
                            {"route_id": "pay", "kind": "health#a", "healthy": False,
                             "consecutive_failures": 2}])
    shown = report("pay", document, state)
    assert [(u["name"], u["healthy"]) for u in shown["upstreams"]] == [("a", False), ("b", None)]
    assert shown["active_upstream"] == "b"
    assert shown["last_failover"]["why"] == "'a' is unhealthy"
    assert shown["switch_in_progress"] is None
