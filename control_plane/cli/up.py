"""``turnout up``: the whole gateway on this machine, on the embedded AWS emulator.

Starts the AWS endpoint, deploys ``cloudformation/turnout.yaml`` into it as a stack, runs the
stack's handlers (the routes stream drives the reconciler) and serves the deployed API stage
through the local gateway. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import errno
import faulthandler
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from control_plane.cli.errors import (
    LOCAL_AWS_PORT,
    LOCAL_CREDENTIALS,
    LOCAL_GATEWAY_PORT,
    CommandError,
    UsageError,
)

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "cloudformation" / "turnout.yaml"
OUR_PACKAGES = ("control_plane", "data_plane", "local_cloud")


def register(commands: argparse._SubParsersAction) -> None:
    up = commands.add_parser(
        "up", help="Run the whole gateway locally: AWS endpoint, stack, reconciler, gateway.",
        description="Deploy the turnout stack into an embedded AWS emulator and serve it. "
                    "The AWS CLI and SDKs work against the AWS endpoint with --endpoint-url "
                    "or AWS_ENDPOINT_URL (region us-east-1, any credentials).",
    )
    up.add_argument("--aws-port", type=int, default=LOCAL_AWS_PORT,
                    help="AWS endpoint port (default: %(default)s)")
    up.add_argument("--gateway-port", type=int, default=LOCAL_GATEWAY_PORT,
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
    ports = {args.aws_port, args.gateway_port}
    _check_ports(args.aws_port, args.gateway_port)
    _check_template(args.template)
    LocalCloud, ConfigSource, LocalGateway, DeployError = _local_cloud()  # noqa: N806

    stop = threading.Event()
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
    signal.signal(signal.SIGTERM, _interrupt)  # during start-up, as Ctrl-C does
    # `kill -USR1 <pid>` prints every thread's stack to stderr (for a gateway that seems stuck).
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        try:
            outputs = cloud.start()
        except DeployError as exc:
            raise CommandError(
                f"the stack could not be deployed into the local cloud: {exc}",
                next_step=f"check the template with `cfn-lint {args.template}`, or leave out "
                          "--template to use the project's own",
            ) from exc
        except OSError as exc:
            raise _port_error(args.aws_port, "--aws-port", ports, exc) from exc
        data_plane_arn = outputs.get("DataPlaneFunctionArn", "")
        if data_plane_arn:
            quiet_functions.update({data_plane_arn, data_plane_arn.rsplit(":", 1)[-1]})
        _say(f"starting the gateway on 127.0.0.1:{args.gateway_port} "
             f"(REST API {outputs['RestApiId']}, stage {outputs['StageName']})")
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
            raise _port_error(args.gateway_port, "--gateway-port", ports, exc) from exc
        # Until here Ctrl-C interrupts start-up (KeyboardInterrupt); from now on it stops the
        # running gateway and cloud in order.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        _banner(cloud.endpoint_url, gateway.url, outputs, args, time.monotonic() - started)
        # Woken twice a second: a signal the kernel hands to another thread only runs its
        # Python handler once the main thread executes again.
        while not stop.wait(0.5):
            pass
        _say("stopping")
    finally:
        if gateway is not None:
            gateway.stop()
        if source is not None:
            source.stop()
        cloud.stop()
    _say("stopped")
    return 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _local_cloud():
    """The local cloud's parts; they need the ``local`` extra (moto, aiohttp)."""
    try:
        from data_plane.gateway_config import ConfigSource
        from data_plane.local_gateway import LocalGateway
        from local_cloud.deployer import DeployError
        from local_cloud.runtime import LocalCloud
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if not missing or missing in OUR_PACKAGES:
            raise
        raise CommandError(
            f"`turnout up` needs the 'local' extra, which is not installed (no module "
            f"{missing!r})",
            next_step="pip install 'turnout[local]' (in a checkout: pip install -e '.[local]')",
        ) from exc
    return LocalCloud, ConfigSource, LocalGateway, DeployError


def _check_ports(aws_port: int, gateway_port: int) -> None:
    """Both ports valid, different and free on 127.0.0.1, before anything starts."""
    for port, option in ((aws_port, "--aws-port"), (gateway_port, "--gateway-port")):
        if not 1 <= port <= 65535:
            raise UsageError(f"{option} {port}: a port is 1 to 65535")
    if aws_port == gateway_port:
        raise UsageError(f"--aws-port and --gateway-port are both {aws_port}",
                         next_step="give them different ports")
    for port, option in ((aws_port, "--aws-port"), (gateway_port, "--gateway-port")):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as exc:
                raise _port_error(port, option, {aws_port, gateway_port}, exc) from exc


def _port_error(port: int, option: str, taken_ports: set[int], exc: OSError) -> CommandError:
    """``port`` cannot be served; the advice names a free port to use instead."""
    in_use = exc.errno == errno.EADDRINUSE or "in use" in str(exc).lower()
    what = "is already in use" if in_use else f"cannot be used ({exc.strerror or exc})"
    other = _free_port_near(port, taken_ports)
    step = f"stop what listens there, or pick another port, e.g. `turnout up {option} {other}`"
    if option == "--aws-port":
        step += f" (then AWS_ENDPOINT_URL=http://127.0.0.1:{other})"
    return CommandError(
        f"port {port} on 127.0.0.1 {what}" + (" (another `turnout up`?)" if in_use else ""),
        next_step=step,
    )


def _free_port_near(port: int, avoid: set[int]) -> int | str:
    """The first port above ``port`` that is free now (not in ``avoid``), else ``PORT``."""
    for candidate in range(port + 1, min(port + 50, 65536)):
        if candidate in avoid:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return candidate
    return "PORT"


def _check_template(path: Path) -> None:
    """The template exists and reads as a CloudFormation template, before anything starts."""
    import yaml

    from local_cloud.template import load_template

    if not path.exists():
        raise CommandError(f"template not found: {path}",
                           next_step="pass --template PATH, or leave it out to use the "
                                     "project's cloudformation/turnout.yaml")
    try:
        load_template(path)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        detail = " ".join(str(exc).split())
        raise CommandError(f"cannot read the template {path}: {detail[:300]}",
                           next_step=f"fix it (`cfn-lint {path}` checks it), or leave out "
                                     "--template to use the project's own") from exc


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
    if args.allow_loopback_upstreams:
        demo = "turnout routes apply --allow-loopback-upstreams examples/demo-local.yaml --wait"
    else:
        demo = ("turnout routes apply examples/routes.yaml --wait   (routes to 127.0.0.1 need "
                "`turnout up --allow-loopback-upstreams`)")
    lines = [
        f"ready in {seconds:.1f}s",
        f"  AWS endpoint   {aws_url}   (region us-east-1, any credentials)",
        f"  gateway        {gateway_url}",
        f"  routes table   {outputs.get('RoutesTableName')}",
        f"  state table    {outputs.get('StateTableName')}",
        f"  event bus      {outputs.get('EventBusName')}",
        f"  loopback upstreams {'allowed' if args.allow_loopback_upstreams else 'refused'}",
        f"  next (another terminal): export AWS_ENDPOINT_URL={aws_url} {LOCAL_CREDENTIALS}",
        f"                           {demo}",
        "  Ctrl-C stops everything.",
    ]
    for line in lines:
        _say(line)
    sys.stdout.flush()
