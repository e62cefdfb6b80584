"""NexusLIMS 2.8's own row patterns are normal for the store (issue: fit NexusLIMS as it runs).

Rows are written here with plain SQL in the shapes NexusLIMS's harvester and record
builder write them (the interop suite has NexusLIMS itself write them).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from _consistency import problems
from _snapshot import dump

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import (
    FileDelayNotElapsed,
    InvalidArgument,
    InvalidConfiguration,
    SessionExists,
    UnknownInstrument,
)
from nexuslims_lifecycle.store import SessionLogStore

SID = "https://nemo.example.org/api/usage_events/?id=4711"
DENVER = timezone(timedelta(hours=-7))
STARTED = datetime(2026, 11, 28, 9, 0, 0, 792567, tzinfo=DENVER)
ENDED = STARTED + timedelta(hours=3)
LONG_AFTER = ENDED + timedelta(days=30)


@pytest.fixture
def store(db_url: str):
    with SessionLogStore(db_url) as opened:
        opened.init()
        yield opened


def insert(store: SessionLogStore, event_type: str, status: str, at: datetime, user: str) -> int:
    """Insert one row as NexusLIMS's SessionLog.insert_log does; return its id."""
    with store.engine.begin() as conn:
        return int(
            conn.execute(
                sa.text(
                    "INSERT INTO session_log (session_identifier, instrument, timestamp, "
                    'event_type, record_status, "user") VALUES (:sid, :instrument, :at, '
                    ":kind, :status, :user) RETURNING id_session_log"
                ),
                {
                    "sid": SID,
                    "instrument": "FEI-Titan-TEM-635816",
                    "at": at.isoformat(),
                    "kind": event_type,
                    "status": status,
                    "user": user,
                },
            ).scalar_one()
        )


def harvested(store: SessionLogStore) -> None:
    """START and END, both TO_BE_BUILT: what the NEMO harvester writes for an ended event."""
    insert(store, "START", "TO_BE_BUILT", STARTED, "ada")
    insert(store, "END", "TO_BE_BUILT", ENDED, "ada")


def kinds(store: SessionLogStore) -> list[tuple[str, str, str]]:
    with store.engine.connect() as conn:
        query = sa.text(
            'SELECT event_type, record_status, "user" FROM session_log '
            "WHERE session_identifier = :sid ORDER BY id_session_log"
        )
        return [tuple(row) for row in conn.execute(query, {"sid": SID})]


def test_a_harvested_session_is_to_be_built_with_the_start_rows_user(store):
    harvested(store)
    assert store.status(SID) is RecordStatus.TO_BE_BUILT
    (info,) = store.sessions()
    assert (info.status, info.being_built, info.user) == (RecordStatus.TO_BE_BUILT, False, "ada")
    assert info.started_at is not None
    assert info.started_at.isoformat() == STARTED.isoformat()


def test_a_session_being_built_reads_as_to_be_built_and_is_listed_as_being_built(store):
    harvested(store)
    insert(store, "RECORD_GENERATION", "WAITING_FOR_END", LONG_AFTER, "nexuslims")
    assert store.status(SID) is RecordStatus.TO_BE_BUILT
    (info,) = store.sessions()
    assert (info.status, info.being_built, info.user, info.problem) == (
        RecordStatus.TO_BE_BUILT,
        True,
        "ada",
        None,
    )
    assert [i.session_identifier for i in store.sessions("TO_BE_BUILT")] == [SID]
    assert list(store.sessions("WAITING_FOR_END")) == []


def test_an_outcome_moves_every_row_the_build_row_included_and_adds_none(store):
    harvested(store)
    insert(store, "RECORD_GENERATION", "WAITING_FOR_END", LONG_AFTER, "nexuslims")
    assert store.advance(SID, "complete", actor="builder") is RecordStatus.COMPLETED
    assert kinds(store) == [
        ("START", "COMPLETED", "ada"),
        ("END", "COMPLETED", "ada"),
        ("RECORD_GENERATION", "COMPLETED", "nexuslims"),
    ]
    assert [info.being_built for info in store.sessions()] == [False]


def test_a_crashed_build_and_its_rerun_leave_two_build_rows_that_move_together(store):
    harvested(store)
    insert(store, "RECORD_GENERATION", "WAITING_FOR_END", LONG_AFTER, "nexuslims")
    insert(store, "RECORD_GENERATION", "WAITING_FOR_END", LONG_AFTER, "nexuslims")
    assert store.advance(SID, "fail") is RecordStatus.ERROR
    assert {status for _, status, _ in kinds(store)} == {"ERROR"}
    assert len(kinds(store)) == 4


def test_a_build_row_deleted_before_the_file_delay_leaves_a_plain_queued_session(store):
    harvested(store)
    row = insert(store, "RECORD_GENERATION", "WAITING_FOR_END", ENDED, "nexuslims")
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM session_log WHERE id_session_log = :id"), {"id": row})
    assert store.status(SID) is RecordStatus.TO_BE_BUILT
    assert [info.being_built for info in store.sessions()] == [False]


def test_a_revised_usage_event_changes_nothing_the_store_reads(store):
    harvested(store)
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(
                'UPDATE session_log SET timestamp = :at, "user" = :user '
                "WHERE session_identifier = :sid AND event_type = 'START'"
            ),
            {"at": (STARTED - timedelta(minutes=5)).isoformat(), "user": "grace", "sid": SID},
        )
    (info,) = store.sessions()
    assert (info.status, info.user) == (RecordStatus.TO_BE_BUILT, "grace")


def test_a_build_row_beside_rows_in_another_status_is_still_a_disagreement(store):
    harvested(store)
    store.remove_guard()  # (the guard refuses such a row: a database written without it)
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE session_log SET record_status = 'ERROR'"))
    insert(store, "RECORD_GENERATION", "WAITING_FOR_END", LONG_AFTER, "nexuslims")
    (info,) = store.sessions()
    assert (info.status, info.being_built) == (None, False)
    assert info.problem is not None
    assert "disagree on record_status (ERROR, WAITING_FOR_END)" in info.problem


# --- record_usage: a session enters at TO_BE_BUILT, as the harvester writes it ----------


def test_record_usage_writes_start_and_end_and_both_history_entries(store, db_url):
    result = store.record_usage(
        SID, STARTED, ENDED, instrument="FEI-Titan-TEM-635816", user="ada", actor="harvester"
    )
    assert result is RecordStatus.TO_BE_BUILT
    assert kinds(store) == [("START", "TO_BE_BUILT", "ada"), ("END", "TO_BE_BUILT", "ada")]
    history = store.history(SID)
    assert [(e.event, e.from_status, e.to_status, e.actor) for e in history] == [
        ("start", None, RecordStatus.WAITING_FOR_END, "ada"),
        ("end", RecordStatus.WAITING_FOR_END, RecordStatus.TO_BE_BUILT, "harvester"),
    ]
    assert [e.at.isoformat() for e in history] == [STARTED.isoformat(), ENDED.isoformat()]
    assert problems(db_url) == []


def test_record_usage_of_an_existing_session_writes_nothing(store, db_url):
    store.record_usage(SID, STARTED, ENDED, instrument="FEI-Titan-TEM-635816")
    before = dump(db_url)
    with pytest.raises(SessionExists, match="already exists"):
        store.record_usage(SID, STARTED, ENDED, instrument="FEI-Titan-TEM-635816")
    assert dump(db_url) == before


@pytest.mark.parametrize(
    ("started", "ended", "match"),
    [
        (STARTED, STARTED - timedelta(seconds=1), r"invalid ended .*at or after started"),
        (STARTED.replace(tzinfo=None), ENDED, r"invalid started .*timezone-aware"),
        ("2026-11-28T09:00:00-07:00", ENDED, r"invalid started '2026-11-28.*timezone-aware"),
    ],
)
def test_record_usage_refuses_bad_times_and_writes_nothing(store, started, ended, match):
    with pytest.raises(InvalidArgument, match=match):
        store.record_usage(SID, started, ended, instrument="FEI-Titan-TEM-635816")
    assert kinds(store) == []


# --- instruments, times and the file delay, as NexusLIMS has them ------------------------


def with_instruments(store: SessionLogStore, *names: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE instruments (instrument_pid VARCHAR(100) PRIMARY KEY)"))
        for name in names:
            conn.execute(sa.text("INSERT INTO instruments VALUES (:n)"), {"n": name})


def test_an_instrument_nexuslims_does_not_know_is_refused_and_nothing_written(store):
    with_instruments(store, "FEI-Titan-TEM-635816", "JEOL-JEM3010-TEM-565989")
    message = (
        r"unknown instrument 'FEI-Titan'.*lists FEI-Titan-TEM-635816, JEOL-JEM3010-TEM-565989; "
        r"add it to NexusLIMS first"
    )
    with pytest.raises(UnknownInstrument, match=message) as caught:
        store.start(SID, instrument="FEI-Titan")
    assert caught.value.known == ("FEI-Titan-TEM-635816", "JEOL-JEM3010-TEM-565989")
    with pytest.raises(UnknownInstrument, match=message):
        store.record_usage(SID, STARTED, ENDED, instrument="FEI-Titan")
    assert kinds(store) == []
    store.start(SID, instrument="FEI-Titan-TEM-635816")
    assert store.status(SID) is RecordStatus.WAITING_FOR_END


def test_without_an_instruments_table_any_instrument_is_accepted(store):
    assert store.start(SID, instrument="anything") is RecordStatus.WAITING_FOR_END


def test_rows_are_stamped_now_in_the_local_offset_like_nexuslims(store, monkeypatch):
    monkeypatch.setenv("TZ", "America/Denver")
    time.tzset()
    try:
        store.start(SID, instrument="FEI-Titan-TEM-635816")
        store.advance(SID, "end")
        local = datetime.now().astimezone().utcoffset()
        with store.engine.connect() as conn:
            stamps = conn.execute(sa.text("SELECT timestamp FROM session_log")).scalars().all()
        offsets = {datetime.fromisoformat(stamp).utcoffset() for stamp in stamps}
        assert offsets == {local}
        assert local in {timedelta(hours=-7), timedelta(hours=-6)}
        assert {e.at.utcoffset() for e in store.history(SID)} == {local}
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_the_file_delay_comes_from_nx_file_delay_days(db_url, monkeypatch):
    monkeypatch.setenv("NX_FILE_DELAY_DAYS", "0.5")
    with SessionLogStore(db_url) as store:
        assert store.file_delay == timedelta(hours=12)
        store.init()
        store.record_usage(SID, STARTED, ENDED, instrument="FEI-Titan-TEM-635816")
        with pytest.raises(FileDelayNotElapsed, match="try again after"):
            store.advance(SID, "find_no_files", now=ENDED + timedelta(hours=11))
        assert store.status(SID) is RecordStatus.TO_BE_BUILT
        moved = store.advance(SID, "find_no_files", now=ENDED + timedelta(hours=12))
        assert moved is RecordStatus.NO_FILES_FOUND


def test_a_file_delay_given_to_the_store_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("NX_FILE_DELAY_DAYS", "0.5")
    assert SessionLogStore("x.db", file_delay=timedelta(days=3)).file_delay == timedelta(days=3)


@pytest.mark.parametrize("bad", ["two", "0", "-1", "nan", "inf"])
def test_an_unusable_nx_file_delay_days_is_refused_when_the_store_is_made(monkeypatch, bad):
    monkeypatch.setenv("NX_FILE_DELAY_DAYS", bad)
    with pytest.raises(InvalidConfiguration, match=r"NX_FILE_DELAY_DAYS=.*greater than 0"):
        SessionLogStore("x.db")


@pytest.mark.parametrize("bad", [timedelta(0), timedelta(days=-1), 2])
def test_an_unusable_file_delay_argument_is_refused(bad):
    with pytest.raises(InvalidArgument, match="invalid file_delay"):
        SessionLogStore("x.db", file_delay=bad)


# --- the build queue beside NexusLIMS's own builder ---------------------------------------


def test_the_queue_passes_over_a_session_nexuslims_is_building(store):
    harvested(store)
    insert(store, "RECORD_GENERATION", "WAITING_FOR_END", LONG_AFTER, "nexuslims")
    before = kinds(store)
    assert store.claim_next("w", lease=600) is None
    assert kinds(store) == before


def test_too_early_no_files_ends_the_claim_and_deletes_its_build_row_as_nexuslims_does(
    store, db_url
):
    store.record_usage(SID, STARTED, ENDED, instrument="FEI-Titan-TEM-635816")
    claim = store.claim_next("w", lease=600, now=ENDED + timedelta(hours=1))
    assert claim is not None
    assert kinds(store)[-1] == ("RECORD_GENERATION", "WAITING_FOR_END", None)
    with pytest.raises(FileDelayNotElapsed):
        store.advance(SID, "find_no_files", actor="w", now=ENDED + timedelta(hours=1))
    assert kinds(store) == [("START", "TO_BE_BUILT", None), ("END", "TO_BE_BUILT", None)]
    assert [info.being_built for info in store.sessions()] == [False]
    assert len(store.history(SID)) == 2
    assert problems(db_url) == []
    again = store.claim_next("w2", lease=600, now=datetime.now(UTC))
    assert again is not None
    assert again.taken_over_from is None


def test_a_too_early_no_files_by_a_non_holder_changes_nothing(store):
    store.record_usage(SID, STARTED, ENDED, instrument="FEI-Titan-TEM-635816")
    store.claim_next("w", lease=600, now=ENDED + timedelta(hours=1))
    before = kinds(store)
    with pytest.raises(FileDelayNotElapsed):
        store.advance(SID, "find_no_files", actor="someone", now=ENDED + timedelta(hours=1))
    assert kinds(store) == before
