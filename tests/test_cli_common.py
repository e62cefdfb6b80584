"""Shared CLI helpers: forgiving choices, JSON output, clean exits, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from nexuslims_lifecycle.cli._common import (
    EVENT,
    STATUS,
    LooseChoice,
    convert,
    emit_json,
    exits_cleanly,
    json_option,
    write_atomically,
)
from nexuslims_lifecycle.enums import RecordStatus as S
from nexuslims_lifecycle.errors import (
    IllegalTransition,
    LifecycleError,
    MissingExtra,
    TransitionConflict,
    UnknownEvent,
)

COLOURS = LooseChoice(["Red", "dark_blue"], "colour")


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [("red", "Red"), ("RED", "Red"), (" red ", "Red"), ("dark-blue", "dark_blue")],
)
def test_loose_choice_returns_the_canonical_spelling(typed: str, canonical: str) -> None:
    assert COLOURS.convert(typed, None, None) == canonical


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("rde", "unknown colour 'rde': expected one of Red, dark_blue; did you mean 'Red'?"),
        ("green", "unknown colour 'green': expected one of Red, dark_blue"),
        (7, "unknown colour 7: expected one of Red, dark_blue"),
    ],
)
def test_loose_choice_names_the_bad_value_and_the_choices(typed: object, message: str) -> None:
    with pytest.raises(click.BadParameter) as info:
        COLOURS.convert(typed, None, None)
    assert info.value.message == message


def test_status_type_gives_members_and_passes_members_through() -> None:
    assert STATUS.convert("no_consent", None, None) is S.NO_CONSENT
    assert STATUS.convert(S.ERROR, None, None) is S.ERROR
    assert EVENT.convert("Find-No-Files", None, None) == "find_no_files"


def test_loose_choice_completes_any_case_prefix() -> None:
    @click.command()
    @click.argument("status", type=STATUS)
    def cmd(status: S) -> None: ...

    ctx = click.Context(cmd)
    param = cmd.params[0]
    offered = [item.value for item in STATUS.shell_complete(ctx, param, "no_")]
    assert offered == ["NO_FILES_FOUND", "NO_CONSENT", "NO_RESERVATION"]


def failing(error: Exception) -> click.Command:
    """A command that raises ``error`` through :func:`exits_cleanly`."""

    @click.command()
    @json_option
    @exits_cleanly
    def cmd(as_json: bool) -> None:
        raise error

    return cmd


def test_exits_cleanly_turns_bad_input_into_exit_2() -> None:
    result = CliRunner().invoke(failing(UnknownEvent("fial", ["fail"])), [])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: unknown lifecycle event 'fial'")
    assert "Traceback" not in result.output


def test_exits_cleanly_turns_other_library_errors_into_exit_1() -> None:
    result = CliRunner().invoke(failing(IllegalTransition("COMPLETED", "retry", ())), [])
    assert result.exit_code == 1
    assert result.stderr == "error: cannot 'retry' from COMPLETED: no event leaves COMPLETED\n"


def test_exits_cleanly_turns_a_conflict_into_exit_3() -> None:
    conflict = TransitionConflict("s", "end", expected="WAITING_FOR_END", current="TO_BE_BUILT")
    result = CliRunner().invoke(failing(conflict), [])
    assert result.exit_code == 3
    assert result.stderr.startswith("conflict: ")
    assert result.stdout == ""


@pytest.mark.parametrize(
    "error",
    [
        MissingExtra("sqlalchemy", "sql", "the session log store"),
        ModuleNotFoundError("No module named 'sqlalchemy'", name="sqlalchemy"),
        ModuleNotFoundError("No module named 'psycopg'", name="psycopg"),
    ],
)
def test_the_missing_sql_extra_is_named_with_exit_1(error: ImportError) -> None:
    result = CliRunner().invoke(failing(error), [])
    assert result.exit_code == 1
    assert "pip install 'nexuslims-lifecycle[sql]'" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    "error",
    [
        ModuleNotFoundError("No module named 'numpy'", name="numpy"),
        ImportError("cannot import name 'gone' from 'nexuslims_lifecycle.store'"),
    ],
)
def test_an_unrelated_import_error_propagates(error: ImportError) -> None:
    """Only the sql extra is dressed as a message: any other ImportError is a bug, shown."""
    result = CliRunner().invoke(failing(error), [])
    assert result.exception is error


def test_convert_reads_a_positional_value_like_an_option_and_hints_its_name() -> None:
    @click.command()
    @click.argument("typed")
    def cmd(typed: str) -> None:
        click.echo(convert(EVENT, typed, "EVENT"))

    assert CliRunner().invoke(cmd, ["Find-No-Files"]).output == "find_no_files\n"
    result = CliRunner().invoke(cmd, ["compelte"])
    assert result.exit_code == 2
    assert "Invalid value for EVENT: unknown lifecycle event 'compelte'" in result.stderr
    assert "did you mean 'complete'?" in result.stderr


def test_exits_cleanly_lets_bugs_through() -> None:
    """A bug is not dressed up as user error: it stays an exception."""
    result = CliRunner().invoke(failing(KeyError("bug")), [])
    assert result.exit_code == 1
    assert isinstance(result.exception, KeyError)
    assert not isinstance(result.exception, LifecycleError)


def test_exits_cleanly_returns_what_the_command_returns() -> None:
    assert exits_cleanly(lambda x: x * 2)(21) == 42


def test_emit_json_keeps_key_order_and_unicode() -> None:
    @click.command()
    def cmd() -> None:
        emit_json({"z": 1, "a": ["é"]})

    result = CliRunner().invoke(cmd, [])
    assert result.stdout == '{\n  "z": 1,\n  "a": [\n    "é"\n  ]\n}\n'
    assert list(json.loads(result.stdout)) == ["z", "a"]


def test_write_atomically_keeps_an_existing_files_permissions(tmp_path: Path) -> None:
    target = tmp_path / "private.txt"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o600)
    write_atomically(target, b"new")
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o600


def test_write_atomically_reports_an_unwritable_place(tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "file.txt"
    with pytest.raises(click.ClickException, match=r"cannot write .*file\.txt: No such file"):
        write_atomically(target, "text")
    assert not target.parent.exists()
