"""`targets` routes: AWS calls per change, and the local gateway's ALB path against a direct call.

Runs the real route-stream handler on an in-process AWS emulator with the stack's VPC, internal
ALB and VPC link (as the functional tests do), and prints:

- AWS calls (reads / writes, by service) for a `targets` route created, its targets changed,
  its priorities changed, written again unchanged, and deleted;
- requests/s and latency (p50, p99) of GETs through the local gateway (API Gateway + ALB
  emulation, a weighted rule, round-robin over two targets) against the same GETs sent
  straight to one target, measured in one run, one client at a time.

    .venv/bin/python -m bench.targets [--requests 500]
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import time
import urllib.request
from collections import Counter
from collections.abc import Callable

from aiohttp import web

from data_plane.gateway_config import ConfigSource, apigateway_client
from data_plane.local_gateway import LocalGateway
from data_plane.server_thread import ServerThread
from tests.conftest import AwsEndpoint, free_port
from tests.functional.stack import Harness
from tests.functional.targets_stack import TargetsStack

READS = ("Get", "Describe", "List", "Query", "Scan", "BatchGet")


def summary(calls: list[str]) -> str:
    by_kind: Counter[str] = Counter()
    for call in calls:
        service, operation = call.split(".", 1)
        by_kind[f"{service} {'reads' if operation.startswith(READS) else 'writes'}"] += 1
    return ", ".join(f"{k} {n}" for k, n in sorted(by_kind.items()))


def route(*pools: tuple[str, int, list[int]]) -> dict:
    return {"route_id": "shop", "path": "/shop/{proxy+}", "methods": ["GET"],
            "upstreams": [{"name": name, "priority": priority,
                           "targets": [{"ip": "127.0.0.1", "port": p} for p in ports]}
                          for name, priority, ports in pools]}


def latency(call: Callable[[], int], count: int) -> tuple[float, float, float]:
    timings = []
    started = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        assert call() == 200
        timings.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    timings.sort()
    return count / elapsed, statistics.median(timings) * 1000, timings[int(0.99 * count)] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    for key, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(key, value)
    port = free_port()
    os.environ["MOTO_PORT"] = str(port)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    aws = AwsEndpoint(url=f"http://127.0.0.1:{port}")
    os.environ["AWS_ENDPOINT_URL"] = aws.url
    urllib.request.urlopen(urllib.request.Request(f"{aws.url}/moto-api/reset", method="POST"))

    def hello() -> web.Application:
        app = web.Application()
        app.router.add_get("/{tail:.*}", lambda _request: web.Response(text="ok"))
        return app

    upstreams = [ServerThread(hello, name=f"target-{i}") for i in range(3)]
    for upstream in upstreams:
        upstream.start()
    a, b, c = (u.port for u in upstreams)
    try:
        stack = TargetsStack(aws).create()
        harness = Harness(stack)
        steps = [
            ("created (2 upstreams, 3 targets)", route(("blue", 0, [a, b]), ("green", 1, [c]))),
            ("targets changed (1 added, 1 removed)", route(("blue", 0, [a, c]), ("green", 1, [c]))),
            ("priorities changed (weights 1/1)", route(("blue", 0, [a, c]), ("green", 0, [c]))),
            ("written again unchanged", route(("blue", 0, [a, c]), ("green", 0, [c]))),
        ]
        print("AWS calls per `targets` route change (one route per batch):")
        for label, doc in steps:
            stack.put_route(doc)
            harness.run()
            print(f"  {label:40s} {len(harness.calls):3d} calls: {summary(harness.calls)}")
        stack.delete_route("shop")
        harness.run()
        print(f"  {'deleted':40s} {len(harness.calls):3d} calls: {summary(harness.calls)}")

        stack.put_route(route(("pool", 0, [a, b])))
        harness.run()
        source = ConfigSource(apigateway_client(aws.url, region=aws.region),
                              rest_api_id=stack.rest_api_id, stage_name=stack.stage,
                              refresh_interval_seconds=3600)
        t0 = time.perf_counter()
        source.start()
        snapshot_ms = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        source.refresh_now()
        reload_ms = (time.perf_counter() - t0) * 1000
        gateway = LocalGateway(source, port=0, access_log=None)
        gateway.start()
        try:
            def through(port_: int, path: str) -> Callable[[], int]:
                conn = http.client.HTTPConnection("127.0.0.1", port_, timeout=10)

                def call() -> int:
                    conn.request("GET", path)
                    response = conn.getresponse()
                    response.read()
                    return response.status
                return call

            direct = latency(through(a, "/shop/x"), args.requests)
            alb = latency(through(gateway.port, "/shop/x"), args.requests)
            print(f"configuration snapshot incl. the ALB (1 route, 1 group, 2 targets): "
                  f"first {snapshot_ms:.0f} ms (clients made), then {reload_ms:.0f} ms")
            print(f"GET, {args.requests} requests, one client, keep-alive:")
            print(f"  direct to a target          {direct[0]:7.0f} req/s  p50 {direct[1]:6.2f} ms"
                  f"  p99 {direct[2]:6.2f} ms")
            print(f"  gateway -> ALB -> target    {alb[0]:7.0f} req/s  p50 {alb[1]:6.2f} ms"
                  f"  p99 {alb[2]:6.2f} ms")
            print(f"  added by the gateway and ALB emulation: p50 {alb[1] - direct[1]:.2f} ms, "
                  f"p99 {alb[2] - direct[2]:.2f} ms")
        finally:
            gateway.stop()
            source.stop()
    finally:
        for upstream in upstreams:
            upstream.stop()
        server.stop()


if __name__ == "__main__":
    main()
