"""Which upstreams a proxied request tries, and in which order."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from control_plane.model.route import Upstream
from data_plane.proxy.upstream_order import tries, upstream_order


def up(name: str, priority: int, weight: int = 1) -> Upstream:
    return Upstream(name=name, priority=priority, weight=weight, url=f"https://{name}.example")


UPSTREAMS = [up("c", 2), up("a", 0), up("b", 1)]


def order(upstreams, active=None, ejected=(), seed=1) -> list[str]:
    found = upstream_order(
        upstreams, active=active, is_ejected=lambda u: u.name in ejected, rng=random.Random(seed)
    )
    return [u.name for u in found]


@pytest.mark.parametrize(
    ("active", "ejected", "expected"),
    [
        (None, (), ["a", "b", "c"]),  # by priority, primary first
        ("a", (), ["a", "b", "c"]),
        ("b", (), ["b", "c", "a"]),  # after a failover: onwards, then the ones failed away from
        ("c", (), ["c", "a", "b"]),
        ("gone", (), ["a", "b", "c"]),  # an active name the route no longer has: the primary
        (None, ("a",), ["b", "c", "a"]),  # an ejected upstream goes last
        ("b", ("b", "c"), ["a", "b", "c"]),
    ],
)
def test_active_group_first_then_by_priority_ejected_last(active, ejected, expected):
    assert order(UPSTREAMS, active=active, ejected=ejected) == expected


def test_equal_priorities_share_first_place_by_weight():
    group = [up("heavy", 0, weight=3), up("light", 0, weight=1), up("backup", 1)]
    rng = random.Random(7)
    firsts = Counter(
        upstream_order(group, active=None, is_ejected=lambda u: False, rng=rng)[0].name
        for _ in range(4000)
    )
    assert set(firsts) == {"heavy", "light"}
    assert firsts["heavy"] / 4000 == pytest.approx(0.75, abs=0.03)


def test_backup_of_a_shared_group_comes_after_both_members():
    group = [up("x", 0), up("y", 0), up("backup", 1)]
    for seed in range(20):
        assert order(group, seed=seed)[-1] == "backup"


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [(0, ["a"]), (1, ["a", "b"]), (2, ["a", "b", "c"]), (4, ["a", "b", "c", "a", "b"])],
)
def test_one_try_per_upstream_going_round_when_there_are_more_tries(attempts, expected):
    ranked = [up("a", 0), up("b", 1), up("c", 2)]
    assert [u.name for u in tries(ranked, attempts)] == expected


def test_no_upstreams_no_tries():
    assert tries([], 3) == []
