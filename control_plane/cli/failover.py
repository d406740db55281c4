"""``turnout failover ROUTE --to UPSTREAM``: a manual switch through the failover workflow.

The command starts an execution of the stack's failover state machine (output
``FailoverStateMachineArn``) with a manual trigger, so a person's switch takes the same lock,
leaves the same audit item and publishes the same events as an automatic one, and waits for
it. Exit 0 when traffic is on UPSTREAM, 1 when the workflow refused (unknown or unhealthy
upstream) or failed.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from typing import TYPE_CHECKING

from control_plane.cli import render
from control_plane.cli.errors import CommandError
from control_plane.cli.parser import add_aws_options, add_output_option

if TYPE_CHECKING:  # the AWS side is imported when the command runs (fast --help)
    from control_plane.cli.aws import AwsContext

STATE_MACHINE_OUTPUT = "FailoverStateMachineArn"
POLL_SECONDS = 0.5
DONE = ("switch", "AlreadyActive")


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``turnout failover``."""
    failover = commands.add_parser(
        "failover", help="Switch a route to another upstream by hand, through the workflow.",
        description="Start the failover workflow with a manual trigger: it locks the route, "
                    "switches it to UPSTREAM (stage variable, status or listener weights), "
                    "writes the audit item and publishes the events, as for an automatic "
                    "failover. The chosen upstream then stays while it is healthy (no "
                    "automatic failback from it). Waits for the workflow and prints what it did.",
    )
    failover.add_argument("route_id", metavar="ROUTE", help="the route's route_id")
    failover.add_argument("--to", required=True, metavar="UPSTREAM", dest="target",
                          help="the upstream to send the route's traffic to")
    failover.add_argument("--force", action="store_true",
                          help="switch even if the prober reports UPSTREAM unhealthy")
    failover.add_argument("--note", metavar="TEXT", help="why, for the audit trail")
    failover.add_argument("--no-wait", action="store_true",
                          help="print the execution ARN and return without waiting")
    failover.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                          help="how long to wait for the workflow (default: %(default)s)")
    failover.add_argument("--state-machine-arn", metavar="ARN",
                          help=f"the failover workflow (default: the stack's {STATE_MACHINE_OUTPUT})")
    add_output_option(failover, "text", "json")
    add_aws_options(failover)
    failover.set_defaults(handler=run_failover)


def run_failover(args: argparse.Namespace) -> int:
    from control_plane.cli.aws import AwsContext, aws_errors

    context = AwsContext.from_args(args)
    _check_route(context, args.route_id, args.target)
    machine = args.state_machine_arn or context._output(STATE_MACHINE_OUTPUT,
                                                         "--state-machine-arn")
    stepfunctions = context.client("stepfunctions")
    trigger = {"type": "manual", "target": args.target, "force": bool(args.force),
               "requested_by": _caller(context), "note": args.note}
    name = f"manual-{args.route_id[:40]}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    with aws_errors(context):
        arn = stepfunctions.start_execution(
            stateMachineArn=machine, name=name,
            input=json.dumps({"route_id": args.route_id, "trigger": trigger}),
        )["executionArn"]
    if args.no_wait:
        print(arn)
        return 0
    execution = _wait(context, arn, args.timeout)
    return _report(execution, args)


def _check_route(context: AwsContext, route_id: str, target: str) -> None:
    from control_plane.cli.tables import RoutesTable

    document = RoutesTable(context).get(route_id)
    if document is None:
        raise CommandError(f"route {route_id!r} not found in table {context.routes_table}",
                           next_step="see the routes there are with `turnout routes list`")
    names = [u.get("name") for u in document.get("upstreams") or [] if isinstance(u, dict)]
    if target not in names:
        raise CommandError(f"route {route_id!r} has no upstream {target!r} "
                           f"(it has: {', '.join(map(str, names))})",
                           next_step="pass one of those upstreams to --to")


def _caller(context: AwsContext) -> str:
    """Who asks, for the audit trail: the caller's AWS identity, else the local user."""
    try:
        return str(context.client("sts").get_caller_identity()["Arn"])
    except Exception:  # noqa: BLE001 - an identity is nice to have, never required
        return os.environ.get("USER") or "unknown person"


def _wait(context: AwsContext, arn: str, timeout: float) -> dict:
    from control_plane.cli.aws import aws_errors

    stepfunctions = context.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        with aws_errors(context):
            execution = stepfunctions.describe_execution(executionArn=arn)
        if execution["status"] != "RUNNING":
            return execution
        if time.monotonic() > deadline:
            raise CommandError(f"the workflow is still running after {timeout:.0f} s: {arn}",
                               next_step="follow it with `aws stepfunctions describe-execution "
                                         f"--execution-arn {arn}`, or wait longer with --timeout")
        time.sleep(POLL_SECONDS)


def _report(execution: dict, args: argparse.Namespace) -> int:
    status = execution["status"]
    output = json.loads(execution.get("output") or "{}")
    outcome = output.get("outcome")
    ok = status == "SUCCEEDED" and (outcome in DONE or output.get("reason") in DONE)
    if args.output == "json":
        print(render.to_json({"execution_arn": execution["executionArn"], "status": status,
                              "ok": ok, "output": output or None,
                              "error": execution.get("error"), "cause": execution.get("cause")}))
    elif status != "SUCCEEDED":
        print(f"failover of {args.route_id} {status.lower()}: {execution.get('error')}: "
              f"{execution.get('cause')}")
        print("next: see each step with `aws stepfunctions get-execution-history "
              f"--execution-arn {execution['executionArn']}`; nothing was switched")
    elif outcome == "switch":
        print(f"switched {args.route_id}: {output.get('from_upstream')} -> "
              f"{output.get('to_upstream')}")
    else:
        print(f"not switched: {output.get('reason')}: {output.get('message')}")
        if output.get("reason") == "TargetUnhealthy":
            print("next: pass --force to switch anyway")
        elif not ok:
            print(f"next: `turnout status {args.route_id}` shows its upstreams' health and any "
                  "switch in progress")
    if args.output != "json":
        print(f"execution: {execution['executionArn']}")
    return 0 if ok else 1
