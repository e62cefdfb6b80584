"""``advance`` on PostgreSQL: one read, then one checked statement in autocommit.

No lock is held while Python decides; a session that changed in between is a
conflict, never a half-done move; a stalled writer holding a session's rows, or a
statement that hangs, ends in a clear error after the store's timeouts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from _snapshot import dump
from _triggers import install_trigger

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import StoreError, TransitionConflict
from nexuslims_lifecycle.store import SessionLogStore, _engine, _moves

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def store(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[SessionLogStore]:
    monkeypatch.setattr(_engine, "LOCK_TIMEOUT", 0.3)
    monkeypatch.setattr(_engine, "STATEMENT_TIMEOUT", 0.5)
    with SessionLogStore(postgres_url) as opened:
        opened.init()
        opened.start("s", instrument="I", at=T0)
        opened.advance("s", "end", at=T0)
        yield opened


def _meanwhile(monkeypatch: pytest.MonkeyPatch, url: str, statement: str) -> list[BaseException]:
    """Make another writer run ``statement`` between the store's read and its write."""
    decide = _moves.decide
    errors: list[BaseException] = []

    def interleaved(*args: Any, **kwargs: Any) -> Any:
        engine = sa.create_engine(url, connect_args={"options": "-c lock_timeout=2000"})
        try:
            with engine.begin() as conn:  # it would wait (and fail) if the store held a lock
                conn.execute(sa.text(statement))
        except sa.exc.DBAPIError as error:
            errors.append(error)
        finally:
            engine.dispose()
        return decide(*args, **kwargs)

    monkeypatch.setattr(_moves, "decide", interleaved)
    return errors


def test_no_lock_is_held_while_deciding_and_a_status_changed_meanwhile_is_a_conflict(
    store: SessionLogStore, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    errors = _meanwhile(
        monkeypatch,
        postgres_url,
        "UPDATE session_log SET record_status = 'ERROR' WHERE session_identifier = 's'",
    )
    with pytest.raises(TransitionConflict, match="another writer moved it first") as info:
        store.advance("s", "complete", actor="b")
    assert errors == []  # the other writer did not wait for a lock of ours
    assert info.value.current == "ERROR"
    monkeypatch.undo()
    assert store.status("s") is RecordStatus.ERROR
    assert [e.event for e in store.history("s")] == ["start", "end", "fail"]


def test_a_row_added_meanwhile_makes_the_guard_refuse_the_move_whole(
    store: SessionLogStore, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NexusLIMS's builder starts a build between our read and write: a conflict."""
    _meanwhile(
        monkeypatch,
        postgres_url,
        "INSERT INTO session_log (session_identifier, instrument, timestamp, event_type, "
        "record_status) VALUES ('s', 'I', 't', 'RECORD_GENERATION', 'WAITING_FOR_END')",
    )
    with pytest.raises(TransitionConflict, match="another writer changed it first"):
        store.advance("s", "fail", actor="b")
    monkeypatch.undo()
    assert [e.event for e in store.history("s")] == ["start", "end"]
    assert store.sessions().__next__().being_built is True


def test_a_stalled_writer_holding_the_rows_ends_in_a_lock_timeout(
    store: SessionLogStore, postgres_url: str
) -> None:
    before = dump(postgres_url)
    stalled = sa.create_engine(postgres_url)
    with stalled.connect() as conn:
        conn.execute(sa.text("BEGIN"))
        conn.execute(sa.text("SELECT * FROM session_log WHERE session_identifier = 's' FOR UPDATE"))
        with pytest.raises(StoreError, match=r"held a lock .* for more than 0.3 s"):
            store.advance("s", "complete", actor="b")
        conn.execute(sa.text("ROLLBACK"))
    stalled.dispose()
    assert dump(postgres_url) == before


def test_a_hanging_statement_ends_in_a_statement_timeout_and_writes_nothing(
    store: SessionLogStore, postgres_url: str
) -> None:
    install_trigger(store, "session_log", "BEFORE UPDATE", "PERFORM pg_sleep(5); RETURN NEW;")
    before = dump(postgres_url)
    with pytest.raises(StoreError, match=r"ran for more than 0.5 s"):
        store.advance("s", "complete", actor="b")
    assert dump(postgres_url) == before


def test_a_thread_shared_store_moves_many_sessions_at_once(store: SessionLogStore) -> None:
    """One store, eight threads, each its own sessions: every move lands, each recorded once."""
    sids = [f"t{n}" for n in range(40)]
    for sid in sids:
        store.record_usage(sid, T0, T0, instrument="I")
    failures: list[BaseException] = []

    def work(mine: list[str]) -> None:
        try:
            for sid in mine:
                store.advance(sid, "fail")
                store.advance(sid, "retry")
                store.advance(sid, "complete")
        except BaseException as error:  # noqa: BLE001 - collected for the assertion
            failures.append(error)

    threads = [threading.Thread(target=work, args=(sids[n::8],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    for sid in sids:
        assert [e.event for e in store.history(sid)] == [
            "start",
            "end",
            "fail",
            "retry",
            "complete",
        ]
