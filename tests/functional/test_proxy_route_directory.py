"""The proxy's route directory under many concurrent requests of one route.

On the local cloud one function process serves many requests at once; when a route's cached
status goes stale, one request reads it again and the others go on with the last one read,
instead of every request reading the state table at the same moment.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from data_plane.proxy.route_directory import RouteDirectory
from tests.functional.test_proxy_support import (
    ROUTES_TABLE,
    STATE_TABLE,
    create_tables,
    proxy_route,
    put_route,
    put_status,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_stale_status_is_read_once_while_concurrent_requests_serve_the_last_one(aws):
    create_tables(aws)
    put_route(aws, proxy_route("orders", "/orders/{proxy+}", "https://a.example",
                               "https://b.example"))
    put_status(aws, "orders", active_upstream="primary")
    client = aws.client("dynamodb")
    reads: list[float] = []

    def slow_status_read(**kwargs) -> None:  # the state table answers slowly
        reads.append(time.monotonic())
        time.sleep(0.3)

    client.meta.events.register("before-call.dynamodb.GetItem", slow_status_read)
    clock = Clock()
    directory = RouteDirectory(client, routes_table=ROUTES_TABLE, state_table=STATE_TABLE,
                               clock=clock, status_ttl_seconds=2.0)
    first = directory.resolve("/orders/{proxy+}", "GET")
    assert first is not None and first.active_upstream == "primary"
    assert len(reads) == 1

    put_status(aws, "orders", active_upstream="secondary")  # a failover happened meanwhile
    clock.now += 2.5  # the cached status is stale
    start = threading.Barrier(16)

    def request() -> str | None:
        start.wait()
        return directory.resolve("/orders/{proxy+}", "GET").active_upstream

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: request(), range(16)))

    assert len(reads) == 2, "one read of the stale status, not one per request"
    assert set(answers) <= {"primary", "secondary"} and "secondary" in answers
    assert directory.resolve("/orders/{proxy+}", "GET").active_upstream == "secondary"
