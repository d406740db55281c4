"""Every failure a user of `turnout` can meet says what happened and what to do next.

Each test provokes one kind of failure for real: a closed 127.0.0.1 port, missing tables and
stacks on the embedded AWS endpoint, AWS error answers injected with a botocore ``before-send``
hook on the CLI's own session (so they go through botocore's parsing and retries), a port
already taken, a missing package. Each checks the two lines a person sees on stderr::

    turnout: error: <what happened>
      next: <a command or setting to try>

and that no traceback is printed (exit code 1 for failures, 2 for usage errors).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from control_plane.cli import aws as cli_aws
from control_plane.cli import main
from tests.conftest import free_port
from tests.functional.test_cli_routes import create_tables, route_yaml, stack_outputs, write_file

REPO = Path(__file__).resolve().parents[2]
TURNOUT = Path(sys.executable).parent / "turnout"
LOCAL_ENDPOINT = "http://127.0.0.1:4566"


@dataclass(frozen=True)
class Said:
    code: int
    out: str
    err: str

    @property
    def error(self) -> str:
        return self.err.splitlines()[0]

    @property
    def next_step(self) -> str:
        lines = self.err.splitlines()
        assert len(lines) == 2, f"expected an error line and a next line, got:\n{self.err}"
        assert lines[1].startswith("  next: "), self.err
        return lines[1].removeprefix("  next: ")


@pytest.fixture
def turnout(capsys, aws, monkeypatch):
    """``turnout <args>`` in-process against the test endpoint, one attempt per AWS call."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

    def run(*args: object, endpoint: bool = True) -> Said:
        argv = [str(a) for a in args] + (["--endpoint-url", aws.url] if endpoint else [])
        code = main(argv)
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return Said(code, captured.out, captured.err)

    return run


def shell(*args: object, env: dict[str, str | None] | None = None,
          code: str | None = None) -> subprocess.CompletedProcess:
    """``turnout <args>`` as a process (``code``: run that Python instead of the script);
    ``env`` adds variables, and removes those given as None."""
    environment = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    environment.update(env or {})
    environment = {k: v for k, v in environment.items() if v is not None}
    command = ([sys.executable, "-c", code] if code else [str(TURNOUT)]) + [str(a) for a in args]
    return subprocess.run(command, capture_output=True, text=True, env=environment, cwd=REPO,
                          timeout=60, check=False)


def next_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert lines[-1].startswith("  next: "), stderr
    return lines[-1].removeprefix("  next: ")


# ---- AWS answers, injected on the CLI's own boto3 session --------------------------------


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: object):
        yield self._body


@pytest.fixture
def aws_answers():
    """``answer("PutItem", 400, "AccessDeniedException", after=1)``: DynamoDB's calls of that
    operation get this error answer (after the first ``after`` went through)."""
    from botocore.awsrequest import AWSResponse

    events = cli_aws._session().events
    handlers = []

    def answer(operation: str, status: int, code: str, message: str = "injected",
               after: int = 0) -> None:
        seen = {"calls": 0}

        def handler(request, **_):
            seen["calls"] += 1
            if seen["calls"] <= after:
                return None
            body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}",
                               "message": message}).encode()
            return AWSResponse(request.url, status, {"x-amzn-requestid": "test"}, _Body(body))

        event = f"before-send.dynamodb.{operation}"
        events.register(event, handler)
        handlers.append((event, handler))

    yield answer
    for event, handler in handlers:
        events.unregister(event, handler)


# ---- reaching AWS ------------------------------------------------------------------------


def test_closed_port_asks_whether_turnout_up_runs_and_names_its_endpoint(turnout):
    said = turnout("routes", "list", "--table", "t", "--endpoint-url", f"http://127.0.0.1:{free_port()}",
                   endpoint=False)
    assert said.code == 1
    assert said.error.startswith("turnout: error: cannot reach AWS at http://127.0.0.1:")
    assert said.next_step.startswith("is `turnout up` running?")
    assert LOCAL_ENDPOINT in said.next_step


def test_malformed_endpoint_url_says_what_a_valid_one_looks_like(turnout):
    said = turnout("routes", "list", "--table", "t", "--endpoint-url", "localhost-4566",
                   endpoint=False)
    assert said.code == 1
    assert said.error == "turnout: error: invalid AWS endpoint URL 'localhost-4566'"
    assert LOCAL_ENDPOINT in said.next_step


def _without_credentials() -> dict[str, str | None]:
    """No credentials anywhere boto3 looks (and no instance metadata lookups)."""
    gone = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE")
    env: dict[str, str | None] = dict.fromkeys(gone)
    env.update({"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
                "AWS_EC2_METADATA_DISABLED": "true"})
    return env


def test_no_credentials_against_the_local_cloud_says_any_values_work(aws):
    result = shell("routes", "list", "--table", "t", "--endpoint-url", aws.url,
                   env=_without_credentials())
    assert result.returncode == 1
    assert result.stderr.startswith("turnout: error: no usable AWS credentials")
    assert "export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local" in next_line(result.stderr)
    assert "Traceback" not in result.stderr


def test_no_credentials_and_no_endpoint_points_at_the_local_cloud_or_aws_configure():
    result = shell("routes", "list", "--table", "t", env=_without_credentials())
    assert result.returncode == 1
    advice = next_line(result.stderr)
    assert "`aws configure`" in advice and f"AWS_ENDPOINT_URL={LOCAL_ENDPOINT}" in advice
    assert "Traceback" not in result.stderr


def test_unknown_profile_says_how_to_list_the_profiles(aws):
    result = shell("routes", "list", "--table", "t", "--endpoint-url", aws.url,
                   env={"AWS_PROFILE": "no-such-profile", "AWS_ACCESS_KEY_ID": None,
                        "AWS_SECRET_ACCESS_KEY": None})
    assert result.returncode == 1
    assert result.stderr.startswith("turnout: error: AWS profile 'no-such-profile' not found")
    assert "`aws configure list-profiles`" in next_line(result.stderr)


def test_rejected_credentials_say_to_refresh_them_and_never_show_the_secret(
        turnout, tables_named, aws_answers):
    aws_answers("Scan", 400, "UnrecognizedClientException", "The security token is invalid.")
    said = turnout("routes", "list", "--table", tables_named.routes)
    assert said.code == 1
    assert "AWS rejected the credentials (UnrecognizedClientException)" in said.error
    assert "aws sso login" in said.next_step
    in_use = cli_aws._session().get_credentials()
    assert in_use.secret_key not in said.err + said.out


# ---- AWS refusing ------------------------------------------------------------------------


@pytest.fixture
def tables_named(aws):
    from tests.functional.test_cli_routes import Tables

    create_tables(aws.client("dynamodb"), "my-routes", "my-state")
    return Tables("my-routes", "my-state")


def test_access_denied_names_the_call_and_how_to_see_who_you_are(turnout, tables_named,
                                                                   aws_answers):
    aws_answers("Scan", 400, "AccessDeniedException",
                "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: "
                "dynamodb:Scan")
    said = turnout("routes", "list", "--table", tables_named.routes)
    assert said.code == 1
    assert said.error.startswith("turnout: error: AWS denied Scan in us-east-1 at ")
    assert "not authorized to perform: dynamodb:Scan" in said.error
    assert "`aws sts get-caller-identity`" in said.next_step


def test_throttling_says_to_wait_or_retry_longer(turnout, tables_named, aws_answers):
    aws_answers("Scan", 400, "ThrottlingException", "Rate exceeded")
    said = turnout("routes", "list", "--table", tables_named.routes)
    assert said.code == 1
    assert said.error.startswith("turnout: error: AWS throttled Scan (ThrottlingException)")
    assert "AWS_MAX_ATTEMPTS=10" in said.next_step


def test_an_aws_side_failure_says_it_is_safe_to_run_again(turnout, tables_named, aws_answers):
    aws_answers("Scan", 500, "InternalServerError", "Internal server error")
    said = turnout("routes", "list", "--table", tables_named.routes)
    assert said.code == 1
    assert "AWS failed Scan on its side (InternalServerError" in said.error
    assert "run the command again" in said.next_step


def test_apply_failing_part_way_says_how_far_it_got_and_that_applying_again_is_safe(
        turnout, tables_named, aws_answers, tmp_path, aws):
    routes = write_file(tmp_path, "routes.yaml", "".join(
        "- " + route_yaml(name).replace("\n", "\n  ").rstrip() + "\n"
        for name in ("one", "two", "three")))
    aws_answers("PutItem", 400, "AccessDeniedException", "not authorized", after=1)
    said = turnout("routes", "apply", routes, "--table", tables_named.routes)
    assert said.code == 1
    assert said.out == "applied one\n"
    assert said.error.endswith("(after 1 of 3 routes)")
    assert said.next_step.endswith("then apply again: routes already in the table as given "
                                   "are not written twice")
    assert "`aws sts get-caller-identity`" in said.next_step


# ---- the stack and its tables ------------------------------------------------------------


def test_missing_table_says_how_to_find_the_right_name(turnout, aws):
    said = turnout("routes", "list", "--table", "no-such-table")
    assert said.code == 1
    assert said.error.startswith("turnout: error: table 'no-such-table' not found in us-east-1 at")
    assert "`aws dynamodb list-tables`" in said.next_step


def test_table_named_by_the_stack_but_gone_says_to_deploy_again(turnout, aws):
    names = stack_outputs(aws)
    aws.client("dynamodb").delete_table(TableName=names.routes)
    said = turnout("routes", "list")
    assert said.code == 1
    assert f"table '{names.routes}' not found" in said.error
    assert "deploy the stack again" in said.next_step and "turnout up" in said.next_step


def test_missing_stack_on_the_endpoint_names_the_options_that_avoid_it(turnout, aws):
    said = turnout("routes", "list")
    assert said.code == 1
    assert said.error.startswith("turnout: error: stack 'turnout' not found in us-east-1 at ")
    assert "--stack NAME" in said.next_step and "--table" in said.next_step


def test_stack_without_the_needed_output_says_which_option_names_it(turnout, aws):
    aws.client("cloudformation").create_stack(
        StackName="turnout",
        TemplateBody=json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}))
    said = turnout("routes", "list")
    assert said.code == 1
    assert "has no output RoutesTableName; is it fully deployed?" in said.error
    assert said.next_step == ("see `aws cloudformation describe-stacks --stack-name turnout`, "
                              "or pass --table")


# ---- route files -------------------------------------------------------------------------


def test_missing_file_is_named_and_nothing_is_applied(turnout, tables_named, tmp_path):
    said = turnout("routes", "apply", tmp_path / "nope.yaml", "--table", tables_named.routes)
    assert said.code == 1
    assert said.out == f"{tmp_path / 'nope.yaml'}: -: (file): FileUnreadable (no such file; check the path)\n"
    assert said.error == "turnout: error: nothing applied: 1 file could not be read"
    assert "`turnout routes validate`" in said.next_step


def test_yaml_syntax_error_names_the_line(turnout, tmp_path):
    path = write_file(tmp_path, "broken.yaml", "route_id: shop\npath: /shop\n  methods: [GET\n")
    said = turnout("routes", "validate", path, endpoint=False)
    assert said.code == 1
    assert said.out.startswith(f"{path}: -: (file): InvalidYaml (line 3, column ")
    assert said.next_step == "fix what the lines above name, then validate again"


def test_json_syntax_error_names_the_line_and_column(turnout, tmp_path):
    path = write_file(tmp_path, "broken.json", '{\n  "route_id": "shop",\n  "path": /shop\n}\n')
    said = turnout("routes", "validate", path, endpoint=False)
    assert said.code == 1
    assert said.out == (f"{path}: -: (file): InvalidJson (line 3, column 11: Expecting value)\n")
    assert said.next_step == "fix what the lines above name, then validate again"


def test_invalid_route_names_field_and_reason_and_loopback_hints_at_the_flag(turnout, tmp_path):
    demo = REPO / "examples/demo-local.yaml"
    said = turnout("routes", "apply", demo, "--table", "t")
    assert said.code == 1
    assert said.out.startswith(f"{demo}: demo: upstreams[0].url: UpstreamAddressNotAllowed (")
    assert said.error == "turnout: error: nothing applied: 1 of 1 routes invalid"
    assert "add --allow-loopback-upstreams" in said.next_step


def test_directory_without_route_files_says_to_name_the_files(turnout, tmp_path):
    said = turnout("routes", "validate", tmp_path, endpoint=False)
    assert said.code == 1
    assert said.out == (f"{tmp_path}: -: (file): NoRoutes (the directory holds no .yaml, .yml "
                        "or .json files; name the files instead)\n")


# ---- things that are not there -----------------------------------------------------------


@pytest.mark.parametrize("command", [("routes", "get"), ("routes", "delete"),
                                     ("routes", "status"), ("status",)])
def test_unknown_route_points_at_routes_list(turnout, tables_named, command):
    said = turnout(*command, "ghost", "--table", tables_named.routes,
                   *(["--state-table", tables_named.state] if "status" in command else []))
    assert said.code == 1
    assert "route 'ghost' not found" in said.error
    assert said.next_step == "see the routes there are with `turnout routes list`"


def test_unknown_api_key_points_at_keys_list(turnout, aws):
    api = aws.client("apigateway").create_rest_api(name="turnout")["id"]
    said = turnout("keys", "revoke", "nosuchkey", "--rest-api-id", api)
    assert said.code == 1
    assert said.error == "turnout: error: no API key 'nosuchkey'"
    assert said.next_step == "see the keys there are with `turnout keys list`"


def test_failover_to_an_unknown_upstream_lists_the_ones_there_are(turnout, tables_named,
                                                                  tmp_path):
    routes = write_file(tmp_path, "shop.yaml", route_yaml("shop"))
    turnout("routes", "apply", routes, "--table", tables_named.routes)
    said = turnout("failover", "shop", "--to", "b", "--table", tables_named.routes)
    assert said.code == 1
    assert said.error == "turnout: error: route 'shop' has no upstream 'b' (it has: a)"
    assert said.next_step == "pass one of those upstreams to --to"


def test_usage_error_exits_2_with_what_to_use_instead(turnout):
    said = turnout("status", "--watch", "-o", "json", endpoint=False)
    assert said.code == 2
    assert "-o json without --watch" in said.next_step


# ---- turnout up --------------------------------------------------------------------------


@pytest.mark.parametrize("taken", ["--aws-port", "--gateway-port"])
def test_up_on_a_port_in_use_fails_at_once_naming_a_free_port(taken):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        ports = {"--aws-port": free_port(), "--gateway-port": free_port(), taken: busy}
        result = shell("up", *[x for option, port in ports.items() for x in (option, port)])
    assert result.returncode == 1
    assert result.stdout == ""  # nothing was started
    first, advice = result.stderr.splitlines()
    assert first == f"turnout: error: port {busy} on 127.0.0.1 is already in use (another `turnout up`?)"
    suggested = int(advice.split(f"`turnout up {taken} ")[1].split("`")[0])
    assert suggested not in ports.values()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", suggested))


def test_up_with_the_same_port_twice_is_a_usage_error():
    port = free_port()
    result = shell("up", "--aws-port", port, "--gateway-port", port)
    assert result.returncode == 2
    assert next_line(result.stderr) == "give them different ports"


def test_up_with_an_unreadable_template_fails_before_starting_anything(tmp_path):
    template = write_file(tmp_path, "broken.yaml", "Resources:\n  Queue: [\n")
    result = shell("up", "--template", template, "--aws-port", free_port(),
                   "--gateway-port", free_port())
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"turnout: error: cannot read the template {template}: ")
    assert f"`cfn-lint {template}`" in next_line(result.stderr)


MISSING_LOCAL_EXTRA = """
import sys

class WithoutLocalExtra:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("moto", "aiohttp"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, WithoutLocalExtra())
from control_plane.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_up_without_the_local_extra_says_which_pip_install_adds_it():
    result = shell("up", "--aws-port", free_port(), "--gateway-port", free_port(),
                   code=MISSING_LOCAL_EXTRA)
    assert result.returncode == 1
    assert "needs the 'local' extra" in result.stderr.splitlines()[0]
    assert next_line(result.stderr) == ("pip install 'turnout[local]' (in a checkout: "
                                        "pip install -e '.[local]')")
    assert "Traceback" not in result.stderr


def test_ctrl_c_while_up_starts_stops_it_with_exit_130_and_no_traceback():
    proc = subprocess.Popen([str(TURNOUT), "up", "--aws-port", str(free_port()),
                             "--gateway-port", str(free_port())], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("turnout: starting the AWS endpoint on ")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert err == "turnout: interrupted\n"
