"""The real data-plane handler on the embedded AWS endpoint, forwarding to real upstreams on
127.0.0.1: credentials, retries on the next upstream, outlier ejection and header hygiene.

Routes and statuses live in DynamoDB tables and secrets in Secrets Manager on the endpoint; the
handler is fed API Gateway proxy events as API Gateway sends them. Only the clock of its caches
and outlier detector is injected, so ejection times can pass without waiting.
"""

from __future__ import annotations

import io
import json
import logging
import random
import time
from collections.abc import Iterator

import pytest

from control_plane.settings import function_environment
from data_plane.proxy.handler import Dependencies, logger, make_handler
from tests.conftest import AwsEndpoint
from tests.functional.test_proxy_support import (
    CONTEXT,
    ROUTES_TABLE,
    STATE_TABLE,
    Upstream,
    body_of,
    closed_url,
    create_tables,
    event,
    header_of,
    proxy_route,
    put_route,
    put_status,
)

SECRET_VALUE = "s3cr3t-Value-4242"  # noqa: S105 - the test's own secret, searched for everywhere
SECRETS_PREFIX = "arn:aws:secretsmanager:us-east-1:123456789012:secret:turnout/"
RETRY_ALL = {"attempts": 1, "on": ["connect-failure", "5xx", "timeout"]}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Proxy:
    """The real handler, invoked as Lambda would invoke it, with this test's environment."""

    def __init__(self, aws: AwsEndpoint, clock: Clock) -> None:
        self.env = {
            "ROUTES_TABLE": ROUTES_TABLE,
            "STATE_TABLE": STATE_TABLE,
            "AWS_ENDPOINT_URL": aws.url,
            "AWS_REGION": aws.region,
            "UPSTREAM_SECRETS_ARN_PREFIX": SECRETS_PREFIX,
            "TURNOUT_ALLOW_LOOPBACK_UPSTREAMS": "true",
        }
        self.handler = make_handler(
            lambda settings: Dependencies.build(settings, clock=clock, rng=random.Random(3))
        )

    def __call__(self, request: dict) -> dict:
        token = function_environment.set(self.env)
        try:
            return self.handler(request, CONTEXT)
        finally:
            function_environment.reset(token)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def proxy(aws: AwsEndpoint, clock: Clock) -> Proxy:
    create_tables(aws)
    return Proxy(aws, clock)


@pytest.fixture
def a() -> Iterator[Upstream]:
    server = Upstream("a")
    yield server
    server.close()


@pytest.fixture
def b() -> Iterator[Upstream]:
    server = Upstream("b")
    yield server
    server.close()


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Every line the function logs, formatted as it would be on AWS."""
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logger.registered_formatter)
    watched = [logging.getLogger(logger.service), logging.getLogger("turnout.data_plane")]
    for watched_logger in watched:
        watched_logger.addHandler(handler)
    yield sink
    for watched_logger in watched:
        watched_logger.removeHandler(handler)


def get(path: str = "/x", **kwargs) -> dict:
    return event("GET", "/{proxy+}", path, **kwargs)


def served_by(result: dict) -> str:
    assert result["statusCode"] == 200, result
    return header_of(result, "X-Upstream")[0]


def seen(result: dict) -> dict:
    return json.loads(body_of(result))


def seen_headers(result: dict, name: str) -> list[str]:
    return [v for k, v in seen(result)["headers"] if k.lower() == name.lower()]


# ---- credentials ---------------------------------------------------------------------------


def test_injected_credential_reaches_the_upstream_and_appears_nowhere_else(aws, proxy, a, logs):
    arn = aws.client("secretsmanager").create_secret(
        Name="turnout/payments-token", SecretString=SECRET_VALUE)["ARN"]
    auth = {"header": "Authorization", "secret_arn": arn, "format": "Bearer {secret}"}
    put_route(aws, proxy_route("pay", "/{proxy+}", a.url, upstream_auth=auth))
    put_route(aws, proxy_route("down", "/down", closed_url(), closed_url(), upstream_auth=auth))

    served = proxy(get("/charge", headers=[("Authorization", "Bearer client-token"),
                                           ("x-api-key", "client-api-key")]))
    failed = proxy(event("GET", "/down", "/down"))

    assert seen_headers(served, "authorization") == [f"Bearer {SECRET_VALUE}"]
    assert seen_headers(served, "x-api-key") == []
    assert failed["statusCode"] == 502
    assert json.loads(body_of(failed)) == {"message": "Bad Gateway"}
    echoed = seen(served)
    echoed["headers"] = [h for h in echoed["headers"] if h[0].lower() != "authorization"]
    assert SECRET_VALUE not in json.dumps(echoed)  # nothing else the upstream echoed carries it
    assert SECRET_VALUE not in json.dumps(failed)
    assert "proxied" in logs.getvalue()
    assert SECRET_VALUE not in logs.getvalue()


def test_unreadable_or_foreign_secret_fails_the_request_before_anything_is_sent(aws, proxy, a, logs):
    foreign = aws.client("secretsmanager").create_secret(
        Name="other-team/token", SecretString=SECRET_VALUE)["ARN"]
    missing = f"{SECRETS_PREFIX}does-not-exist-AbCdEf"
    put_route(aws, proxy_route("foreign", "/foreign", a.url, upstream_auth={
        "header": "X-Token", "secret_arn": foreign}))
    put_route(aws, proxy_route("missing", "/missing", a.url, upstream_auth={
        "header": "X-Token", "secret_arn": missing}))

    for resource in ("/foreign", "/missing"):
        result = proxy(event("GET", resource, resource))
        assert result["statusCode"] == 502
        assert json.loads(body_of(result)) == {"message": "Bad Gateway"}
    assert a.requests == []
    assert "upstream credential unavailable" in logs.getvalue()
    assert SECRET_VALUE not in logs.getvalue()


# ---- retries on the next upstream ---------------------------------------------------------


def test_get_is_retried_on_the_next_upstream_when_the_primary_refuses(aws, proxy, b):
    put_route(aws, proxy_route("svc", "/{proxy+}", closed_url(), b.url))
    assert served_by(proxy(get())) == "b"


def test_get_is_retried_on_the_next_upstream_when_the_primary_answers_500(aws, proxy, a, b):
    a.forced_status = 500
    put_route(aws, proxy_route("svc", "/{proxy+}", a.url, b.url, retries=RETRY_ALL))
    assert served_by(proxy(get())) == "b"
    assert len(a.requests) == 1


def test_get_is_retried_on_the_next_upstream_when_the_primary_hangs(aws, proxy, a, b):
    put_route(aws, proxy_route("svc", "/{proxy+}", a.url, b.url, retries=RETRY_ALL, timeout_ms=3000))
    assert served_by(proxy(get())) == "a"  # a warm function: the time budget is all the route's
    a.delay_seconds = 30
    assert served_by(proxy(get())) == "b"
    assert len(a.requests) == 2


def test_post_is_not_retried_after_a_500_and_the_client_sees_the_upstreams_answer(aws, proxy, a, b):
    a.forced_status = 500
    put_route(aws, proxy_route("svc", "/{proxy+}", a.url, b.url, retries=RETRY_ALL))
    result = proxy(event("POST", "/{proxy+}", "/orders", body=b'{"n":1}'))
    assert result["statusCode"] == 500
    assert body_of(result) == b"a says 500"
    assert b.requests == []


def test_post_is_not_retried_after_a_timeout(aws, proxy, a, b):
    put_route(aws, proxy_route("svc", "/{proxy+}", a.url, b.url, retries=RETRY_ALL, timeout_ms=1500))
    assert served_by(proxy(get())) == "a"
    a.delay_seconds = 3
    result = proxy(event("POST", "/{proxy+}", "/orders", body=b"{}"))
    assert result["statusCode"] == 504
    assert json.loads(body_of(result)) == {"message": "Gateway Timeout"}
    assert b.requests == []


def test_post_is_retried_when_the_primary_refuses_the_connection(aws, proxy, b):
    put_route(aws, proxy_route("svc", "/{proxy+}", closed_url(), b.url))
    result = proxy(event("POST", "/{proxy+}", "/orders", body=b'{"n":1}'))
    assert served_by(result) == "b"
    assert seen(result)["body"] == '{"n":1}'


def test_every_upstream_refusing_gives_502_without_internals(aws, proxy):
    put_route(aws, proxy_route("svc", "/{proxy+}", closed_url(), closed_url(), retries=RETRY_ALL))
    result = proxy(get())
    assert result["statusCode"] == 502
    assert json.loads(body_of(result)) == {"message": "Bad Gateway"}
    assert "127.0.0.1" not in json.dumps(result)


def test_when_every_try_fails_the_client_sees_the_last_real_answer_not_a_502(aws, proxy, a):
    a.forced_status = 503
    put_route(aws, proxy_route("svc", "/{proxy+}", a.url, closed_url(), retries=RETRY_ALL))
    result = proxy(get())
    assert result["statusCode"] == 503
    assert body_of(result) == b"a says 503"


def test_traffic_starts_on_the_upstream_the_control_plane_made_active(aws, proxy, a, b):
    put_route(aws, proxy_route("svc", "/{proxy+}", a.url, b.url))
    put_status(aws, "svc", active_upstream="u1")
    assert served_by(proxy(get())) == "b"
    assert a.requests == []


# ---- outlier detection ---------------------------------------------------------------------


def test_failing_upstream_is_ejected_then_readmitted_after_the_ejection_time(aws, proxy, clock, a, b):
    a.forced_status = 503
    put_route(aws, proxy_route("svc", "/{proxy+}", a.url, b.url, retries=RETRY_ALL))

    for _ in range(3):
        assert served_by(proxy(get())) == "b"
    assert len(a.requests) == 3  # three consecutive failures: ejected

    for _ in range(5):
        assert served_by(proxy(get())) == "b"
    assert len(a.requests) == 3  # skipped while ejected

    a.forced_status = None
    clock.now += 31  # past the 30 s base ejection time
    assert served_by(proxy(get())) == "a"
    assert len(a.requests) == 4


def test_ejected_upstream_is_still_tried_when_every_other_one_fails(aws, proxy, clock, a, b):
    # four retries within one budget window (the default budget allows three)
    proxy.env.update(RETRY_BUDGET_MIN_EXTRA_TRIES="4", RETRY_BUDGET_WINDOW_SECONDS="3600")
    a.forced_status = 503
    put_route(aws, proxy_route("svc", "/{proxy+}", a.url, b.url, retries=RETRY_ALL))
    for _ in range(3):
        proxy(get())
    a.forced_status, b.forced_status = None, 503
    assert served_by(proxy(get())) == "a"  # b fails, ejected a is the last resort


def test_retry_refused_by_the_retry_budget_leaves_the_client_the_5xx_and_shows_in_the_log(
    aws, proxy, a, b, logs
):
    proxy.env.update(RETRY_BUDGET_MIN_EXTRA_TRIES="1", RETRY_BUDGET_WINDOW_SECONDS="3600")
    a.forced_status = 503
    put_route(aws, proxy_route("svc", "/{proxy+}", a.url, b.url, retries=RETRY_ALL))
    assert served_by(proxy(get())) == "b"
    result = proxy(get())
    assert result["statusCode"] == 503
    assert header_of(result, "X-Upstream") == ["a"]
    assert len(b.requests) == 1
    assert '"tries":["u0:503","u1:budget"]' in logs.getvalue().replace(" ", "")


# ---- what the upstream receives and the client gets back -----------------------------------


def test_hop_by_hop_headers_and_api_key_are_stripped_and_forwarded_for_is_appended(aws, proxy, a):
    put_route(aws, proxy_route("svc", "/{proxy+}", a.url))
    result = proxy(get("/x", source_ip="203.0.113.9", headers=[
        ("Connection", "keep-alive, X-Hop"), ("X-Hop", "secret-hop"), ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"), ("Upgrade", "websocket"), ("Proxy-Authorization", "Basic x"),
        ("x-api-key", "client-api-key"), ("X-Forwarded-For", "198.51.100.7"),
        ("X-Client", "kept"), ("X-Client", "twice"),
    ]))
    names = [k.lower() for k, _ in seen(result)["headers"]]
    for dropped in ("connection", "x-hop", "keep-alive", "te", "upgrade", "proxy-authorization",
                    "x-api-key"):
        assert dropped not in names, dropped
    assert seen_headers(result, "x-forwarded-for") == ["198.51.100.7, 203.0.113.9"]
    assert seen_headers(result, "x-forwarded-proto") == ["https"]
    assert seen_headers(result, "x-client") == ["kept", "twice"]
    assert seen_headers(result, "host") == [a.url.removeprefix("http://")]


def test_path_query_and_body_reach_the_upstream_as_sent(aws, proxy, a):
    put_route(aws, proxy_route("svc", "/{proxy+}", a.url + "/base", methods=["PUT"]))
    result = proxy(event("PUT", "/{proxy+}", "/items/a%2Fb", query=[("x", "1"), ("x", "2"),
                                                                    ("y", "é")],
                         body=bytes(range(256)), binary=True,
                         headers=[("Content-Type", "application/octet-stream")]))
    echoed = seen(result)
    assert echoed["method"] == "PUT"
    assert echoed["path"] == "/base/items/a%2Fb?x=1&x=2&y=%C3%A9"
    assert echoed["body"].encode("latin-1") == bytes(range(256))


@pytest.mark.parametrize(("path", "status", "check"), [
    ("/binary", 200, lambda r: body_of(r) == bytes(range(256)) and r["isBase64Encoded"]),
    ("/gzip", 200, lambda r: header_of(r, "Content-Encoding") == ["gzip"] and r["isBase64Encoded"]),
    ("/redirect", 302, lambda r: header_of(r, "Location") == ["/elsewhere"]),
    ("/cookies", 200, lambda r: header_of(r, "Set-Cookie") == ["a=1", "b=2"]),
    ("/status/404", 404, lambda r: body_of(r) == b"a says 404"),
])
def test_answers_are_relayed_faithfully(aws, proxy, a, path, status, check):
    put_route(aws, proxy_route("svc", "/{proxy+}", a.url))
    result = proxy(get(path))
    assert result["statusCode"] == status
    assert check(result), result
    assert len(a.requests) == 1  # no redirect followed


def test_request_for_a_resource_no_valid_proxy_route_serves_gets_502(aws, proxy, a, logs):
    put_route(aws, proxy_route("direct", "/direct", a.url) | {"mode": "direct"})
    put_route(aws, {"route_id": "broken", "path": "/broken", "mode": "proxy"})
    for resource in ("/direct", "/broken", "/nowhere"):
        assert proxy(event("GET", resource, resource))["statusCode"] == 502
    assert a.requests == []
    assert "no valid proxy route" in logs.getvalue()


def test_route_written_after_the_routes_were_cached_serves_without_waiting_for_expiry(
        aws, proxy, clock, a):
    put_route(aws, proxy_route("one", "/one", a.url))
    assert served_by(proxy(event("GET", "/one", "/one"))) == "a"
    put_route(aws, proxy_route("two", "/two", a.url))
    clock.now += 1  # the early rescan interval, far below the 5 s cache lifetime
    assert served_by(proxy(event("GET", "/two", "/two"))) == "a"


# ---- hedging: a hung upstream costs a hedging delay, not a failed request --------------------


def warm(proxy: Proxy, answers: int = 25) -> None:
    """Enough answers for the function to know the upstream's usual latency."""
    for _ in range(answers):
        served_by(proxy(get()))


def test_get_waiting_on_a_hung_upstream_is_answered_by_the_next_one(aws, proxy, a, b, logs):
    put_route(aws, proxy_route("svc", "/{proxy+}", a.url, b.url, retries=RETRY_ALL, timeout_ms=20_000))
    warm(proxy)
    a.delay_seconds = 30  # hung, far past the route's whole budget
    assert served_by(proxy(get())) == "b"
    assert '"tries":["u0:outpaced","u1:200"]' in logs.getvalue().replace(" ", "")


def test_upstream_outpaced_three_times_in_a_row_is_ejected_and_no_longer_tried_first(aws, proxy, a, b):
    put_route(aws, proxy_route("svc", "/{proxy+}", a.url, b.url, retries=RETRY_ALL, timeout_ms=20_000))
    warm(proxy)
    before = len(a.requests)
    a.delay_seconds = 30
    for _ in range(3):
        assert served_by(proxy(get())) == "b"
    assert len(a.requests) == before + 3
    for _ in range(5):
        assert served_by(proxy(get())) == "b"
    assert len(a.requests) == before + 3  # ejected: not tried while b answers


def test_post_is_never_hedged_and_gets_the_slow_upstreams_answer(aws, proxy, a, b):
    put_route(aws, proxy_route("svc", "/{proxy+}", a.url, b.url, retries=RETRY_ALL, timeout_ms=10_000))
    warm(proxy)
    a.delay_seconds = 1
    result = proxy(event("POST", "/{proxy+}", "/orders", body=b'{"n":1}'))
    assert served_by(result) == "a"
    assert b.requests == []


def test_upstream_whose_try_timed_out_is_skipped_by_the_next_requests(aws, proxy, a, b):
    put_route(aws, proxy_route("svc", "/{proxy+}", a.url, b.url, retries=RETRY_ALL, timeout_ms=1500))
    assert served_by(proxy(get())) == "a"
    a.delay_seconds = 30
    assert proxy(event("POST", "/{proxy+}", "/orders", body=b"{}"))["statusCode"] == 504
    tried = len(a.requests)
    assert served_by(proxy(get())) == "b"  # the one timeout ejected a at once
    assert len(a.requests) == tried


def test_time_spent_before_the_function_started_counts_against_the_route_timeout(aws, proxy, a):
    put_route(aws, proxy_route("svc", "/{proxy+}", a.url, timeout_ms=2000))
    late = get()
    late["requestContext"]["requestTimeEpoch"] = int((time.time() - 3) * 1000)  # API Gateway gave up
    result = proxy(late)
    assert result["statusCode"] == 504
    assert a.requests == []
    fresh = get()
    fresh["requestContext"]["requestTimeEpoch"] = int(time.time() * 1000)
    assert served_by(proxy(fresh)) == "a"
