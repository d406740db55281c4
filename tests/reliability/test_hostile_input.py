"""Hostile route items written with the AWS CLI: every one ends REJECTED with a reason a user
can read in ``turnout routes status``, none fails a batch, and the routes already serving go on
serving while they are written."""

from __future__ import annotations

import pytest

from tests.reliability.hostile import run_hostile
from tests.reliability.hostile_corpus import CATEGORIES, by_category, corpus
from tests.reliability.suite import Suite, Traffic
from tests.system.harness import Turnout

pytestmark = [pytest.mark.slow, pytest.mark.system, pytest.mark.timeout(1500)]


def test_the_corpus_holds_at_least_200_items_across_every_category():
    items = corpus()
    assert len(items) >= 200
    counts = by_category(items)
    assert set(counts) == set(CATEGORIES) and min(counts.values()) >= 10, counts
    assert len({i.route_id for i in items}) == len(items)


def test_every_hostile_item_is_rejected_with_a_reason_while_valid_routes_keep_serving(suite: Suite):
    items = [i for i in corpus() if not i.loopback]
    before = suite.turnout.statuses()

    report = run_hostile(suite.turnout, items, traffic=Traffic(suite, suite.serving))

    # DynamoDB itself refuses only items past its own limits (400 KB, 2048-byte key)
    assert all(item.may_be_refused_at_write for item, _ in report.writes.refused), [
        (item.label, error) for item, error in report.writes.refused]
    assert len(report.writes.written) >= 200
    assert report.not_rejected() == []
    assert report.failure_queue_messages == 0, "a hostile item failed a batch"
    serving_paths = {"/", "/steady", "/steady/{proxy+}", "/canary", "/canary/{proxy+}",
                     "/keyed", "/keyed/{proxy+}"}
    assert report.api_paths == serving_paths, "a hostile item reached API Gateway"
    assert len(report.traffic) >= 100
    assert report.traffic_failures() == []
    after = suite.turnout.statuses()
    for route_id in ("steady", "canary", "keyed"):
        assert after[route_id]["phase"] == before[route_id]["phase"] == "READY"

    table = suite.turnout.turnout("routes", "status", "--wide")
    assert table.returncode == 0, table.stderr
    for reason in report.reasons():
        assert reason in table.stdout
    suite.drain_events()


def test_loopback_spellings_are_rejected_by_a_stack_without_loopback_upstreams():
    items = [i for i in corpus() if i.loopback]
    strict = Turnout(allow_loopback_upstreams=False)
    try:
        report = run_hostile(strict, items)
    finally:
        assert strict.stop() == 0

    assert report.writes.refused == []
    assert report.not_rejected() == []
    reasons = {report.status_of(i)["reason"] for i in items}
    assert "UpstreamAddressNotAllowed" in reasons
    assert reasons <= {"UpstreamAddressNotAllowed", "TargetAddressNotPrivate", "UpstreamUrlInvalid",
                       "UpstreamSchemeNotAllowed", "MixedUpstreamSchemes"}, reasons
    assert report.failure_queue_messages == 0
    assert report.api_paths == {"/"}
