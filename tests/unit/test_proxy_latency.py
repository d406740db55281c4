"""Recent first-byte latencies per upstream, which the hedging delay is derived from."""

from __future__ import annotations

import pytest

from data_plane.proxy.latency import LatencyTracker


def test_no_percentile_until_enough_answers_were_seen():
    tracker = LatencyTracker(window=50, min_samples=5)
    for _ in range(4):
        tracker.record("a", 0.01)
    assert tracker.percentile("a", 0.99) is None
    tracker.record("a", 0.01)
    assert tracker.percentile("a", 0.99) == pytest.approx(0.01)
    assert tracker.percentile("b", 0.99) is None


def test_percentile_follows_the_most_recent_answers_only():
    tracker = LatencyTracker(window=100, min_samples=10)
    for _ in range(100):
        tracker.record("a", 2.0)  # a slow period...
    for _ in range(100):
        tracker.record("a", 0.01)  # ...forgotten once the window has moved on
    assert tracker.percentile("a", 0.99) == pytest.approx(0.01)


def test_a_rare_slow_answer_sets_the_percentile_of_a_small_window():
    tracker = LatencyTracker(window=100, min_samples=10)
    for _ in range(97):
        tracker.record("a", 0.01)
    for _ in range(3):
        tracker.record("a", 0.5)
    assert tracker.percentile("a", 0.99) == pytest.approx(0.5)


def test_p95_ignores_stalls_of_one_answer_in_twenty_five():
    tracker = LatencyTracker(window=100, min_samples=10)
    for index in range(100):
        tracker.record("a", 0.7 if index % 25 == 0 else 0.01)
    assert tracker.percentile("a", 0.95) == pytest.approx(0.01)
