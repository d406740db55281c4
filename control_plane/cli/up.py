"""``turnout up``: the whole gateway on this machine, on the embedded AWS emulator.

Starts the AWS endpoint, deploys ``cloudformation/turnout.yaml`` into it as a stack, runs the
stack's handlers (the routes stream drives the reconciler) and serves the deployed API stage
through the local gateway. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

from control_plane.cli.errors import CommandError

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "cloudformation" / "turnout.yaml"


def register(commands: argparse._SubParsersAction) -> None:
    up = commands.add_parser(
        "up", help="Run the whole gateway locally: AWS endpoint, stack, reconciler, gateway.",
        description="Deploy the turnout stack into an embedded AWS emulator and serve it. "
                    "The AWS CLI and SDKs work against the AWS endpoint with --endpoint-url "
                    "or AWS_ENDPOINT_URL (region us-east-1, any credentials).",
    )
    up.add_argument("--aws-port", type=int, default=4566, help="AWS endpoint port (default: %(default)s)")
    up.add_argument("--gateway-port", type=int, default=8080,
                    help="gateway port clients call (default: %(default)s)")
    up.add_argument("--stack", default="turnout", help="stack name (default: %(default)s)")
    up.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE,
                    help="CloudFormation template (default: the project's turnout.yaml)")
    up.add_argument("--allow-loopback-upstreams", action="store_true",
                    help="let routes point at http://127.0.0.1:PORT (local demos and tests); "
                         "without it the egress policy applies unchanged")
    up.add_argument("--apigateway-rate", type=float, default=10.0, metavar="PER_SECOND",
                    help="pace the reconciler's API Gateway calls like AWS's account budget "
                         "(default: %(default)s/s, burst 40); raise it for fast local bulk loads")
    up.set_defaults(handler=run_up)


def _say(message: str) -> None:
    print(f"turnout: {message}", flush=True)


def run_up(args: argparse.Namespace) -> int:
    if not args.template.exists():
        raise CommandError(f"template not found: {args.template} (pass --template PATH)")
    try:
        from data_plane.gateway_config import ConfigSource
        from data_plane.local_gateway import LocalGateway
        from local_cloud.runtime import LocalCloud
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise CommandError(
            f"the local cloud needs the 'local' extra: pip install -e '.[local]' ({exc})"
        ) from exc

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    source_holder: dict[str, ConfigSource] = {}
    quiet_functions: set[str] = set()

    def on_change(function_name: str, result: object) -> None:
        # The control plane's functions change what the gateway serves; the data-plane
        # function (one invocation per proxied request) never does.
        if function_name in quiet_functions:
            return
        source = source_holder.get("source")
        if source is not None:
            source.refresh_now()

    started = time.monotonic()
    cloud = LocalCloud(
        aws_port=args.aws_port,
        template_path=args.template,
        stack_name=args.stack,
        allow_loopback_upstreams=args.allow_loopback_upstreams,
        function_environment={
            "TURNOUT_APIGW_RATE_PER_SECOND": str(args.apigateway_rate),
            "TURNOUT_APIGW_BURST": str(max(40, int(args.apigateway_rate * 4))),
        },
        on_progress=_say,
        on_change=on_change,
    )
    gateway = None
    source = None
    try:
        try:
            outputs = cloud.start()
        except OSError as exc:
            raise CommandError(
                f"cannot start the AWS endpoint on 127.0.0.1:{args.aws_port}: {exc} "
                "(is another `turnout up` running? pick another port with --aws-port)"
            ) from exc
        data_plane_arn = outputs.get("DataPlaneFunctionArn", "")
        if data_plane_arn:
            quiet_functions.update({data_plane_arn, data_plane_arn.rsplit(":", 1)[-1]})
        source = ConfigSource.for_endpoint(cloud.endpoint_url, region="us-east-1",
                                           rest_api_id=outputs["RestApiId"],
                                           stage_name=outputs["StageName"])
        source.start()
        source_holder["source"] = source
        gateway = LocalGateway(source, host="127.0.0.1", port=args.gateway_port,
                               lambda_client_factory=lambda region: InProcessLambda(cloud.functions))
        try:
            gateway.start()
        except OSError as exc:
            raise CommandError(f"cannot serve the gateway on 127.0.0.1:{args.gateway_port}: {exc} "
                               "(pick another port with --gateway-port)") from exc
        _banner(cloud.endpoint_url, gateway.url, outputs, args, time.monotonic() - started)
        stop.wait()
        _say("stopping")
    finally:
        if gateway is not None:
            gateway.stop()
        if source is not None:
            source.stop()
        cloud.stop()
    _say("stopped")
    return 0


class InProcessLambda:
    """The slice of boto3's Lambda client the gateway's AWS_PROXY integration uses, answered by
    the local cloud's function runtime directly (the same handler, context and environment as
    through the Invoke API, without an HTTP round trip to the emulator per request)."""

    def __init__(self, functions) -> None:
        self._functions = functions

    def invoke(self, *, FunctionName: str, Payload: bytes, InvocationType: str = "RequestResponse",  # noqa: N803
               **_: object) -> dict:
        import io

        result = self._functions.invoke_payload(FunctionName, Payload)
        answer = {"StatusCode": 200, "Payload": io.BytesIO(result.payload)}
        if result.function_error:
            answer["FunctionError"] = result.function_error
        return answer


def _banner(aws_url: str, gateway_url: str, outputs: dict[str, str], args, seconds: float) -> None:
    lines = [
        f"ready in {seconds:.1f}s",
        f"  AWS endpoint   {aws_url}   (region us-east-1, any credentials)",
        f"  gateway        {gateway_url}",
        f"  routes table   {outputs.get('RoutesTableName')}",
        f"  state table    {outputs.get('StateTableName')}",
        f"  event bus      {outputs.get('EventBusName')}",
        f"  loopback upstreams {'allowed' if args.allow_loopback_upstreams else 'refused'}",
        "  next: export AWS_ENDPOINT_URL=" + aws_url
        + "; turnout routes apply examples/demo-local.yaml; turnout routes status",
        "  Ctrl-C stops everything.",
    ]
    for line in lines:
        _say(line)
    sys.stdout.flush()
