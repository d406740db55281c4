"""Data-plane cost: requests/s and added latency of the local gateway and of the proxy handler,
against calling the upstream directly, measured in one run; and the data-plane handler's cold
import time.

Starts ``turnout up`` (as a user would), an upstream in its own process, and writes two routes
for it with the AWS CLI: a ``direct`` one and a ``proxy`` one. Then, for each path to the same
upstream:

- ``upstream``: the upstream called directly;
- ``gateway, direct route``: local gateway -> HTTP_PROXY -> upstream;
- ``gateway, proxy route``: local gateway -> Lambda Invoke on the local AWS endpoint ->
  data-plane handler -> upstream (the whole local path of a proxy route);
- ``Invoke API, proxy event``: the data-plane function invoked through the local endpoint's
  Invoke API with a proxy event, without the gateway (what the local Lambda emulation costs);
- ``handler in-process``: the data-plane handler called as a function in this process, reading
  the same tables (what the handler itself adds; on AWS this is the part that runs in Lambda).

Latency: p50/p99 of ``--requests`` sequential calls on a kept-alive connection; added latency
is the difference to the upstream's. Throughput: requests/s with ``--concurrency`` clients.

    .venv/bin/python -m bench.proxy_latency [--requests 300] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import boto3

from tests.system.harness import ROOT, Turnout, route_item
from tests.system.test_proxy_support import UpstreamProcess, proxy_route_item

Call = Callable[[], int]


def http_caller(port: int, path: str) -> Callable[[], Call]:
    """A factory of callers, one kept-alive connection each."""

    def make() -> Call:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def call() -> int:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            return response.status

        return call

    return make


def measure(make: Callable[[], Call], requests: int, concurrency: int) -> dict[str, float]:
    call = make()
    for _ in range(10):
        call()
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        status = call()
        latencies.append(time.perf_counter() - started)
        assert status == 200, status
    latencies.sort()
    local = threading.local()

    def one(_: int) -> int:
        caller = getattr(local, "call", None)
        if caller is None:
            caller = local.call = make()
        return caller()

    total = max(requests, concurrency * 40)
    with ThreadPoolExecutor(concurrency) as pool:
        started = time.perf_counter()
        statuses = list(pool.map(one, range(total)))
        elapsed = time.perf_counter() - started
    assert set(statuses) == {200}, set(statuses)
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000,
        "rps": total / elapsed,
    }


def cold_import_seconds(runs: int = 5) -> tuple[float, list[tuple[str, float]]]:
    code = ("import time; t = time.perf_counter(); import data_plane.proxy.handler; "
            "print(time.perf_counter() - t)")
    seconds = sorted(
        float(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout)
        for _ in range(runs)
    )
    trace = subprocess.run([sys.executable, "-X", "importtime", "-c", "import data_plane.proxy.handler"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stderr
    children: list[tuple[str, float]] = []  # what the handler module itself imports
    for line in trace.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].startswith("   ") and parts[2][3:4].strip():
            try:
                children.append((parts[2].strip(), int(parts[1]) / 1e6))
            except ValueError:
                continue
    children.sort(key=lambda item: -item[1])
    return statistics.median(seconds), children[:6]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    import_seconds, heaviest = cold_import_seconds()
    turnout = Turnout()
    upstream = UpstreamProcess("bench")
    try:
        endpoint = turnout.env["AWS_ENDPOINT_URL"]
        table = turnout.outputs["RoutesTableName"]
        turnout.aws("dynamodb", "put-item", "--table-name", table,
                    "--item", route_item("direct", "/direct/{proxy+}", upstream.url, ("GET",)))
        turnout.aws("dynamodb", "put-item", "--table-name", table,
                    "--item", proxy_route_item("proxied", "/proxied/{proxy+}", ("main", upstream.url)))
        for path in ("/direct/x", "/proxied/x"):
            turnout.wait_for(lambda path=path: turnout.call("GET", path)[0] == 200, what=path)

        results: dict[str, dict[str, float]] = {}
        rows: list[tuple[str, Callable[[], Call]]] = [
            ("upstream", http_caller(upstream.port, "/direct/x")),
            ("gateway, direct route", http_caller(turnout.gateway_port, "/direct/x")),
            ("gateway, proxy route", http_caller(turnout.gateway_port, "/proxied/x")),
            ("Invoke API, proxy event", invoke_caller(endpoint, turnout.outputs)),
            ("handler in-process", handler_caller(endpoint, turnout.outputs)),
        ]
        for name, make in rows:
            results[name] = measure(make, args.requests, args.concurrency)

        base = results["upstream"]
        print(f"data plane, {args.requests} sequential requests (latency) and "
              f"{args.concurrency} concurrent clients (throughput), one run:")
        print(f"  {'path':<26} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} {'+p99 ms':>8} {'req/s':>8}")
        for name, r in results.items():
            print(f"  {name:<26} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} "
                  f"{r['p50_ms'] - base['p50_ms']:8.2f} {r['p99_ms'] - base['p99_ms']:8.2f} "
                  f"{r['rps']:8.0f}")
        print(f"cold import of data_plane.proxy.handler: {import_seconds * 1000:.0f} ms "
              f"(median of 5 fresh interpreters)")
        print("  heaviest imports of the handler module (cumulative, one trace): "
              + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in heaviest))
    finally:
        upstream.close()
        turnout.stop()


def _proxy_event(path: str) -> dict:
    from tests.functional.test_proxy_support import event

    return event("GET", "/proxied/{proxy+}", path, source_ip="127.0.0.1")


def invoke_caller(endpoint: str, outputs: dict[str, str]) -> Callable[[], Call]:
    payload = json.dumps(_proxy_event("/proxied/x")).encode()

    def make() -> Call:
        client = boto3.session.Session().client(
            "lambda", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="local",
            aws_secret_access_key="local")  # noqa: S106 - the local endpoint's dummy credentials

        def call() -> int:
            answer = client.invoke(FunctionName=outputs["DataPlaneFunctionArn"], Payload=payload)
            return json.loads(answer["Payload"].read())["statusCode"]

        return call

    return make


def handler_caller(endpoint: str, outputs: dict[str, str]) -> Callable[[], Call]:
    from control_plane.settings import function_environment
    from data_plane.proxy.handler import Dependencies, logger, make_handler
    from tests.functional.test_proxy_support import CONTEXT

    logger.setLevel("WARNING")  # one line per request would measure the terminal
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    handler = make_handler(Dependencies.build)
    env = {"ROUTES_TABLE": outputs["RoutesTableName"], "STATE_TABLE": outputs["StateTableName"],
           "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1",
           "TURNOUT_ALLOW_LOOPBACK_UPSTREAMS": "true"}
    event = _proxy_event("/proxied/x")

    def make() -> Call:
        def call() -> int:
            token = function_environment.set(env)
            try:
                return handler(event, CONTEXT)["statusCode"]
            finally:
                function_environment.reset(token)

        return call

    return make


if __name__ == "__main__":
    main()
