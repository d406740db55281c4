"""`turnout --help` and every command's `--help`: what a user sees before anything else."""

from __future__ import annotations

import pytest

from control_plane.cli import main

COMMANDS = [
    ["routes", "validate"],
    ["routes", "apply"],
    ["routes", "list"],
    ["routes", "get"],
    ["routes", "delete"],
    ["routes", "status"],
]


def test_help_lists_every_command_with_one_line_each(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    listed = [line.split() for line in out.splitlines() if line.startswith("  routes ")]
    assert [words[:2] for words in listed] == COMMANDS
    assert all(len(words) > 2 for words in listed), "every command has a one-line summary"


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_its_own_help(capsys, command):
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: turnout {' '.join(command)}")


def test_aws_commands_offer_endpoint_region_stack_and_table_options(capsys):
    for command in COMMANDS[1:]:
        main([*command, "--help"])
        out = capsys.readouterr().out
        for option in ("--endpoint-url", "--region", "--stack", "--table"):
            assert option in out, f"{' '.join(command)} lacks {option}"
    main(["routes", "status", "--help"])
    assert "--state-table" in capsys.readouterr().out


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "usage: turnout" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["routes", "launch"]) == 2
    assert "invalid choice: 'launch'" in capsys.readouterr().err


def test_validate_without_files_is_a_usage_error(capsys):
    assert main(["routes", "validate"]) == 2
    assert "FILE" in capsys.readouterr().err


def test_version_is_printed(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("turnout ")
