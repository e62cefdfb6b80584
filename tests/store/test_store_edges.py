"""Rare paths of the store, forced deterministically: lost races, odd rows, narrow schemas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from _snapshot import dump

from nexuslims_lifecycle.cli._demo_store import build, run_processes
from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import FileDelayNotElapsed, StoreError, TransitionConflict
from nexuslims_lifecycle.store import SessionLogStore, _moves

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
NEMO = "https://nemo.example.org/api/usage_events/?id=4711"


@pytest.fixture
def store(sqlite_url):
    with SessionLogStore(sqlite_url) as opened:
        opened.init()
        opened.start("s", instrument="I", at=T0)
        yield opened


def test_a_taken_history_sequence_number_is_a_conflict_that_writes_nothing(store, sqlite_url):
    """Another writer's entry took the next number first: a conflict, rolled back."""
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER first BEFORE INSERT ON status_history WHEN NEW.event = 'end' "
            "BEGIN INSERT INTO status_history (session_identifier, seq, to_status, event, at) "
            "VALUES (NEW.session_identifier, NEW.seq, 'TO_BE_BUILT', 'retry', 't'); END"
        )
    before = dump(sqlite_url)
    with pytest.raises(TransitionConflict, match="conflict on session 's' for 'end'"):
        store.advance("s", "end")
    assert dump(sqlite_url) == before


@pytest.mark.usefixtures("denver_local_time")
def test_an_end_timestamp_without_offset_is_local_time_for_the_file_delay(store):
    """Legacy NexusLIMS rows carry local wall-clock time: 09:30 in Denver is 16:30 UTC."""
    store.advance("s", "end", at=T0)
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE session_log SET timestamp = '2026-03-02 09:30:00' WHERE event_type = 'END'"
        )
    ready = datetime(2026, 3, 4, 16, 30, tzinfo=UTC)  # END (16:30Z) + the 2-day delay
    with pytest.raises(FileDelayNotElapsed) as refused:
        store.advance("s", "find_no_files", now=ready - timedelta(minutes=1))
    assert refused.value.ended_at == datetime(2026, 3, 2, 16, 30, tzinfo=UTC)
    assert refused.value.ended_at.utcoffset() == timedelta(hours=-7)
    assert store.advance("s", "find_no_files", now=ready) is RecordStatus.NO_FILES_FOUND


def test_an_unreadable_end_timestamp_is_a_clear_error_for_the_file_delay(store, sqlite_url):
    store.advance("s", "end", at=T0)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE session_log SET timestamp = 'end of day'")
    before = dump(sqlite_url)
    with pytest.raises(StoreError, match=r"END timestamp 'end of day', which is not an ISO-8601"):
        store.advance("s", "find_no_files", now=T0 + timedelta(days=3))
    assert dump(sqlite_url) == before


def test_a_postgresql_lock_race_lost_is_reported_as_a_conflict(store, monkeypatch):
    class Deadlock(Exception):
        sqlstate = "40P01"

    def lose(*_args: object) -> None:
        raise sa.exc.OperationalError("UPDATE ...", {}, Deadlock("deadlock detected"))

    monkeypatch.setattr(_moves, "advance", lose)
    with pytest.raises(TransitionConflict, match="another writer changed it first"):
        store.advance("s", "end")


def test_a_narrow_existing_session_identifier_column_is_a_clear_error(postgres_url):
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE session_log (id_session_log SERIAL PRIMARY KEY, "
            "session_identifier VARCHAR(36) NOT NULL, instrument VARCHAR(100) NOT NULL, "
            "timestamp TEXT NOT NULL, event_type TEXT NOT NULL, "
            "record_status TEXT NOT NULL DEFAULT 'WAITING_FOR_END', \"user\" VARCHAR(50))"
        )
    engine.dispose()
    with SessionLogStore(postgres_url) as store:
        store.init()
        before = dump(postgres_url)
        with pytest.raises(StoreError, match=r"does not fit a column .*VARCHAR\(36\)"):
            store.start(NEMO, instrument="I")
        store.start("a1b2c3", instrument="I")
    assert dump(postgres_url)["status_history"] != before["status_history"]


def test_a_crashing_worker_process_is_reported_not_waited_for(tmp_path):
    job = {"url": str(tmp_path / "missing" / "x.db"), "worker": "w", "lease": 1.0, "outcomes": {}}
    with pytest.raises(RuntimeError, match=r"a worker (reported nothing|failed); exit codes \[1\]"):
        run_processes(build, [job], method="forkserver")


def test_a_write_lock_never_granted_is_a_store_error_not_a_traceback(
    store, sqlite_url, monkeypatch
):
    from nexuslims_lifecycle.store import _engine

    monkeypatch.setattr(_engine, "BUSY_TIMEOUT", 0.05)  # an impatient store's busy timeout
    holder = store.engine.raw_connection()
    holder.driver_connection.execute("BEGIN IMMEDIATE")
    try:
        with (
            SessionLogStore(sqlite_url) as impatient,
            pytest.raises(StoreError, match="stayed locked by another writer for too long"),
        ):
            impatient.advance("s", "end")
    finally:
        holder.driver_connection.execute("ROLLBACK")
        holder.close()
    assert store.status("s").value == "WAITING_FOR_END"
