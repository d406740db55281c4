"""Time from ``put-item`` to the route serving traffic through the local gateway.

Starts ``turnout up`` in a subprocess (as a user would), writes routes one at a time with
boto3 ``put_item`` against the local AWS endpoint, and polls the gateway until the route's
first successful call. Prints the median / p90 / max over N routes, and the peak resident
memory of the ``turnout up`` process.

    .venv/bin/python -m bench.put_to_serve [--routes 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import boto3

from tests.system.harness import EchoUpstream, Turnout, route_item


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=20)
    args = parser.parse_args()

    started = time.monotonic()
    turnout = Turnout()
    startup = time.monotonic() - started
    upstream = EchoUpstream("bench")
    try:
        ddb = boto3.client("dynamodb", endpoint_url=turnout.env["AWS_ENDPOINT_URL"],
                           region_name="us-east-1", aws_access_key_id="local",
                           aws_secret_access_key="local")
        table = turnout.outputs["RoutesTableName"]
        timings = []
        for i in range(args.routes):
            route_id = f"bench-{i}"
            item = json.loads(route_item(route_id, f"/bench{i}/{{proxy+}}", upstream.url, ("GET",)))
            t0 = time.monotonic()
            ddb.put_item(TableName=table, Item=item)
            while turnout.call("GET", f"/bench{i}/ping")[0] != 200:
                if time.monotonic() - t0 > 60:
                    raise SystemExit(f"route {route_id} never served")
                time.sleep(0.01)
            timings.append(time.monotonic() - t0)
        timings.sort()
        p90 = timings[min(len(timings) - 1, int(0.9 * len(timings)))]
        print(f"turnout up: ready in {startup:.2f} s (subprocess start to 'ready')")
        print(f"put-item -> first successful call, {len(timings)} routes: "
              f"median {statistics.median(timings) * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms, "
              f"max {timings[-1] * 1000:.0f} ms")
        print(f"turnout up peak memory (VmHWM): {peak_rss_mib(turnout.proc.pid):.0f} MiB")
    finally:
        upstream.close()
        turnout.stop()


if __name__ == "__main__":
    main()
