"""The server-side guards of ``advance`` on PostgreSQL, each forced to fire by a trigger.

On PostgreSQL a move's writes and its COMMIT go out together, so every lost race
must abort the transaction on the server; these tests make each guard fire and
check the conflict reported and that nothing was written.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from _snapshot import dump
from _triggers import install_trigger

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import StoreError, TransitionConflict
from nexuslims_lifecycle.store import SessionLogStore

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def store(postgres_url: str) -> Iterator[SessionLogStore]:
    with SessionLogStore(postgres_url) as opened:
        opened.init()
        opened.start("s", instrument="I", at=T0)
        yield opened


def test_a_row_written_during_the_move_refuses_the_history_entry_and_writes_nothing(
    store, postgres_url
):
    """Another writer's row landing after the update: the history guard aborts everything."""
    install_trigger(
        store,
        "session_log",
        "AFTER UPDATE",
        "IF NEW.event_type = 'START' THEN INSERT INTO session_log (session_identifier, "
        "instrument, timestamp, event_type, record_status) VALUES (NEW.session_identifier, "
        "'I', 't', 'RECORD_GENERATION', 'WAITING_FOR_END'); END IF; RETURN NULL;",
    )
    before = dump(postgres_url)
    with pytest.raises(TransitionConflict, match="another writer changed it first") as info:
        store.advance("s", "end")
    assert info.value.current is None
    assert dump(postgres_url) == before


def test_a_row_that_did_not_move_fails_the_compare_and_set_and_reports_the_status_now(
    store, postgres_url
):
    """Fewer rows moved than were read: the update guard aborts, ``.current`` is re-read."""
    store.advance("s", "end", at=T0)
    install_trigger(
        store,
        "session_log",
        "BEFORE UPDATE",
        "IF OLD.event_type = 'END' THEN RETURN NULL; END IF; RETURN NEW;",
    )
    before = dump(postgres_url)
    with pytest.raises(
        TransitionConflict, match=r"another writer moved it first \(now TO_BE"
    ) as info:
        store.advance("s", "fail")
    assert info.value.current == RecordStatus.TO_BE_BUILT.value
    assert dump(postgres_url) == before


def test_a_taken_history_sequence_number_is_a_conflict_that_writes_nothing(store, postgres_url):
    """Another writer's entry took the next number first: a conflict, rolled back."""
    install_trigger(
        store,
        "status_history",
        "BEFORE INSERT",
        "IF NEW.event = 'end' THEN INSERT INTO status_history (session_identifier, seq, "
        "to_status, event, at) VALUES (NEW.session_identifier, NEW.seq, 'TO_BE_BUILT', "
        "'retry', 't'); END IF; RETURN NEW;",
    )
    before = dump(postgres_url)
    with pytest.raises(TransitionConflict, match="another writer changed it first") as info:
        store.advance("s", "end")
    assert info.value.current is None
    assert dump(postgres_url) == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("RAISE EXCEPTION 'disk on fire';", "disk on fire"),
        ("PERFORM 'not a number'::integer; RETURN NEW;", "not a number"),
    ],
)
def test_other_errors_while_committing_the_writes_are_store_errors_writing_nothing(
    store, postgres_url, body, message
):
    """A failure that is no guard's (even one of the same SQLSTATE) is not a conflict."""
    install_trigger(store, "status_history", "BEFORE INSERT", body)
    before = dump(postgres_url)
    with pytest.raises(StoreError, match=f"cannot use .*{message}"):
        store.advance("s", "end")
    assert dump(postgres_url) == before
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER sneaky ON status_history")
    assert store.advance("s", "end") is RecordStatus.TO_BE_BUILT


def test_the_store_keeps_working_after_a_lost_race(store):
    """The connection of an aborted move goes back to the pool usable."""
    install_trigger(
        store,
        "status_history",
        "BEFORE INSERT",
        "IF NEW.event = 'end' THEN INSERT INTO status_history (session_identifier, seq, "
        "to_status, event, at) VALUES (NEW.session_identifier, NEW.seq, 'TO_BE_BUILT', "
        "'retry', 't'); END IF; RETURN NEW;",
    )
    with pytest.raises(TransitionConflict):
        store.advance("s", "end")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER sneaky ON status_history")
        seen = conn.execute(sa.text("SELECT count(*) FROM status_history")).scalar_one()
    assert seen == 1
    assert store.advance("s", "end") is RecordStatus.TO_BE_BUILT
    assert [entry.event for entry in store.history("s")] == ["start", "end"]
