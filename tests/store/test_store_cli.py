"""The store commands: init, start, advance, status, history, sessions, and the SQLite demo."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime

import pytest
from _snapshot import dump
from click.testing import CliRunner

from nexuslims_lifecycle.cli import main
from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.store import SessionLogStore

SID = "https://nemo.example.org/api/usage_events/?id=4711"


@pytest.fixture
def runner(monkeypatch) -> CliRunner:
    for var in ("NEXUSLIMS_LIFECYCLE_DB", "NX_DB_PATH"):
        monkeypatch.delenv(var, raising=False)
    return CliRunner()


@pytest.fixture
def db(runner, sqlite_url) -> str:
    assert runner.invoke(main, ["init", sqlite_url]).exit_code == 0
    done = runner.invoke(main, ["start", sqlite_url, SID, "--instrument", "TEM", "--user", "ada"])
    assert done.output == "WAITING_FOR_END\n"
    return sqlite_url


def test_start_advance_and_status_print_the_status(runner, db):
    assert runner.invoke(main, ["advance", db, SID, "end"]).output == "TO_BE_BUILT\n"
    moved = runner.invoke(main, ["advance", db, SID, "FAIL", "--actor", "builder"])
    assert moved.output == "ERROR\n"
    assert runner.invoke(main, ["status", db, SID]).output == "ERROR\n"


def test_history_json_lists_every_move_with_actor(runner, db):
    runner.invoke(main, ["advance", db, SID, "end", "--actor", "harvester"])
    done = runner.invoke(main, ["history", db, SID, "--json"])
    answer = json.loads(done.output)
    assert list(answer) == ["session_identifier", "entries"]
    assert answer["session_identifier"] == SID
    entries = answer["entries"]
    assert [(e["seq"], e["from"], e["to"], e["event"], e["actor"]) for e in entries] == [
        (1, None, "WAITING_FOR_END", "start", "ada"),
        (2, "WAITING_FOR_END", "TO_BE_BUILT", "end", "harvester"),
    ]
    assert [list(e) for e in entries] == [["seq", "from", "to", "event", "actor", "at"]] * 2
    assert all(datetime.fromisoformat(e["at"]).utcoffset() is not None for e in entries)


@pytest.mark.parametrize(
    ("args", "answer"),
    [
        (["start", "{db}", "s2", "--instrument", "TEM"], {"event": "start"}),
        (["advance", "{db}", SID, "End"], {"event": "end", "status": "TO_BE_BUILT"}),
        (["status", "{db}", SID], {"status": "WAITING_FOR_END"}),
    ],
)
def test_start_advance_and_status_answer_one_json_object(runner, db, args, answer):
    done = runner.invoke(main, [*(arg.format(db=db) for arg in args), "--json"])
    assert done.exit_code == 0, done.output
    found = json.loads(done.output)
    keys = ["session_identifier", *(["event"] if "event" in answer else []), "status"]
    assert list(found) == keys
    assert {key: found[key] for key in answer} == answer


def test_init_and_guard_commands_answer_json(runner, sqlite_url):
    done = runner.invoke(main, ["init", sqlite_url, "--no-guard", "--json"])
    assert json.loads(done.output) == {"db": sqlite_url, "wal": False, "guard": False}
    installed = json.loads(runner.invoke(main, ["guard", "install", sqlite_url, "--json"]).output)
    assert list(installed) == ["db", "before", "version"]
    assert installed["before"] == "absent"
    status = json.loads(runner.invoke(main, ["guard", "status", sqlite_url, "--json"]).output)
    assert datetime.fromisoformat(status["installed_at"]).utcoffset() is not None
    removed = runner.invoke(main, ["guard", "remove", sqlite_url, "--json"])
    assert json.loads(removed.output) == {"db": sqlite_url, "removed": True}


def test_expected_and_status_are_read_as_every_command_reads_them(runner, db):
    """The bug this pins: ``can waiting-for-end ...`` worked, ``--expected waiting-for-end`` not."""
    done = runner.invoke(main, ["advance", db, SID, "END", "--expected", "waiting-for-end"])
    assert (done.exit_code, done.output) == (0, "TO_BE_BUILT\n")
    listed = runner.invoke(main, ["sessions", db, "--status", "To-Be-Built"])
    assert listed.output.split()[0] == "TO_BE_BUILT"


def test_history_for_people_shows_one_line_per_move(runner, db):
    done = runner.invoke(main, ["history", db, SID])
    assert done.exit_code == 0
    assert done.output.count("\n") == 1
    assert "-> WAITING_FOR_END" in done.output
    assert done.output.rstrip().endswith("start                ada")


def test_sessions_filters_by_a_status_in_any_case_and_streams_json_lines(runner, db):
    runner.invoke(main, ["start", db, "second", "--instrument", "SEM"])
    runner.invoke(main, ["advance", db, "second", "end"])
    lines = runner.invoke(main, ["sessions", db, "--status", "to_be_built", "--json"]).output
    assert [json.loads(line)["session_identifier"] for line in lines.splitlines()] == ["second"]
    table = runner.invoke(main, ["sessions", db]).output.splitlines()
    assert [line.split()[0] for line in table] == ["WAITING_FOR_END", "TO_BE_BUILT"]


def test_the_database_can_come_from_the_environment(runner, db, monkeypatch):
    monkeypatch.setenv("NEXUSLIMS_LIFECYCLE_DB", db)
    assert runner.invoke(main, ["status", SID]).output == "WAITING_FOR_END\n"
    monkeypatch.delenv("NEXUSLIMS_LIFECYCLE_DB")
    monkeypatch.setenv("NX_DB_PATH", db)
    assert runner.invoke(main, ["advance", SID, "end"]).output == "TO_BE_BUILT\n"


def test_a_missing_database_argument_is_a_usage_error(runner):
    done = runner.invoke(main, ["status"])
    assert done.exit_code == 2
    assert "expected DB SID (got 0 value(s)); DB may be left out when" in done.output


def test_a_conflict_exits_3_with_a_message_and_writes_nothing(runner, db):
    runner.invoke(main, ["advance", db, SID, "end"])
    before = dump(db)
    done = runner.invoke(main, ["advance", db, SID, "fail", "--expected", "waiting_for_end"])
    assert done.exit_code == 3
    assert done.output.startswith("conflict: conflict on session")
    assert "moved it to TO_BE_BUILT" in done.output
    assert dump(db) == before


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["status", "{db}", "nope"], "error: unknown session 'nope'", 2),
        (["advance", "{db}", SID, "complete"], "error: cannot 'complete' from WAITING_FOR_END", 1),
        (["start", "{db}", SID, "--instrument", "TEM"], "error: session '" + SID, 1),
        (["status", "mysql://h/db", SID], "error: cannot use database 'mysql://h/db'", 2),
        (["status", "{db}x", SID], "error: cannot use database", 2),
    ],
)
def test_bad_input_exits_2_a_refusal_1_with_a_message_and_nothing_written(
    runner, db, args, message, code
):
    before = dump(db)
    done = runner.invoke(main, [arg.format(db=db) for arg in args])
    assert done.exit_code == code
    assert done.output.startswith(message)
    assert dump(db) == before


TYPOS = [
    (["advance", "{db}", SID, "compelte"], "EVENT: unknown lifecycle event 'compelte'", "complete"),
    (
        ["advance", "{db}", SID, "end", "--expected", "to-be-bilt"],
        "'--expected': unknown record status 'to-be-bilt'",
        "TO_BE_BUILT",
    ),
    (["sessions", "{db}", "--status", "eror"], "'--status': unknown record status 'eror'", "ERROR"),
]


@pytest.mark.parametrize(("args", "problem", "meant"), TYPOS)
def test_a_typo_in_a_status_or_event_exits_2_with_did_you_mean(runner, db, args, problem, meant):
    before = dump(db)
    done = runner.invoke(main, [arg.format(db=db) for arg in args])
    assert done.exit_code == 2
    assert f"Invalid value for {problem}" in done.stderr
    assert f"did you mean {meant!r}?" in done.stderr
    assert done.stdout == ""
    assert dump(db) == before


def test_an_unusable_file_delay_setting_exits_2_and_writes_nothing(runner, db, monkeypatch):
    before = dump(db)
    monkeypatch.setenv("NX_FILE_DELAY_DAYS", "two")
    done = runner.invoke(main, ["status", db, SID])
    assert done.exit_code == 2
    assert done.output.startswith("error: invalid configuration NX_FILE_DELAY_DAYS='two'")
    assert dump(db) == before


def test_the_installed_command_prints_no_traceback_on_errors(db):
    done = subprocess.run(
        [sys.executable, "-m", "nexuslims_lifecycle", "advance", db, SID, "retry"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: cannot 'retry' from WAITING_FOR_END")


def test_the_commands_work_on_postgresql(runner, postgres_url):
    assert runner.invoke(main, ["init", postgres_url]).exit_code == 0
    runner.invoke(main, ["start", postgres_url, SID, "--instrument", "TEM"])
    assert runner.invoke(main, ["advance", postgres_url, SID, "end"]).output == "TO_BE_BUILT\n"


@pytest.mark.slow
def test_the_demo_recreates_its_sqlite_file_and_ends_the_same_each_run(runner, tmp_path):
    """`make demo` runs this twice in a row: it must be idempotent."""
    path = tmp_path / "demo.db"
    finals = []
    for _ in range(2):
        done = runner.invoke(main, ["demo", "--db", str(path)])
        assert done.exit_code == 0, done.output
        with SessionLogStore(path) as store:
            finals.append({i.session_identifier: i.status for i in store.sessions()})
    assert finals[0] == finals[1]
    assert len(finals[0]) == 20
    assert RecordStatus.NO_FILES_FOUND in finals[0].values()
    assert "conflict refused" in done.output
    assert "refused: cannot 'retry' from COMPLETED" in done.output
    assert "operator requeued" in done.output


def test_the_in_memory_demo_is_still_available(runner):
    done = runner.invoke(main, ["demo", "--in-memory"])
    assert done.exit_code == 0
    assert "Sessions driven through the lifecycle" in done.output


# --------------------------------------------------------------------- the guard


def test_guard_status_install_and_remove(runner, sqlite_url):
    assert runner.invoke(main, ["init", "--no-guard", sqlite_url]).output == (
        f"initialised {sqlite_url} (no guard)\n"
    )
    absent = runner.invoke(main, ["guard", "status", sqlite_url])
    assert (absent.exit_code, absent.output) == (
        1,
        f"{sqlite_url}: lifecycle guard not installed: run `guard install` to install it\n",
    )
    installed = runner.invoke(main, ["guard", "install", sqlite_url])
    assert installed.exit_code == 0
    assert installed.output.startswith(f"installed the lifecycle guard on {sqlite_url}")
    again = runner.invoke(main, ["guard", "install", sqlite_url])
    assert "already installed" in again.output
    status = runner.invoke(main, ["guard", "status", "--json", sqlite_url])
    found = json.loads(status.output)
    assert (status.exit_code, found["state"], found["version"]) == (
        0,
        "installed",
        found["expected"],
    )
    removed = runner.invoke(main, ["guard", "remove", sqlite_url])
    assert removed.output == f"removed the lifecycle guard from {sqlite_url}\n"
    assert runner.invoke(main, ["guard", "remove", sqlite_url]).output == (
        f"{sqlite_url} had no lifecycle guard\n"
    )


def test_guard_install_on_a_database_without_session_log_exits_2(runner, tmp_path):
    path = tmp_path / "other.db"
    path.touch()
    before = path.read_bytes()
    done = runner.invoke(main, ["guard", "install", str(path)])
    assert done.exit_code == 2
    assert "has no session_log table" in done.output
    assert path.read_bytes() == before


def test_guard_install_on_a_missing_file_exits_2_and_creates_nothing(runner, tmp_path):
    path = tmp_path / "missing.db"
    done = runner.invoke(main, ["guard", "install", str(path)])
    assert (done.exit_code, path.exists()) == (2, False)
    assert "does not exist" in done.output


def test_store_moves_without_the_guard_say_how_to_install_it(runner, sqlite_url):
    runner.invoke(main, ["init", "--no-guard", sqlite_url])
    done = runner.invoke(main, ["start", sqlite_url, SID, "--instrument", "TEM"])
    assert done.exit_code == 1
    assert "guard install" in done.output
