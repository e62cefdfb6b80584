"""The generator of NexusLIMS-shaped databases."""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nexuslims_lifecycle.audit import audit
from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import InvalidConfiguration
from nexuslims_lifecycle.legality import replay
from nexuslims_lifecycle.rules import EVENTS, FILE_DELAY
from nexuslims_lifecycle.testing.fixtures import FixtureInfo, build_database

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


def read(path: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(query).fetchall()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FixtureInfo]:
    path = tmp_path_factory.mktemp("fixtures") / "shape.db"
    return path, build_database(path, sessions=3_000, seed=1, now=NOW)


def sessions_of(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Return each session's rows (id, timestamp, event_type, record_status, user)."""
    rows = read(
        path,
        "SELECT session_identifier, id_session_log, timestamp, event_type, record_status, user"
        " FROM session_log ORDER BY id_session_log",
    )
    by_session: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for sid, *row in rows:
        by_session[sid].append(tuple(row))
    return by_session


def status_of(rows: list[tuple[Any, ...]]) -> RecordStatus:
    """A session's status: TO_BE_BUILT while being built, else what every row holds."""
    statuses = {status for _, _, kind, status, _ in rows if (kind, status) != BUILDING}
    if len(statuses) != 1:
        statuses = {status for *_, status, _ in rows}
    (status,) = statuses
    return RecordStatus(status)


BUILDING = ("RECORD_GENERATION", "WAITING_FOR_END")


def test_sessions_look_like_nexuslims(generated: tuple[Path, FixtureInfo]) -> None:
    path, info = generated
    rows = read(
        path, "SELECT session_identifier, instrument, timestamp, event_type FROM session_log"
    )
    assert len(rows) == info.total_rows
    assert all(sid.startswith("https://nemo.example.org/api/usage_events/?id=") for sid, *_ in rows)
    assert len({sid for sid, *_ in rows}) == 3_000
    assert len({row[1] for row in rows}) >= 4
    offsets = {datetime.fromisoformat(row[2]).utcoffset() for row in rows}
    assert len(offsets) >= 3
    assert {row[3] for row in rows} == {"START", "END", "RECORD_GENERATION"}


def test_every_history_replays_to_the_status_of_the_rows(
    generated: tuple[Path, FixtureInfo],
) -> None:
    path, _ = generated
    history: dict[str, list[str]] = defaultdict(list)
    for sid, event in read(
        path,
        "SELECT session_identifier, event FROM status_history ORDER BY session_identifier, seq",
    ):
        history[sid].append(event)
    sessions = sessions_of(path)
    assert set(history) == set(sessions)
    for sid, events in history.items():
        assert events[0] == "start"
        assert replay(events[1:]) is status_of(sessions[sid])
    moves = Counter(event for events in history.values() for event in events)
    assert set(moves) == {"start", *EVENTS}
    assert {status_of(rows) for rows in sessions.values()} == set(RecordStatus)


def test_most_sessions_enter_as_the_nemo_harvester_writes_them(
    generated: tuple[Path, FixtureInfo],
) -> None:
    """START and END together, TO_BE_BUILT: the history's start and end entries share a time."""
    path, _ = generated
    entries = read(
        path,
        "SELECT session_identifier, seq, at FROM status_history WHERE seq <= 2"
        " ORDER BY session_identifier, seq",
    )
    at: dict[str, list[str]] = defaultdict(list)
    for sid, _, moment in entries:
        at[sid].append(moment)
    harvested = [sid for sid, times in at.items() if len(times) == 2 and times[0] == times[1]]
    assert len(harvested) > len(at) / 2
    sessions = sessions_of(path)
    for sid in harvested:
        kinds = [kind for _, _, kind, _, _ in sessions[sid]]
        assert kinds[:2] == ["START", "END"]
    # NexusLIMS never writes an END row WAITING_FOR_END, nor a WAITING_FOR_END START beside one.
    assert not any(
        kind == "END" and status == "WAITING_FOR_END"
        for rows in sessions.values()
        for _, _, kind, status, _ in rows
    )


def test_build_rows_are_nexuslims_in_the_builders_local_time(
    generated: tuple[Path, FixtureInfo],
) -> None:
    path, _ = generated
    builds = read(
        path, "SELECT timestamp, user FROM session_log WHERE event_type = 'RECORD_GENERATION'"
    )
    assert {user for _, user in builds} == {"nexuslims"}
    assert {datetime.fromisoformat(stamp).utcoffset() for stamp, _ in builds} == {
        timedelta(hours=-7)
    }
    assert all(datetime.fromisoformat(stamp).microsecond for stamp, _ in builds[:50])
    people = read(path, "SELECT timestamp FROM session_log WHERE event_type != 'RECORD_GENERATION'")
    precise = [stamp for (stamp,) in people if "." in stamp]
    assert 0 < len(precise) < len(people)


def test_sessions_being_built_and_crashed_builds(generated: tuple[Path, FixtureInfo]) -> None:
    """Some sessions are being built now; crashed builds' rows took a later outcome's status."""
    path, _ = generated
    sessions = sessions_of(path)
    being_built = {
        sid for sid, rows in sessions.items() if any(row[2:4] == BUILDING for row in rows)
    }
    assert being_built
    for sid in being_built:
        rows = sessions[sid]
        assert status_of(rows) is RecordStatus.TO_BE_BUILT
        started = max(
            datetime.fromisoformat(stamp) for _, stamp, *kind in rows if tuple(kind[:2]) == BUILDING
        )
        assert NOW - timedelta(hours=2) <= started <= NOW
    claims = read(path, "SELECT session_identifier, expires_at FROM build_claim")
    assert claims
    assert {sid for sid, _ in claims} <= being_built
    assert all(datetime.fromisoformat(expires) > NOW for _, expires in claims)
    several = [
        sid
        for sid, rows in sessions.items()
        if sum(kind == "RECORD_GENERATION" for _, _, kind, _, _ in rows) > 1
    ]
    assert len(several) > 100


def test_no_files_only_after_end_plus_the_file_delay(generated: tuple[Path, FixtureInfo]) -> None:
    """Every find_no_files came after END + the delay; its build row (time of attempt) too."""
    path, _ = generated
    sessions = sessions_of(path)
    decided = read(
        path, "SELECT session_identifier, at FROM status_history WHERE event = 'find_no_files'"
    )
    assert len(decided) > 100
    for sid, at in decided:
        ended = max(
            datetime.fromisoformat(stamp) for _, stamp, kind, _, _ in sessions[sid] if kind == "END"
        )
        assert datetime.fromisoformat(at) >= ended + FILE_DELAY
    waiting = [rows for rows in sessions.values() if status_of(rows) is RecordStatus.NO_FILES_FOUND]
    for rows in waiting:
        ended = max(datetime.fromisoformat(stamp) for _, stamp, kind, _, _ in rows if kind == "END")
        newest = [stamp for _, stamp, kind, _, _ in rows if kind == "RECORD_GENERATION"][-1]
        assert datetime.fromisoformat(newest) >= ended + FILE_DELAY


def test_the_file_delay_can_be_chosen(tmp_path: Path) -> None:
    path = tmp_path / "slow.db"
    build_database(path, sessions=1_500, seed=4, now=NOW, file_delay=timedelta(days=6))
    decided = read(
        path,
        "SELECT h.at, l.timestamp FROM status_history h JOIN session_log l"
        " ON l.session_identifier = h.session_identifier AND l.event_type = 'END'"
        " WHERE h.event = 'find_no_files'",
    )
    assert decided
    assert all(
        datetime.fromisoformat(at) - datetime.fromisoformat(end) >= timedelta(days=6)
        for at, end in decided
    )
    assert audit(path, now=NOW, file_delay=timedelta(days=6)).clean


@pytest.mark.parametrize("delay", [timedelta(hours=1), FILE_DELAY, timedelta(days=20)])
def test_early_no_files_is_planted_early_whatever_the_delay(
    tmp_path: Path, delay: timedelta
) -> None:
    """The planted no-files decision comes half the delay after the END: early for any delay."""
    path = tmp_path / "early.db"
    info = build_database(
        path, sessions=0, defects={"early-no-files": 2}, now=NOW, file_delay=delay
    )
    assert audit(path, now=NOW, file_delay=delay).counts == {"early-no-files": 2}
    for sid in info.sessions["early-no-files"]:
        ((ended,),) = read(
            path,
            "SELECT timestamp FROM session_log WHERE event_type = 'END'"
            f" AND session_identifier = '{sid}'",
        )
        ((decided,),) = read(
            path, f"SELECT at FROM status_history WHERE session_identifier = '{sid}' AND seq = 3"
        )
        assert datetime.fromisoformat(decided) - datetime.fromisoformat(ended) == delay / 2


def test_the_file_delay_follows_nexuslims_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NX_FILE_DELAY_DAYS", "5.5")
    path = tmp_path / "env.db"
    build_database(path, sessions=1_500, seed=4, now=NOW)
    report = audit(path, now=NOW)
    assert report.clean
    with monkeypatch.context() as env:
        env.delenv("NX_FILE_DELAY_DAYS")
        assert audit(path, now=NOW, file_delay=timedelta(days=8)).counts["early-no-files"] > 0
    monkeypatch.setenv("NX_FILE_DELAY_DAYS", "soon")
    with pytest.raises(InvalidConfiguration, match="NX_FILE_DELAY_DAYS='soon'"):
        build_database(tmp_path / "never.db", sessions=1, now=NOW)
    assert not (tmp_path / "never.db").exists()


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
        (
            {"sessions": 1, "schema": "legacy", "defects": {"stale-claim": 1}},
            "needs build_claim, which the legacy schema lacks",
        ),
        ({"sessions": 1, "file_delay": timedelta(0)}, "file_delay must be a timedelta > 0"),
        ({"sessions": 1, "file_delay": 2}, "file_delay must be a timedelta > 0, got 2"),
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
