"""The command line's entry points and the in-memory demo."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from nexuslims_lifecycle import __version__
from nexuslims_lifecycle.cli import main
from nexuslims_lifecycle.cli._demo import PLANS, drive
from nexuslims_lifecycle.enums import RecordStatus as S


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"nexuslims-lifecycle, version {__version__}\n"


def test_help_lists_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "demo" in result.output


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nexuslims_lifecycle", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_unknown_command_exits_2_without_traceback() -> None:
    result = CliRunner().invoke(main, ["frobnicate"])
    assert result.exit_code == 2
    assert "No such command 'frobnicate'" in result.output
    assert "Traceback" not in result.output


def test_demo_drives_every_plan_including_a_refused_move() -> None:
    outcomes = drive()
    assert len(outcomes) == len(PLANS) == 12
    finals = [outcome.session.status for outcome in outcomes]
    assert finals.count(S.COMPLETED) == 6
    assert {S.WAITING_FOR_END, S.TO_BE_BUILT, S.ERROR, S.NO_CONSENT} <= set(finals)
    refused = [outcome for outcome in outcomes if outcome.refused]
    assert len(refused) == 1
    assert "cannot 'retry' from COMPLETED" in (refused[0].refused or "")
    retried = [outcome for outcome in outcomes if "retry" in outcome.steps]
    assert len(retried) == 3
    assert len({outcome.session.instrument for outcome in outcomes}) == 3
