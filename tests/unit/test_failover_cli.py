"""`turnout status` and `turnout failover`: what a user sees before they touch AWS."""

from __future__ import annotations

from control_plane.cli import main


def test_status_and_failover_are_listed_in_the_help(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "  status " in out and "  failover " in out


def test_failover_needs_a_route_and_a_target_upstream(capsys):
    assert main(["failover", "payments"]) == 2
    assert "--to" in capsys.readouterr().err


def test_failover_help_offers_force_note_and_waiting_options(capsys):
    assert main(["failover", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--to", "--force", "--note", "--no-wait", "--timeout", "--state-machine-arn",
                   "--endpoint-url", "--stack"):
        assert option in out


def test_status_help_offers_json_and_the_state_table(capsys):
    assert main(["status", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--output" in out and "--state-table" in out and "ROUTE" in out
