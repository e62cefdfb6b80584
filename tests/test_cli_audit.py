"""The ``audit`` command: output, exit codes and bad input."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from nexuslims_lifecycle.cli import main
from nexuslims_lifecycle.cli._audit import _run_with_progress, parse_duration
from nexuslims_lifecycle.testing.fixtures import build_database


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["audit", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def clean_db(tmp_path: Path) -> Path:
    path = tmp_path / "clean.db"
    build_database(path, sessions=40, seed=1)
    return path


@pytest.fixture
def broken_db(tmp_path: Path) -> Path:
    path = tmp_path / "broken.db"
    defects = {"duplicate-end": 25, "stuck-waiting": 1}
    build_database(path, sessions=40, seed=1, defects=defects)
    return path


def test_clean_database_exits_0(clean_db: Path) -> None:
    code, out, _ = run(str(clean_db))
    assert code == 0
    assert "clean:" in out
    assert "no findings" in out


def test_findings_are_grouped_by_code_and_exit_1(broken_db: Path) -> None:
    code, out, _ = run(str(broken_db))
    assert code == 1
    assert "Findings by code" in out
    assert "duplicate-end" in out
    assert "stuck-waiting" in out
    assert "... and 5 more" in out
    assert "25 error(s), 1 warning(s)" in out


def test_json_output_is_the_stable_shape(broken_db: Path) -> None:
    code, out, _ = run(str(broken_db), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["version"] == 1
    assert report["summary"]["by_code"] == {"duplicate-end": 25, "stuck-waiting": 1}
    assert len(report["findings"]) == 26


def test_fail_on_warning(tmp_path: Path) -> None:
    path = tmp_path / "warn.db"
    build_database(path, sessions=3, defects={"stuck-waiting": 1})
    assert run(str(path))[0] == 0
    assert run(str(path), "--fail-on", "warning")[0] == 1
    assert run(str(path), "--stuck-after", "5w")[0] == 0
    assert run(str(path), "--stuck-after", "5w", "--fail-on", "warning")[0] == 0


def test_database_from_the_environment(clean_db: Path, broken_db: Path) -> None:
    assert run(env={"NEXUSLIMS_LIFECYCLE_DB": str(clean_db)})[0] == 0
    assert run(env={"NX_DB_PATH": str(broken_db)})[0] == 1
    both = {"NEXUSLIMS_LIFECYCLE_DB": str(clean_db), "NX_DB_PATH": str(broken_db)}
    assert run(env=both)[0] == 0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "absent.db", "no such file"),
        (lambda p: (p / "x.db").write_text("junk") and p / "x.db", "file is not a database"),
    ],
)
def test_unusable_database_exits_2_without_traceback(
    make: object, message: str, tmp_path: Path
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    code, out, err = run(str(path))
    assert code == 2
    assert message in err
    assert "Traceback" not in out + err


def test_bad_duration_exits_2(clean_db: Path) -> None:
    code, _, err = run(str(clean_db), "--stuck-after", "seven days")
    assert code == 2
    assert "not a duration: 'seven days'" in err


def test_missing_database_argument_exits_2() -> None:
    code, _, err = run(env={"NEXUSLIMS_LIFECYCLE_DB": ""})
    assert code == 2
    assert "Missing argument 'DB'" in err


def test_progress_bar_on_a_terminal(broken_db: Path) -> None:
    console = Console(force_terminal=True, record=True, width=100)
    report = _run_with_progress(
        str(broken_db), console, stuck_after=timedelta(days=7), stalled_after=timedelta(days=1)
    )
    assert report.counts["duplicate-end"] == 25


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("1w2d", timedelta(days=9)),
        ("90m", timedelta(minutes=90)),
        (" 30S ", timedelta(seconds=30)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d", "7 d", "-7d", "7y", "1.5d"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_stalled_after_moves_the_threshold(tmp_path: Path) -> None:
    """A build crashed 29 days ago: a warning by default, not under --stalled-after 30d."""
    path = tmp_path / "stalled.db"
    build_database(path, sessions=5, defects={"stalled-build": 1})
    code, out, _ = run(str(path), "--fail-on", "warning", "--json")
    assert code == 1
    assert json.loads(out)["summary"]["by_code"] == {"stalled-build": 1}
    assert run(str(path))[0] == 0  # a warning does not reach the default --fail-on error
    code, out, _ = run(str(path), "--stalled-after", "30d", "--fail-on", "warning")
    assert code == 0
    assert "no findings" in out
    code, _, err = run(str(path), "--stalled-after", "a while")
    assert code == 2
    assert "not a duration: 'a while'" in err


def test_the_file_delay_comes_from_nx_file_delay_days(tmp_path: Path) -> None:
    """find_no_files 2 hours after the END: early for 2 days, in time for 0.05 days (72 min)."""
    path = tmp_path / "early.db"
    build_database(path, sessions=5, defects={"early-no-files": 1})
    code, out, _ = run(str(path), "--json")
    assert code == 1
    assert json.loads(out)["summary"]["by_code"] == {"early-no-files": 1}
    assert run(str(path), env={"NX_FILE_DELAY_DAYS": "0.05"})[0] == 0


@pytest.mark.parametrize("value", ["abc", "0", "-2", "nan"])
def test_an_unusable_nx_file_delay_days_exits_2(clean_db: Path, value: str) -> None:
    code, out, err = run(str(clean_db), env={"NX_FILE_DELAY_DAYS": value})
    assert code == 2
    assert f"error: invalid configuration NX_FILE_DELAY_DAYS={value!r}" in err
    assert "a number of days greater than 0" in err
    assert out == ""
    assert "Traceback" not in err
