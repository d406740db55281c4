"""Routes per second for a bulk load through the local cloud.

Starts ``turnout up`` (as a user would) and one real upstream on 127.0.0.1, writes N routes
to it with ``BatchWriteItem`` as fast as DynamoDB takes them, and waits until every route's
status is READY. The upstream answers, so the figure is the reconcile path's, not that of N
failover workflows started for N unreachable hosts. Prints the load rate, the
convergence time and routes/s, and the number of deployments it took.

API Gateway pacing is lifted (``--apigateway-rate``) so the figure is the local stack's own
throughput; ``bench.reconcile_economy`` models the same load under AWS's budget.

Every route is probed by the local prober (``--probe-interval``, the route's
``health_check.interval_seconds``), as it would be in use: on one 2-core machine the local
cloud's moto server answers the prober, the alarms and the reconciler alike, so the probe
rate of the routes already written shapes the figure; it is printed with it.

    .venv/bin/python -m bench.bulk_load [--routes 1000] [--apigateway-rate 1000]
        [--probe-interval 10]
"""

from __future__ import annotations

import argparse
import json
import time

import boto3

from tests.system.harness import EchoUpstream, Turnout, route_item


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=1000)
    parser.add_argument("--apigateway-rate", default="1000")
    parser.add_argument("--probe-interval", type=int, default=10,
                        help="health_check.interval_seconds of every route (default: the route default)")
    args = parser.parse_args()

    upstream = EchoUpstream("bulk")
    turnout = Turnout("--apigateway-rate", args.apigateway_rate)
    try:
        kwargs = dict(endpoint_url=turnout.env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="local", aws_secret_access_key="local")
        ddb = boto3.client("dynamodb", **kwargs)
        apigw = boto3.client("apigateway", **kwargs)
        table, state = turnout.outputs["RoutesTableName"], turnout.outputs["StateTableName"]
        items = [json.loads(route_item(f"bulk-{i}", f"/bulk{i}/{{proxy+}}",
                                       f"{upstream.url}/bulk{i}", ("GET",)))
                 for i in range(args.routes)]
        for item in items:
            item["health_check"] = {"M": {"interval_seconds": {"N": str(args.probe_interval)}}}
        started = time.monotonic()
        for i in range(0, len(items), 25):
            ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": it}}
                                                       for it in items[i:i + 25]]})
        written = time.monotonic() - started
        ready = 0
        while ready < args.routes:
            time.sleep(5.0)
            ready = 0
            for page in ddb.get_paginator("scan").paginate(
                    TableName=state, FilterExpression="#p = :r AND #k = :s",
                    ExpressionAttributeNames={"#p": "phase", "#k": "kind"},
                    ExpressionAttributeValues={":r": {"S": "READY"}, ":s": {"S": "status"}},
                    Select="COUNT"):
                ready += page["Count"]
            if time.monotonic() - started > 1800:
                raise SystemExit(f"only {ready} of {args.routes} READY after 30 minutes")
        converged = time.monotonic() - started
        deployments = len(apigw.get_deployments(restApiId=turnout.outputs["RestApiId"],
                                                limit=500)["items"])
        print(f"{args.routes} routes written in {written:.1f} s "
              f"({args.routes / written:.0f} items/s, BatchWriteItem)")
        print(f"all READY after {converged:.1f} s: {args.routes / converged:.1f} routes/s "
              f"on the local cloud (API Gateway pacing {args.apigateway_rate}/s, every route "
              f"probed every {args.probe_interval} s), {deployments} deployments")
    finally:
        turnout.stop()
        upstream.close()


if __name__ == "__main__":
    main()
