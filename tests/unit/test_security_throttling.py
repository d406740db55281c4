"""API Gateway's token-bucket throttling and API-key grants, on a hand-driven clock."""

from __future__ import annotations

from data_plane.api_keys import ApiKeys, KeyGrant
from data_plane.throttling import Limit, Throttles


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def allowed(throttles: Throttles, limit: Limit, count: int, key="k") -> int:
    return sum(throttles.allow(key, limit) for _ in range(count))


def test_a_full_bucket_lets_the_burst_through_then_refuses():
    throttles = Throttles(Clock())
    assert allowed(throttles, Limit(10, 5), 20) == 5


def test_tokens_come_back_at_the_rate_and_never_beyond_the_burst():
    clock = Clock()
    throttles = Throttles(clock)
    limit = Limit(4, 5)
    allowed(throttles, limit, 5)
    clock.now += 0.75
    assert allowed(throttles, limit, 10) == 3
    clock.now += 60
    assert allowed(throttles, limit, 10) == 5


def test_buckets_are_separate_per_key():
    throttles = Throttles(Clock())
    assert allowed(throttles, Limit(1, 2), 5, key="a") == 2
    assert allowed(throttles, Limit(1, 2), 5, key="b") == 2


def test_a_lower_burst_takes_effect_without_handing_out_a_fresh_bucket():
    clock = Clock()
    throttles = Throttles(clock)
    allowed(throttles, Limit(1, 10), 3)
    assert allowed(throttles, Limit(1, 2), 5) == 2
    clock.now += 1
    assert allowed(throttles, Limit(1, 2), 5) == 1


def keys(*items: dict) -> list[dict]:
    return list(items)


def test_only_enabled_keys_of_plans_on_the_stage_are_accepted():
    api_keys = ApiKeys.build(
        keys({"id": "k1", "value": "v" * 40, "enabled": True},
             {"id": "k2", "value": "w" * 40, "enabled": False},
             {"id": "k3", "value": "x" * 40, "enabled": True}),
        [({"id": "p1", "throttle": {"rateLimit": 5.0, "burstLimit": 10}}, ["k1", "k2"])],
    )
    assert api_keys.grant_for("v" * 40) == KeyGrant("k1", "p1", Limit(5.0, 10))
    assert api_keys.grant_for("w" * 40) is None, "disabled"
    assert api_keys.grant_for("x" * 40) is None, "in no plan of this stage"
    assert api_keys.grant_for("nope") is None
    assert api_keys.grant_for(None) is None


def test_grants_never_hold_a_key_value():
    api_keys = ApiKeys.build(keys({"id": "k1", "value": "s3cr3t" * 7, "enabled": True}),
                             [({"id": "p1"}, ["k1"])])
    assert "s3cr3t" not in repr(api_keys)
