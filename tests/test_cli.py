"""The command line's entry points and the in-memory demo."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from nexuslims_lifecycle import __version__
from nexuslims_lifecycle.cli import main
from nexuslims_lifecycle.cli._common import EVENT, STATUS
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


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    """Every command under ``group``, subcommands of subgroups included, by full name."""
    found: list[tuple[str, click.Command]] = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _commands(command, f"{prefix}{name} ")
        else:
            found.append((f"{prefix}{name}", command))
    return found


def test_every_command_but_the_demo_offers_json() -> None:
    names = {name for name, _ in _commands(main)}
    assert {"can", "advance", "audit", "guard install", "reprocess", "sessions"} <= names
    without = [
        name
        for name, command in _commands(main)
        if not any("--json" in param.opts for param in command.params)
    ]
    assert without == ["demo"]


def test_every_status_and_event_parameter_uses_the_shared_types() -> None:
    """One way to read statuses and events: no command declares its own choice of them."""
    typed = {
        (name, param.name): param.type
        for name, command in _commands(main)
        for param in command.params
        if param.name in {"status", "statuses", "source", "dest", "expected", "highlight", "start"}
        or param.name == "events"
    }
    assert typed
    assert all(kind in {STATUS, EVENT} for kind in typed.values()), typed
