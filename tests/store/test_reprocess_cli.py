"""``nexuslims-lifecycle reprocess``: tables, JSON, exit statuses; bad input writes nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from _nexuslims_rows import being_built, built, create, harvested, rows, started
from _snapshot import dump
from click.testing import CliRunner

from nexuslims_lifecycle.cli import main
from nexuslims_lifecycle.store import SessionLogStore

MDT = timezone(timedelta(hours=-7))
JAN_15 = datetime(2024, 1, 15, 10, 0, tzinfo=MDT)
JAN_31 = datetime(2024, 1, 31, 22, 30, tzinfo=MDT)
FEB_02 = datetime(2024, 2, 2, 9, 0, tzinfo=MDT)


@pytest.fixture
def runner(monkeypatch) -> CliRunner:
    for var in ("NEXUSLIMS_LIFECYCLE_DB", "NX_DB_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # one table row per session
    return CliRunner()


@pytest.fixture
def db(tmp_path) -> str:
    """done (COMPLETED, Jan 15), failed (ERROR, Jan 31 late), open (not ended), feb (ERROR)."""
    return create(
        tmp_path / "nexuslims.db",
        built("done", JAN_15, "COMPLETED"),
        built("failed", JAN_31, "ERROR"),
        started("open", JAN_15 + timedelta(hours=3)),
        built("feb", FEB_02, "ERROR"),
    )


def reprocess(runner: CliRunner, *args: str):
    return runner.invoke(main, ["reprocess", *args])


def cells(output: str) -> list[list[str]]:
    """Return the rows of the tables printed, each as its stripped cells."""
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in output.splitlines()
        if line.startswith("│")
    ]


def test_a_date_range_moves_whole_sessions_and_prints_what_moved_and_what_not(runner, db):
    done = reprocess(runner, db, "--from", "2024-01-01", "--to", "2024-01-31")
    assert done.exit_code == 0, done.output
    assert cells(done.stdout) == [
        ["done", "2024-01-15T10:00:00-07:00", "COMPLETED", "reprocess"],
        ["failed", "2024-01-31T22:30:00-07:00", "ERROR", "retry"],
        [
            "open",
            "2024-01-15T13:00:00-07:00",
            "WAITING_FOR_END",
            "not ended yet: WAITING_FOR_END; the harvester queues it once it ends",
        ],
    ]
    lines = done.stdout.splitlines()
    assert lines[-1] == "moved 2 session(s), skipped 1"
    assert {status for _, status in rows(db, "done")} == {"TO_BE_BUILT"}
    assert {status for _, status in rows(db, "failed")} == {"TO_BE_BUILT"}
    assert {status for _, status in rows(db, "feb")} == {"ERROR"}


def test_json_is_the_report_and_a_dry_run_writes_nothing(runner, db):
    before = dump(db)
    done = reprocess(runner, db, "--status", "error", "--dry-run", "--json")
    assert done.exit_code == 0
    assert json.loads(done.stdout) == {
        "dry_run": True,
        "moved": [
            {
                "session_identifier": sid,
                "started_at": start.isoformat(),
                "from": "ERROR",
                "event": "retry",
                "to": "TO_BE_BUILT",
            }
            for sid, start in (("failed", JAN_31), ("feb", FEB_02))
        ],
        "skipped": [],
    }
    assert dump(db) == before


def test_a_dry_run_says_so_for_people(runner, db):
    done = reprocess(runner, db, "--session", "done", "--dry-run")
    assert "Sessions would move to TO_BE_BUILT" in done.stdout
    assert (
        done.stdout.splitlines()[-1]
        == "would move 1 session(s), skipped 0; dry run: nothing was written"
    )


def test_when_every_selected_session_is_skipped_the_exit_status_is_1(runner, db):
    done = reprocess(runner, db, "--session", "open", "--json")
    assert done.exit_code == 1
    assert json.loads(done.stdout)["skipped"][0]["reason"] == "not-ended"
    again = reprocess(runner, db, "--session", "open")
    assert again.exit_code == 1
    assert again.stdout.splitlines()[-1] == "moved 0 session(s), skipped 1"


def test_statuses_and_sessions_repeat_and_combine_with_and(runner, db):
    done = reprocess(
        runner,
        db,
        "--status",
        "ERROR",
        "--status",
        "no-consent",
        "--session",
        "feb",
        "--session",
        "done",
        "--json",
    )
    assert done.exit_code == 0
    assert [m["session_identifier"] for m in json.loads(done.stdout)["moved"]] == ["feb"]


def test_the_actor_is_recorded(runner, db):
    assert reprocess(runner, db, "--session", "feb", "--actor", "ada").exit_code == 0
    with SessionLogStore(db) as store:
        assert [(e.event, e.actor) for e in store.history("feb")] == [("retry", "ada")]


def test_the_database_can_come_from_nexuslims_own_variable(runner, db, monkeypatch):
    monkeypatch.setenv("NX_DB_PATH", db)
    done = runner.invoke(main, ["reprocess", "--session", "feb", "--json"])
    assert done.exit_code == 0
    assert json.loads(done.stdout)["moved"][0]["event"] == "retry"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "choose the sessions: give --from/--to, --status or --session (or --all)"),
        (["--all", "--status", "ERROR"], "--all selects every session: leave out --from"),
        (
            ["--from", "2024-13-01"],
            "error: invalid --from '2024-13-01': expected an ISO 8601 date (2024-01-31)",
        ),
        (["--to", "yesterday"], "error: invalid --to 'yesterday'"),
        (
            ["--from", "2024-02-01", "--to", "2024-01-31"],
            "error: invalid --to '2024-01-31': expected a time not before the range's start "
            "'2024-02-01'",
        ),
        (["--status", "complted"], "did you mean 'COMPLETED'?"),
        (["--session", "done", "--session", "nope"], "error: unknown session 'nope'"),
        (
            ["--from", "2025-01-01"],
            "error: no session matches the selection (started from 2025-01-01)",
        ),
        (["--status", "NO_CONSENT"], "error: no session matches the selection (status NO_CONSENT)"),
        (["--session", "done", "--actor", ""], "error: invalid --actor ''"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_writes_nothing(runner, db, args, message):
    before = dump(db)
    done = reprocess(runner, db, *args)
    assert done.exit_code == 2
    assert message in done.stderr
    assert done.stdout == ""
    assert dump(db) == before


def test_a_nexuslims_file_without_our_tables_exits_1_and_says_to_run_init(runner, tmp_path):
    path = create(tmp_path / "n.db", built("feb", FEB_02, "ERROR"), init=False)
    done = reprocess(runner, path, "--all")
    assert done.exit_code == 1
    assert "run `init` on it first" in done.stderr
    assert {status for _, status in rows(path, "feb")} == {"ERROR"}


def test_sessions_being_built_or_queued_are_listed_with_their_reason(runner, tmp_path):
    path = create(
        tmp_path / "n.db",
        being_built("busy", JAN_15),
        harvested("queued", JAN_15),
        built("feb", FEB_02, "ERROR"),
    )
    done = reprocess(runner, path, "--all", "--json")
    assert done.exit_code == 0
    report = json.loads(done.stdout)
    assert [(s["session_identifier"], s["status"], s["reason"]) for s in report["skipped"]] == [
        ("busy", "TO_BE_BUILT", "being-built"),
        ("queued", "TO_BE_BUILT", "already-queued"),
    ]
    assert rows(path, "busy")[-1] == ("RECORD_GENERATION", "WAITING_FOR_END")
