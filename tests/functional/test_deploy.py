"""``turnout deploy`` against the embedded AWS: package, change set, execute, follow, outputs.

The template is the project's own, copied with its state machine definition next to a code
folder that stands in for the built Lambda bundle (building it needs PyPI: see
``test_deploy_bundle.py``). moto's CloudFormation cannot take the template as AWS does, so the
tests hand the command the local cloud's adaptation (:func:`local_cloud.deployer.prepare_for_moto`)
through the seam only tests use; everything else runs as it does against AWS. (moto's
change-set path leaves a stack without outputs and records only stack-level events, so the
printed outputs and per-resource events are not checked here.)
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from control_plane.cli import COMMAND_GROUPS
from control_plane.cli.deploy import run_deploy
from control_plane.cli.errors import CommandError
from control_plane.cli.parser import build_parser
from local_cloud import patches
from local_cloud.deployer import prepare_for_moto
from local_cloud.emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "turnout-deploy-artifacts"


@pytest.fixture
def emulator(aws) -> Iterator[object]:
    Emulator.attach(aws.url)
    patches.apply_patches()
    aws.client("s3").create_bucket(Bucket=BUCKET)
    yield aws


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The template and its definition file, and a code folder where the template points."""
    (tmp_path / "cloudformation").mkdir()
    for name in ("turnout.yaml", "failover.asl.json"):
        shutil.copy(ROOT / "cloudformation" / name, tmp_path / "cloudformation" / name)
    code = tmp_path / "build" / "lambda" / "control_plane" / "handlers"
    code.mkdir(parents=True)
    (code / "route_stream.py").write_text("def handler(event, context):\n    return {}\n")
    return tmp_path / "cloudformation" / "turnout.yaml"


def deploy(aws, template: Path, *extra: str, bucket: str = BUCKET) -> int:
    args = build_parser(COMMAND_GROUPS).parse_args([
        "deploy", "--stack", "turnout", "--s3-bucket", bucket, "--endpoint-url", aws.url,
        "--region", "us-east-1", "--template", str(template), "--no-build", *extra])

    def adapt(packaged, template_dir, parameters):
        return prepare_for_moto(packaged, template_dir=template_dir, stack_name="turnout",
                                parameters=parameters, endpoint_url=aws.url)

    return run_deploy(args, adapt_template=adapt, poll_seconds=0.05)


def test_deploy_creates_the_stack_and_prints_its_changes_and_events(emulator, project,
                                                                          capsys):
    aws = emulator

    assert deploy(aws, project) == 0

    out = capsys.readouterr().out
    stack = aws.client("cloudformation").describe_stacks(StackName="turnout")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert "(CREATE)" in out
    assert "action" in out and "Add" in out and "RoutesTable" in out  # the change set table
    assert "CREATE_COMPLETE" in out  # events followed to the end
    function = aws.client("lambda").get_function(FunctionName="turnout-reconcile")
    assert function["Configuration"]["Handler"] == "control_plane.handlers.route_stream.handler"
    keys = [o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert any(k.startswith("turnout/") and k.endswith(".zip") for k in keys)
    assert any(k.endswith(".json") for k in keys)  # the state machine definition
    assert "uploaded" in out


def test_second_deploy_of_an_unchanged_project_is_up_to_date_and_uploads_nothing(
        emulator, project, capsys):
    aws = emulator
    assert deploy(aws, project) == 0
    capsys.readouterr()
    events_before = aws.client("cloudformation").describe_stack_events(
        StackName="turnout")["StackEvents"]

    assert deploy(aws, project) == 0

    out = capsys.readouterr().out
    assert "already up to date" in out
    assert "unchanged, not uploaded" in out
    assert "change set" not in out
    events_after = aws.client("cloudformation").describe_stack_events(
        StackName="turnout")["StackEvents"]
    assert len(events_after) == len(events_before)


def test_changed_code_uploads_a_new_artifact_and_updates_the_stack(emulator, project, capsys):
    aws = emulator
    assert deploy(aws, project) == 0
    handler = project.parent.parent / "build" / "lambda" / "control_plane" / "handlers"
    (handler / "route_stream.py").write_text("def handler(event, context):\n    return None\n")
    capsys.readouterr()

    assert deploy(aws, project) == 0

    out = capsys.readouterr().out
    assert "(UPDATE)" in out and "(uploaded)" in out
    code = aws.client("lambda").get_function(FunctionName="turnout-reconcile")
    assert code["Configuration"]["FunctionName"] == "turnout-reconcile"
    stack = aws.client("cloudformation").describe_stacks(StackName="turnout")["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"


def test_no_execute_shows_the_change_set_and_leaves_it_for_review(emulator, project, capsys):
    aws = emulator

    assert deploy(aws, project, "--no-execute") == 0

    out = capsys.readouterr().out
    assert "not executed" in out and "aws cloudformation execute-change-set" in out
    cloudformation = aws.client("cloudformation")
    [summary] = cloudformation.list_change_sets(StackName="turnout")["Summaries"]
    assert summary["ExecutionStatus"] == "AVAILABLE"
    assert not aws.client("dynamodb").list_tables()["TableNames"]


def test_missing_bucket_is_a_clear_error_before_anything_is_built(emulator, project):
    aws = emulator

    with pytest.raises(CommandError) as error:
        deploy(aws, project, bucket="no-such-bucket-anywhere")

    message = str(error.value)
    assert "no-such-bucket-anywhere" in message and "does not exist" in message
    assert "aws s3 mb s3://no-such-bucket-anywhere" in message
    assert aws.client("cloudformation").list_stacks()["StackSummaries"] == []


def test_unknown_parameter_is_a_usage_error_naming_the_known_ones(emulator, project):
    aws = emulator

    with pytest.raises(CommandError) as error:
        deploy(aws, project, "--parameter", "EnableWAF=false")

    assert error.value.exit_code == 2
    assert "EnableWaf" in str(error.value)


def test_parameters_are_applied_and_kept_by_the_next_deploy(emulator, project, capsys):
    aws = emulator
    assert deploy(aws, project, "-p", "EnableWaf=false", "-p", "LogRetentionDays=7") == 0
    capsys.readouterr()

    assert deploy(aws, project) == 0

    assert "already up to date" in capsys.readouterr().out
    stack = aws.client("cloudformation").describe_stacks(StackName="turnout")["Stacks"][0]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert parameters["EnableWaf"] == "false"
    assert parameters["LogRetentionDays"] == "7"
    assert "WebAclArn" not in {o["OutputKey"] for o in stack.get("Outputs", [])}
