"""``turnout deploy``: the stack on a real AWS account, the way ``aws cloudformation`` does it.

1. build: fill the folder the template's functions name as their ``Code`` with the project's
   code and its dependencies for Lambda (:mod:`control_plane.cli.lambda_bundle`; skipped with
   ``--no-build``);
2. package: what ``aws cloudformation package`` does (:mod:`control_plane.packaging`): local
   paths become S3 objects keyed by their content hash, uploaded only when not there yet;
3. a change set (``CREATE`` or ``UPDATE``), its changes printed as a table; a template and
   parameters equal to the deployed ones, or a change set without changes, is "up to date";
4. execute it (not with ``--no-execute``) and print the stack's events until it settles, then
   its outputs. A failure names the resource that failed, its reason, and what to do next.

Parameters not given keep the stack's current values on an update (as ``aws cloudformation
deploy`` does) and take the template's defaults on a create.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from control_plane.cli import lambda_bundle
from control_plane.cli.aws import AwsContext, aws_errors, resolve_region
from control_plane.cli.change_sets import (
    SUCCEEDED,
    StackDeployment,
    changes_rows,
    event_row,
    failure_message,
    not_deployable_message,
)
from control_plane.cli.errors import CommandError, UsageError
from control_plane.cli.render import table
from control_plane.packaging import (
    ArtifactStore,
    Packaged,
    PackagingError,
    find_source_root,
    package_template,
)

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "cloudformation" / "turnout.yaml"
MAX_TEMPLATE_BODY_BYTES = 51_200
TemplateAdapter = Callable[[dict[str, Any], Path, Mapping[str, str]], dict[str, Any]]


def register(commands: argparse._SubParsersAction) -> None:
    deploy = commands.add_parser(
        "deploy", help="Deploy the stack to AWS: build, package, change set, execute, follow.",
        description="Build the Lambda code, package it into S3 (as `aws cloudformation "
                    "package`), create a change set for the stack, show it, execute it and "
                    "follow the stack's events until it settles.",
    )
    deploy.add_argument("--stack", default="turnout", help="stack name (default: %(default)s)")
    deploy.add_argument("--s3-bucket", required=True, metavar="BUCKET",
                        help="an existing bucket in the stack's region for the packaged code")
    deploy.add_argument("--s3-prefix", default="turnout", metavar="PREFIX",
                        help="key prefix in the bucket (default: %(default)s)")
    deploy.add_argument("--region", help="AWS region (default: $AWS_REGION, $AWS_DEFAULT_REGION, "
                                         "your profile's, else us-east-1)")
    deploy.add_argument("--endpoint-url", metavar="URL",
                        help="AWS endpoint (default: $AWS_ENDPOINT_URL, else AWS itself)")
    deploy.add_argument("--parameter", "-p", action="append", default=[], metavar="KEY=VALUE",
                        help="a template parameter, repeatable, e.g. -p EnableWaf=false")
    deploy.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE,
                        help="CloudFormation template (default: the project's turnout.yaml)")
    deploy.add_argument("--no-build", action="store_true",
                        help="package the template's code folders as they are")
    deploy.add_argument("--no-execute", action="store_true",
                        help="create and show the change set, do not execute it")
    deploy.set_defaults(handler=run_deploy)


def _say(message: str) -> None:
    print(f"turnout: {message}", flush=True)


def _parameters(pairs: list[str], declared: Mapping[str, Any]) -> dict[str, str]:
    given: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise UsageError(f"--parameter {pair!r}: expected KEY=VALUE")
        if key not in declared:
            raise UsageError(f"--parameter {key}: the template has no such parameter; it has "
                             f"{', '.join(sorted(declared))}")
        given[key] = value
    return given


def _load(path: Path) -> dict[str, Any]:
    import yaml

    from local_cloud.template import load_template

    try:
        return load_template(path)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        detail = " ".join(str(exc).split())[:300]
        raise CommandError(f"cannot read the template {path}: {detail}",
                           next_step="fix it (`cfn-lint` checks it), or pass --template PATH "
                                     "(default: the project's cloudformation/turnout.yaml)") from exc


def _check_bucket(context: AwsContext, bucket: str) -> None:
    s3 = context.client("s3")
    make = f"`aws s3 mb s3://{bucket} --region {context.region}`"
    try:
        answer = s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise CommandError(f"S3 bucket {bucket!r} does not exist ({context.where}); create "
                               f"it with {make}, or pass another --s3-bucket") from exc
        if code in ("403", "AccessDenied", "Forbidden"):
            raise CommandError(f"S3 bucket {bucket!r} exists but these credentials cannot use "
                               "it (another account's bucket, or no s3:ListBucket); pass a "
                               f"bucket of your own, e.g. one made with {make}") from exc
        raise
    headers = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    located = answer.get("BucketRegion") or headers.get("x-amz-bucket-region")
    if located and located != context.region:
        raise CommandError(f"S3 bucket {bucket!r} is in {located}, the stack in "
                           f"{context.region}: Lambda reads code only from its own region; "
                           f"pass --region {located} or a bucket in {context.region}")


def _build(template: dict[str, Any], template_dir: Path) -> None:
    try:
        targets = lambda_bundle.targets(template, template_dir)
        if not targets:
            return
        root = find_source_root(template_dir, lambda_bundle.PACKAGES)
        for target in targets:
            _say(f"building {target.folder} for {len(target.functions)} functions "
                 f"(python{target.python_version}, {target.architecture})")
            lambda_bundle.build(target, root, say=_say)
    except (lambda_bundle.BundleError, FileNotFoundError, OSError) as exc:
        raise CommandError(f"building the Lambda code: {exc}",
                           next_step="fix what it names and deploy again, or pass --no-build "
                                     "to package the code folders as they are") from exc


def _package(context: AwsContext, template: dict[str, Any], template_dir: Path,
             store: ArtifactStore) -> dict[str, Any]:
    artifacts: dict[str, list[Packaged]] = {}
    try:
        with aws_errors(context):
            packaged = package_template(template, template_dir=template_dir, store=store,
                                        on_packaged=lambda p: artifacts.setdefault(p.key, []).append(p))
    except PackagingError as exc:
        raise CommandError(f"packaging: {exc}",
                           next_step="make the template's code paths point at files or folders "
                                     "that exist (relative to the template), then deploy again"
                           ) from exc
    for key, items in artifacts.items():
        first = items[0]
        state = "uploaded" if any(p.uploaded for p in items) else "unchanged, not uploaded"
        _say(f"packaged {first.source} -> s3://{first.bucket}/{key} ({state}) for "
             f"{', '.join(p.logical_id for p in items)}")
    return packaged


def _outputs(stack: Mapping[str, Any] | None) -> None:
    outputs = (stack or {}).get("Outputs") or []
    if outputs:
        print(table(["output", "value"],
                    [(o.get("OutputKey"), o.get("OutputValue")) for o in
                     sorted(outputs, key=lambda o: o.get("OutputKey", ""))]), flush=True)


def _print_changes(change_set: Mapping[str, Any]) -> None:
    rows = changes_rows(change_set)
    print(table(["action", "resource", "type", "replacement"],
                [(c.action, c.logical_id, c.resource_type, c.replacement) for c in rows]),
          flush=True)
    counts: dict[str, int] = {}
    for change in rows:
        counts[change.action] = counts.get(change.action, 0) + 1
    _say(", ".join(f"{n} to {action.lower()}" for action, n in sorted(counts.items()))
         or "no resource changes")


def _print_events(events: list[dict[str, Any]]) -> None:
    for event in events:
        clock, resource, kind, status, reason = event_row(event)
        line = f"  {clock}  {resource:<34} {status:<30} {kind}"
        print(f"{line}  {reason}".rstrip() if reason else line, flush=True)


def run_deploy(args: argparse.Namespace, *, adapt_template: TemplateAdapter | None = None,
               poll_seconds: float = 3.0) -> int:
    """The command. ``adapt_template`` rewrites the packaged template before it is submitted;
    only tests against the embedded AWS pass one (real AWS gets the template as packaged)."""
    started = time.monotonic()
    template_path = args.template.resolve()
    template = _load(template_path)
    declared = template.get("Parameters") or {}
    given = _parameters(args.parameter, declared)
    context = AwsContext(region=resolve_region(args.region), stack=args.stack,
                         endpoint_url=args.endpoint_url or None)
    with aws_errors(context):
        _check_bucket(context, args.s3_bucket)
    if not args.no_build:
        _build(template, template_path.parent)
    store = ArtifactStore(context.client("s3"), args.s3_bucket, prefix=args.s3_prefix)
    packaged = _package(context, template, template_path.parent, store)
    deployment = StackDeployment(context.client("cloudformation"), args.stack,
                                 region=context.region, poll_seconds=poll_seconds)
    try:
        with aws_errors(context):
            return _deploy(args, context, deployment, packaged, template_path.parent, declared,
                           given, store, adapt_template, started)
    except BotoCoreError as exc:  # pragma: no cover - aws_errors maps these
        raise CommandError(str(exc)) from exc


def _deploy(args: argparse.Namespace, context: AwsContext, deployment: StackDeployment,
            packaged: dict[str, Any], template_dir: Path, declared: Mapping[str, Any],
            given: dict[str, str], store: ArtifactStore, adapt_template: TemplateAdapter | None,
            started: float) -> int:
    stack = deployment.existing()
    if stack is not None:
        blocked = not_deployable_message(stack, region=context.region)
        if blocked:
            raise CommandError(blocked)
    creating = stack is None or stack.get("StackStatus") == "REVIEW_IN_PROGRESS"
    previous = {} if creating else {
        p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])
        if p["ParameterKey"] in declared}
    parameters: list[dict[str, Any]] = []
    effective: dict[str, str] = {}
    for key in declared:
        if key in given:
            parameters.append({"ParameterKey": key, "ParameterValue": given[key]})
            effective[key] = given[key]
        elif key in previous and previous[key] == "****":  # NoEcho: the value is not shown
            parameters.append({"ParameterKey": key, "UsePreviousValue": True})
            effective[key] = previous[key]
        elif key in previous:
            parameters.append({"ParameterKey": key, "ParameterValue": previous[key]})
            effective[key] = previous[key]
    submitted = adapt_template(packaged, template_dir, effective) if adapt_template else packaged
    body = json.dumps(submitted, separators=(",", ":"))
    if not creating and previous == effective and _same(deployment.deployed_template(), body):
        _say(f"stack {args.stack} is already up to date (template and parameters unchanged); "
             "nothing to deploy")
        _outputs(stack)
        return 0
    if len(body.encode()) > MAX_TEMPLATE_BODY_BYTES:
        key, _ = store.put(body.encode(), ".json")
        source = {"TemplateURL": f"https://{store.bucket}.s3.{context.region}.amazonaws.com/{key}"}
    else:
        source = {"TemplateBody": body}
    name = f"{args.stack}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
    kind = "CREATE" if creating else "UPDATE"
    _say(f"creating change set {name} ({kind}) for stack {args.stack} in {context.where}")
    deployment.create_change_set(name, change_set_type=kind, template=source,
                                 parameters=parameters, description="turnout deploy")
    change_set = deployment.wait_for_change_set(name)
    if change_set is None:
        _say(f"stack {args.stack} is already up to date (the change set had no changes)")
        _outputs(deployment.existing())
        return 0
    _print_changes(change_set)
    cli = f"--change-set-name {name} --stack-name {args.stack} --region {context.region}"
    if args.no_execute:
        _say(f"change set {name} created, not executed. Review it with `aws cloudformation "
             f"describe-change-set {cli}`, run it with `aws cloudformation execute-change-set "
             f"{cli}` (or deploy again without --no-execute)")
        return 0
    seen = deployment.event_ids()
    _say(f"executing change set {name}")
    deployment.execute(name)
    for settled, events in deployment.follow(seen):
        if settled is None:
            _print_events(events)
            continue
        status = settled.get("StackStatus", "")
        if status not in SUCCEEDED:
            raise CommandError(failure_message(settled, events, region=context.region))
        _say(f"stack {args.stack} {status} in {time.monotonic() - started:.0f}s")
        _outputs(settled)
    return 0


def _same(deployed: Any, body: str) -> bool:
    """Whether the deployed template (botocore parses JSON bodies) is ``body``."""
    if isinstance(deployed, str):
        try:
            deployed = json.loads(deployed)
        except ValueError:
            return False
    return deployed == json.loads(body)
