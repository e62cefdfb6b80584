"""SessionLogStore: start, advance, status, history and sessions, on SQLite and PostgreSQL."""

from __future__ import annotations

import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from _consistency import problems
from _snapshot import dump

from nexuslims_lifecycle.enums import EventType, RecordStatus
from nexuslims_lifecycle.errors import (
    FileDelayNotElapsed,
    IllegalTransition,
    InvalidArgument,
    MissingEndTime,
    SessionExists,
    TransitionConflict,
    UnknownEvent,
    UnknownSession,
    UnknownStatus,
)
from nexuslims_lifecycle.rules import FILE_DELAY
from nexuslims_lifecycle.store import SessionLogStore

NEMO = "https://nemo.example.org/api/usage_events/?id={}"
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[SessionLogStore]:
    with SessionLogStore(db_url) as opened:
        opened.init()
        yield opened


def _log_rows(store: SessionLogStore, sid: str) -> list[tuple[str, str, str]]:
    with store.engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                sa.text(
                    "SELECT event_type, record_status, timestamp FROM session_log "
                    "WHERE session_identifier = :sid ORDER BY id_session_log"
                ),
                {"sid": sid},
            )
        ]


def test_start_writes_one_start_row_waiting_for_end_with_an_offset_timestamp(store):
    sid = NEMO.format(1)
    assert len(sid) > 36
    assert store.start(sid, instrument="FEI-Titan-TEM-635816", user="ada", at=T0) is (
        RecordStatus.WAITING_FOR_END
    )
    assert _log_rows(store, sid) == [("START", "WAITING_FOR_END", "2026-03-02T09:30:00+00:00")]
    assert store.status(sid) is RecordStatus.WAITING_FOR_END


def test_starting_an_existing_session_is_refused_and_writes_nothing(store, db_url):
    sid = NEMO.format(2)
    store.start(sid, instrument="I", at=T0)
    before = dump(db_url)
    with pytest.raises(SessionExists, match=r"already exists \(now WAITING_FOR_END\)") as info:
        store.start(sid, instrument="I")
    assert info.value.session_identifier == sid
    assert dump(db_url) == before


def test_end_adds_the_end_row_and_moves_every_row(store):
    sid = NEMO.format(3)
    store.start(sid, instrument="I", at=T0)
    assert store.advance(sid, "end", at=T0 + timedelta(hours=2)) is RecordStatus.TO_BE_BUILT
    assert [row[:2] for row in _log_rows(store, sid)] == [
        ("START", "TO_BE_BUILT"),
        ("END", "TO_BE_BUILT"),
    ]


def test_each_unclaimed_build_outcome_adds_a_record_generation_row(store, db_url):
    sid = NEMO.format(4)
    store.start(sid, instrument="I", at=T0)
    for event in ("end", "fail", "retry", "fail_export", "complete"):
        store.advance(sid, event, actor="operator")
    kinds = [row[0] for row in _log_rows(store, sid)]
    assert kinds == ["START", "END", "RECORD_GENERATION", "RECORD_GENERATION"]
    assert {row[1] for row in _log_rows(store, sid)} == {"COMPLETED"}
    assert problems(db_url) == []


def test_history_records_every_move_in_order_with_actor_and_time(store):
    sid = NEMO.format(5)
    store.start(sid, instrument="I", user="ada", at=T0)
    store.advance(sid, "end", actor="harvester", at=T0 + timedelta(hours=1))
    store.advance(sid, "deny_consent", actor="builder")
    entries = store.history(sid)
    assert [(e.seq, e.from_status, e.to_status, e.event, e.actor) for e in entries] == [
        (1, None, RecordStatus.WAITING_FOR_END, "start", "ada"),
        (2, RecordStatus.WAITING_FOR_END, RecordStatus.TO_BE_BUILT, "end", "harvester"),
        (3, RecordStatus.TO_BE_BUILT, RecordStatus.NO_CONSENT, "deny_consent", "builder"),
    ]
    assert entries[1].at.isoformat() == "2026-03-02T10:30:00+00:00"


def test_an_illegal_event_raises_and_writes_nothing(store, db_url):
    sid = NEMO.format(6)
    store.start(sid, instrument="I")
    before = dump(db_url)
    with pytest.raises(IllegalTransition, match=r"cannot 'complete' from WAITING_FOR_END"):
        store.advance(sid, "complete")
    assert dump(db_url) == before


def test_an_unknown_event_raises_and_writes_nothing(store, db_url):
    sid = NEMO.format(7)
    store.start(sid, instrument="I")
    before = dump(db_url)
    with pytest.raises(UnknownEvent, match=r"unknown lifecycle event 'finish'"):
        store.advance(sid, "finish")
    assert dump(db_url) == before


def test_an_unknown_session_raises_lookup_error_and_writes_nothing(store, db_url):
    before = dump(db_url)
    with pytest.raises(UnknownSession, match=r"unknown session 'nope': no session_log row"):
        store.advance("nope", "end")
    with pytest.raises(LookupError, match="unknown session 'nope'"):
        store.status("nope")
    with pytest.raises(UnknownSession, match="unknown session 'nope'"):
        store.history("nope")
    assert dump(db_url) == before


def test_a_stale_expected_status_is_a_conflict_carrying_the_current_status(store, db_url):
    sid = NEMO.format(8)
    store.start(sid, instrument="I")
    store.advance(sid, "end")
    store.advance(sid, "fail")
    before = dump(db_url)
    with pytest.raises(TransitionConflict, match="expected TO_BE_BUILT, but another") as info:
        store.advance(sid, "fail", expected="TO_BE_BUILT")
    assert (info.value.current, info.value.expected) == ("ERROR", "TO_BE_BUILT")
    assert dump(db_url) == before


def test_an_unknown_expected_status_is_bad_input(store, db_url):
    sid = NEMO.format(9)
    store.start(sid, instrument="I")
    before = dump(db_url)
    with pytest.raises(UnknownStatus, match="unknown record status 'ended'"):
        store.advance(sid, "end", expected="ended")
    assert dump(db_url) == before


def test_find_no_files_before_the_file_delay_is_refused_and_writes_nothing(store, db_url):
    sid = NEMO.format(10)
    store.start(sid, instrument="I", at=T0)
    store.advance(sid, "end", at=T0 + timedelta(hours=1))
    before = dump(db_url)
    early = T0 + timedelta(hours=1) + FILE_DELAY - timedelta(minutes=1)
    with pytest.raises(FileDelayNotElapsed, match="stays TO_BE_BUILT, try again after") as info:
        store.advance(sid, "find_no_files", now=early)
    assert info.value.ready_at == T0 + timedelta(hours=1) + FILE_DELAY
    assert dump(db_url) == before
    late = early + timedelta(minutes=1)
    assert store.advance(sid, "find_no_files", now=late) is RecordStatus.NO_FILES_FOUND


def test_find_no_files_without_an_end_row_needs_the_end_time(store, db_url):
    sid = NEMO.format(11)
    store.start(sid, instrument="I")
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE session_log SET record_status = 'TO_BE_BUILT'"))
    before = dump(db_url)
    with pytest.raises(MissingEndTime, match="its end time is unknown"):
        store.advance(sid, "find_no_files")
    assert dump(db_url) == before


def test_naive_times_and_blank_identifiers_are_refused(store, db_url):
    before = dump(db_url)
    with pytest.raises(InvalidArgument, match=r"invalid at .* timezone-aware"):
        store.start("s", instrument="I", at=datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(InvalidArgument, match="invalid session_identifier '  ': expected a non"):
        store.start("  ", instrument="I")
    with pytest.raises(InvalidArgument, match="invalid instrument None"):
        store.start("s", instrument=None)  # type: ignore[arg-type]
    assert dump(db_url) == before


@pytest.mark.parametrize(
    "sid",
    [
        "x'); DROP TABLE session_log; --",
        "quote\"s and 'apostrophes'",
        "100% _like_ \\ wildcards",
        NEMO.format("1 OR 1=1"),
    ],
)
def test_identifiers_full_of_quotes_and_sql_are_plain_data(store, db_url, sid):
    store.start(sid, instrument="I'nstrument", user="O'Brien")
    store.advance(sid, "end", actor="'; DELETE FROM status_history; --")
    assert store.status(sid) is RecordStatus.TO_BE_BUILT
    assert [info.session_identifier for info in store.sessions()] == [sid]
    assert [entry.event for entry in store.history(sid)] == ["start", "end"]
    assert problems(db_url) == []


def test_sessions_streams_every_session_oldest_first_and_filters_by_status(store):
    for number in range(5):
        store.start(NEMO.format(number), instrument=f"I{number}", user="ada", at=T0)
    store.advance(NEMO.format(1), "end")
    store.advance(NEMO.format(3), "end")
    listed = store.sessions()
    assert isinstance(listed, types.GeneratorType)
    assert [info.session_identifier for info in listed] == [NEMO.format(n) for n in range(5)]
    waiting = list(store.sessions(status="TO_BE_BUILT"))
    assert [(i.session_identifier, i.status, i.instrument) for i in waiting] == [
        (NEMO.format(1), RecordStatus.TO_BE_BUILT, "I1"),
        (NEMO.format(3), RecordStatus.TO_BE_BUILT, "I3"),
    ]
    assert waiting[0].started_at is not None
    assert waiting[0].started_at.isoformat() == T0.isoformat()


def test_sessions_refuses_an_unknown_status_filter(store):
    with pytest.raises(UnknownStatus, match="unknown record status 'to_be_built'"):
        list(store.sessions(status="to_be_built"))


def test_the_event_type_constants_match_the_enum():
    assert {kind.value for kind in EventType} == {"START", "END", "RECORD_GENERATION"}
