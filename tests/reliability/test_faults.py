"""Faults in the control plane: the reconcile function dying mid-batch, the state table
unavailable, a failover execution dying while it holds the route's lock. Every route
converges, nothing is lost, and no failover is left half-done. (Throttled AWS calls are
covered by ``tests/functional/test_convergence.py``, 30 % of API Gateway calls answered 429.)"""

from __future__ import annotations

import pytest

from tests.reliability import faults

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_routes_converge_and_nothing_is_lost_when_the_reconcile_function_dies_mid_batch(aws):
    world = faults.run_crash(aws)

    assert world.crashes == len(faults.CRASH_POINTS), "every crash point was reached"
    assert world.wrong() == []
    assert world.failure_queue_messages == 0, "records were given up on instead of retried"
    assert world.resync_writes == 0, "the resync found something left to repair"


def test_routes_written_while_the_state_table_is_unavailable_all_converge(aws):
    world, _ = faults.run_state_table_outage(aws)

    assert world.refused_calls > 0, "the outage was felt"
    assert world.wrong() == []
    assert world.failure_queue_messages == 0
    assert world.resync_writes == 0


def test_a_failover_that_cannot_reach_the_state_table_changes_nothing_and_the_next_one_switches(
        aws, tmp_path):
    during, after = faults.run_failover_outage(aws, tmp_path)

    assert during.notes["refused_calls"] > 0
    assert faults.execution_statuses(during) == ["FAILED"]
    assert "Failover Failed" in during.events and "Failover Completed" not in during.events
    assert during.audit == [] and during.variable == "outage-a.example"
    assert "lock_owner" not in (during.record or {}), "a lock was left behind"

    assert faults.execution_statuses(after)[-1] == "SUCCEEDED"
    assert len(after.audit) == 1 and after.variable == "outage-b.example"
    assert "lock_owner" not in after.record


def test_a_lock_left_by_a_dead_failover_expires_and_the_next_alarm_switches(aws, tmp_path):
    crashed, before_expiry, after_expiry = faults.run_lock_expiry(aws, tmp_path)

    assert faults.execution_statuses(crashed) == ["ABORTED"]
    assert crashed.record["lock_owner"] == crashed.notes["stopped"], "the dead execution holds the lock"
    assert crashed.audit == [] and crashed.variable == "locked-a.example"

    # before expiry: the live lock keeps a second execution off the route
    assert before_expiry.notes["seconds_left"] > 0
    assert faults.execution_statuses(before_expiry)[-1] == "SUCCEEDED"
    assert before_expiry.audit == [] and before_expiry.variable == "locked-a.example"

    # after expiry: the next alarm takes the lock over and switches, once
    assert faults.execution_statuses(after_expiry)[-1] == "SUCCEEDED"
    assert len(after_expiry.audit) == 1 and after_expiry.variable == "locked-b.example"
    assert "lock_owner" not in after_expiry.record
