"""The generator of NexusLIMS-shaped databases."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.fixtures import build_database
from nexuslims_lifecycle.legality import replay

NOW = datetime(2026, 11, 28, tzinfo=UTC)


def dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return list(conn.iterdump())


def test_same_seed_same_database(tmp_path: Path) -> None:
    build_database(tmp_path / "a.db", sessions=300, defects={"duplicate-end": 2}, seed=9, now=NOW)
    build_database(tmp_path / "b.db", sessions=300, defects={"duplicate-end": 2}, seed=9, now=NOW)
    build_database(tmp_path / "c.db", sessions=300, defects={"duplicate-end": 2}, seed=10, now=NOW)
    assert dump(tmp_path / "a.db") == dump(tmp_path / "b.db")
    assert dump(tmp_path / "a.db") != dump(tmp_path / "c.db")


def test_sessions_look_like_nexuslims(tmp_path: Path) -> None:
    path = tmp_path / "shape.db"
    info = build_database(path, sessions=500, seed=1, now=NOW)
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT session_identifier, instrument, timestamp, event_type, record_status"
            " FROM session_log"
        ).fetchall()
        history = conn.execute(
            "SELECT session_identifier, event FROM status_history ORDER BY session_identifier, seq"
        ).fetchall()
    assert len(rows) == info.total_rows
    assert all(sid.startswith("https://nemo.example.org/api/usage_events/?id=") for sid, *_ in rows)
    assert len({sid for sid, *_ in rows}) == 500
    assert len({row[1] for row in rows}) >= 4
    offsets = {datetime.fromisoformat(row[2]).utcoffset() for row in rows}
    assert len(offsets) >= 3
    assert {row[3] for row in rows} == {"START", "END", "RECORD_GENERATION"}
    assert {row[4] for row in rows} >= {"COMPLETED", "ERROR", "WAITING_FOR_END", "NO_CONSENT"}
    assert any(event == "retry" for _, event in history)
    # Every session's history replays to the status its rows hold.
    by_session: dict[str, list[str]] = {}
    for sid, event in history:
        by_session.setdefault(sid, []).append(event)
    status = {row[0]: row[4] for row in rows}
    for sid, events in by_session.items():
        assert events[0] == "start"
        assert replay(events[1:]) is RecordStatus(status[sid])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sessions": -1}, "sessions must be >= 0, got -1"),
        ({"sessions": 1, "schema": "v3"}, "schema must be 'current' or 'legacy', got 'v3'"),
        ({"sessions": 1, "defects": {"typo": 1}}, "unknown defect 'typo': expected one of"),
        ({"sessions": 1, "defects": {"duplicate-end": -2}}, "count must be >= 0, got -2"),
        (
            {"sessions": 1, "defects": {"invalid-status": 1}},
            "breaks a CHECK constraint of the current schema: use schema='legacy'",
        ),
        (
            {"sessions": 1, "schema": "legacy", "defects": {"history-gap": 1}},
            "needs status_history, which the legacy schema lacks",
        ),
    ],
)
def test_impossible_arguments_are_refused(
    kwargs: dict[str, object], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_database(tmp_path / "x.db", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "x.db").exists()


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "precious.db"
    path.write_text("keep me")
    with pytest.raises(ValueError, match="already exists"):
        build_database(path, sessions=1)
    assert path.read_text() == "keep me"


def test_current_schema_enforces_the_enums(tmp_path: Path) -> None:
    path = tmp_path / "checks.db"
    build_database(path, sessions=1, now=NOW)
    with sqlite3.connect(path) as conn, pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        conn.execute(
            "INSERT INTO session_log (session_identifier, instrument, timestamp, event_type,"
            " record_status) VALUES ('s', 'i', 't', 'START', 'BUILDING')"
        )
