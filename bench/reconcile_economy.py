"""What the reconciler spends of AWS's control-plane budget.

Runs the real route-stream handler against the embedded AWS endpoint (moto's server in this
process) and counts every AWS call it makes, by operation:

- calls per route created, changed (upstream URL; path), deleted, and an unchanged re-put;
- deployments per batch and calls per route for a batch of N routes;
- the modelled time to converge the same load on AWS, where API Gateway allows about
  10 requests/s per account (burst 40) and one CreateDeployment per 5 s.

    .venv/bin/python -m bench.reconcile_economy [--batch 50] [--bulk 1000]
"""

from __future__ import annotations

import argparse
import logging
import os
from collections import Counter

from moto.server import ThreadedMotoServer

from control_plane.adapters.throttle import is_write
from tests.conftest import AwsEndpoint, free_port
from tests.functional.stack import Harness, Stack, route

AWS_APIGW_RATE = 10.0
AWS_APIGW_BURST = 40
AWS_DEPLOY_INTERVAL_SECONDS = 5.0


def summarize(calls: list[str]) -> dict[str, int]:
    by_op = Counter(calls)
    apigw = [c for c in calls if c.startswith("apigateway.")]
    return {
        "calls": len(calls),
        "writes": sum(1 for c in calls if is_write(c.split(".", 1)[1])),
        "apigateway": len(apigw),
        "apigateway_writes": sum(1 for c in apigw if is_write(c.split(".", 1)[1])),
        "deployments": by_op["apigateway.CreateDeployment"],
    }


def modelled_aws_seconds(apigw_calls: int, deployments: int) -> float:
    """Lower bound on AWS: the token bucket drains at 10/s after its burst of 40, and
    deployments are spaced 5 s apart; both budgets are shared, so the larger one bounds."""
    by_rate = max(0.0, (apigw_calls - AWS_APIGW_BURST) / AWS_APIGW_RATE)
    by_deploys = max(0, deployments - 1) * AWS_DEPLOY_INTERVAL_SECONDS
    return max(by_rate, by_deploys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=50, help="routes per stream batch")
    parser.add_argument("--bulk", type=int, default=1000, help="routes in the modelled bulk load")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",  # noqa: S105
                      AWS_DEFAULT_REGION="us-east-1")
    port = free_port()
    os.environ["MOTO_PORT"] = str(port)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    aws = AwsEndpoint(url=f"http://127.0.0.1:{port}")
    os.environ["AWS_ENDPOINT_URL"] = aws.url
    try:
        stack = Stack(aws).create()
        harness = Harness(stack)
        rows = []

        def step(name: str, action) -> dict[str, int]:
            action()
            harness.run()
            row = summarize(harness.calls)
            rows.append((name, row))
            return row

        doc = route("one", "/one/{proxy+}", "https://a.example", "https://b.example")
        step("route created", lambda: stack.put_route(doc))
        step("unchanged re-put", lambda: stack.put_route(doc))
        step("upstream URL changed", lambda: stack.put_route(
            route("one", "/one/{proxy+}", "https://c.example", "https://b.example")))
        step("path changed", lambda: stack.put_route(
            route("one", "/two/{id}", "https://c.example", "https://b.example")))
        step("route deleted", lambda: stack.delete_route("one"))

        for i in range(args.batch):
            stack.put_route(route(f"b{i}", f"/b{i}", f"https://b{i}.example", methods=["GET", "POST"]))
        harness.run()
        batch = summarize(harness.calls)
        rows.append((f"batch of {args.batch} created", batch))
        harness.resync()
        rows.append((f"resync of {args.batch}, nothing changed", summarize(harness.calls)))

        print(f"{'change':<34}{'calls':>7}{'writes':>8}{'apigw':>7}{'apigw w':>9}{'deploys':>9}")
        for name, r in rows:
            print(f"{name:<34}{r['calls']:>7}{r['writes']:>8}{r['apigateway']:>7}"
                  f"{r['apigateway_writes']:>9}{r['deployments']:>9}")

        per_route_apigw = batch["apigateway"] / args.batch
        batches = -(-args.bulk // args.batch)
        apigw_total = round(per_route_apigw * args.bulk)
        seconds = modelled_aws_seconds(apigw_total, batches)
        print()
        print(f"deployments per batch of {args.batch}: {batch['deployments']}")
        print(f"API Gateway calls per route in a batch of {args.batch}: {per_route_apigw:.2f}")
        print(f"modelled AWS convergence of {args.bulk} routes in batches of {args.batch}: "
              f"{apigw_total} API Gateway calls, {batches} deployments -> "
              f">= {seconds:.0f} s ({args.bulk / seconds if seconds else float('inf'):.1f} routes/s) "
              f"under {AWS_APIGW_RATE:.0f} req/s (burst {AWS_APIGW_BURST}) and 1 deployment / "
              f"{AWS_DEPLOY_INTERVAL_SECONDS:.0f} s")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
