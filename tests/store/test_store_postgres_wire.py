"""The error paths of ``advance`` on PostgreSQL's pipeline (:mod:`._postgres`).

A move holds the session's lock between its two round trips, while Python decides;
these tests pin that every refusal, broken connection, interrupt and failed prepare
leaves no transaction open, no lock held, nothing written, and no connection in
an unknown state in the pool, and that the store's next move works.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from _snapshot import dump
from _triggers import install_trigger
from psycopg import pq

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import (
    FileDelayNotElapsed,
    IllegalTransition,
    SessionExists,
    StoreError,
    TransitionConflict,
    UnknownSession,
)
from nexuslims_lifecycle.store import SessionLogStore, _postgres

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
NOT_INITIALISED = r"is not initialised \(.*\): run `init` on it first"


@pytest.fixture
def store(postgres_url: str) -> Iterator[SessionLogStore]:
    with SessionLogStore(postgres_url) as opened:
        opened.init()
        opened.start("s", instrument="I", at=T0)
        yield opened


@pytest.fixture
def other(postgres_url: str) -> Iterator[SessionLogStore]:
    """A second store on the same database whose lock waits fail after 5 s, not hang."""
    with SessionLogStore(f"{postgres_url}?options=-c%20lock_timeout%3D5s") as opened:
        with opened.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW lock_timeout").scalar_one() == "5s"
        yield opened


def _query(url: str, sql: str, **params: object) -> list[tuple[Any, ...]]:
    """Run ``sql`` on a connection of its own (outside the store's pool); return its rows."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def _idle_in_transaction(url: str) -> list[tuple[Any, ...]]:
    """Return the backends of this database left inside a transaction between statements."""
    return _query(
        url,
        "SELECT pid, state, query FROM pg_stat_activity "
        "WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
    )


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any] | None]:
    """Record the libpq state each move leaves its connection in (None: invalidated).

    That is what the move itself did, seen before the pool's reset-on-return could
    roll anything back.
    """
    states: list[tuple[Any, Any] | None] = []
    real = _postgres.advance

    def spying(pooled: Any, move: Any) -> RecordStatus:
        try:
            return real(pooled, move)
        finally:
            raw = pooled.dbapi_connection
            pg = None if raw is None else raw.pgconn
            states.append(None if pg is None else (pg.transaction_status, pg.pipeline_status))

    monkeypatch.setattr(_postgres, "advance", spying)
    return states


def _invalidations(store: SessionLogStore) -> list[BaseException | None]:
    """Record every invalidation of the store's pooled connections (the error, if any)."""
    seen: list[BaseException | None] = []

    def record(_dbapi: object, _record: object, error: BaseException | None) -> None:
        seen.append(error)

    sa.event.listen(store.engine, "invalidate", record)
    return seen


def _connections_made(store: SessionLogStore) -> list[Any]:
    """Record every driver connection the store's engine opens from now on."""
    made: list[Any] = []
    sa.event.listen(store.engine, "connect", lambda dbapi, _record: made.append(dbapi))
    return made


def _backend_pid(store: SessionLogStore) -> tuple[int, Any]:
    """Return the backend pid and psycopg connection the store's next move will use.

    That is the connection the store keeps for moves, once a move has made it.
    """
    own = store._own
    assert own is not None
    assert own.is_valid
    raw = own.dbapi_connection
    return int(raw.info.backend_pid), raw


IDLE = (pq.TransactionStatus.IDLE, pq.PipelineStatus.OFF)


@dataclass(frozen=True)
class Refusal:
    """A move refused in Python between the round trips, and two moves that follow it."""

    setup: Callable[[SessionLogStore], object]
    refuse: Callable[[SessionLogStore], object]
    error: type[Exception]
    message: str
    then_other: tuple[str, str | None, RecordStatus]
    then_same: tuple[str, RecordStatus]


def _ended(store: SessionLogStore) -> object:
    return store.advance("s", "end", at=T0)


def _claimed(store: SessionLogStore) -> object:
    store.advance("s", "end", at=T0)
    return store.claim_next("w1", lease=600)


REFUSALS = {
    "illegal": Refusal(
        lambda _store: None,
        lambda store: store.advance("s", "complete"),
        IllegalTransition,
        r"^cannot 'complete' from WAITING_FOR_END: legal from there: end$",
        ("end", None, RecordStatus.TO_BE_BUILT),
        ("fail", RecordStatus.ERROR),
    ),
    "unknown session": Refusal(
        lambda _store: None,
        lambda store: store.advance("nope", "end"),
        UnknownSession,
        r"^unknown session 'nope': no session_log row has this session_identifier",
        ("end", None, RecordStatus.TO_BE_BUILT),
        ("fail", RecordStatus.ERROR),
    ),
    "expected": Refusal(
        lambda _store: None,
        lambda store: store.advance("s", "end", expected="TO_BE_BUILT"),
        TransitionConflict,
        r"^conflict on session 's' for 'end': expected TO_BE_BUILT, but another writer "
        r"moved it to WAITING_FOR_END; nothing was written",
        ("end", None, RecordStatus.TO_BE_BUILT),
        ("fail", RecordStatus.ERROR),
    ),
    "claimed": Refusal(
        _claimed,
        lambda store: store.advance("s", "complete", actor="w2"),
        TransitionConflict,
        r"^conflict on session 's' for 'complete': its build is claimed by worker 'w1'; "
        r"nothing was written",
        ("fail", "w1", RecordStatus.ERROR),
        ("retry", RecordStatus.TO_BE_BUILT),
    ),
    "file delay": Refusal(
        _ended,
        lambda store: store.advance("s", "find_no_files", now=T0 + timedelta(hours=1)),
        FileDelayNotElapsed,
        r"^cannot 'find_no_files' for session 's' yet: it ended at 2026-03-02T09:30:00\+00:00 "
        r"and files may still arrive until 2026-03-04T09:30:00\+00:00",
        ("fail", None, RecordStatus.ERROR),
        ("retry", RecordStatus.TO_BE_BUILT),
    ),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_refusal_between_the_round_trips_rolls_back_and_releases_the_session(
    store, other, postgres_url, monkeypatch, case
):
    """Refused after the lock was taken: nothing written, no lock, no open transaction."""
    case.setup(store)
    states = _spy(monkeypatch)
    before = dump(postgres_url)
    with pytest.raises(case.error, match=case.message):
        case.refuse(store)
    assert states == [IDLE]  # the move rolled back itself, before the pool's reset
    assert dump(postgres_url) == before
    assert _idle_in_transaction(postgres_url) == []
    event, actor, dest = case.then_other
    assert other.advance("s", event, actor=actor) is dest  # the lock is free at once
    event, dest = case.then_same
    assert store.advance("s", event) is dest
    assert states == [IDLE, IDLE, IDLE]  # the refusal, the other store's move, this one


def test_a_connection_killed_under_the_store_is_a_store_error_then_replaced(
    store, postgres_url, monkeypatch
):
    """A dead pooled connection: a StoreError naming it, nothing written, then a fresh one."""
    store.advance("s", "end", at=T0)  # the pooled connection has prepared the statements
    pid, killed = _backend_pid(store)
    assert _query(postgres_url, "SELECT pg_terminate_backend(:pid)", pid=pid) == [(True,)]
    invalidated = _invalidations(store)
    before = dump(postgres_url)
    with pytest.raises(
        StoreError,
        match=r"^cannot use postgresql\+psycopg://postgres@127\.0\.0\.1:\d+/test_\d+: "
        r".*(server closed the connection|terminating connection)",
    ):
        store.advance("s", "fail")
    assert dump(postgres_url) == before
    assert killed.closed
    assert invalidated == [None]  # dropped by the move, not found broken by the pool
    assert store.advance("s", "fail") is RecordStatus.ERROR
    assert _backend_pid(store)[0] != pid
    assert [entry.event for entry in store.history("s")] == ["start", "end", "fail"]


def _interrupt_once(monkeypatch: pytest.MonkeyPatch, name: str = "_wait") -> list[int]:
    """Make ``_Pipeline.<name>`` raise KeyboardInterrupt on its first call; count calls."""
    calls: list[int] = []
    real = getattr(_postgres._Pipeline, name)

    def interrupted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(_postgres._Pipeline, name, interrupted)
    return calls


def test_an_interrupted_wait_propagates_and_drops_the_connection(store, postgres_url, monkeypatch):
    """Ctrl-C while waiting for the lock: KeyboardInterrupt, nothing written, connection closed."""
    store.advance("s", "end", at=T0)  # the statements are prepared: the wait is the move's
    pid, interrupted = _backend_pid(store)
    invalidated = _invalidations(store)
    calls = _interrupt_once(monkeypatch)
    before = dump(postgres_url)
    with pytest.raises(KeyboardInterrupt):
        store.advance("s", "fail")
    assert calls == [1]
    assert dump(postgres_url) == before
    assert interrupted.closed
    assert invalidated == [None]
    assert store.engine.pool.checkedout() == 0
    assert store.advance("s", "fail") is RecordStatus.ERROR
    assert _backend_pid(store)[0] != pid
    assert _idle_in_transaction(postgres_url) == []


def test_an_interrupt_while_preparing_drops_the_half_prepared_connection(
    store, postgres_url, monkeypatch
):
    """Ctrl-C during a connection's first move (its prepare): dropped by the move itself."""
    store.close()  # the next move is a new connection's first: it prepares
    made = _connections_made(store)
    invalidated = _invalidations(store)
    calls = _interrupt_once(monkeypatch)
    before = dump(postgres_url)
    with pytest.raises(KeyboardInterrupt):
        store.advance("s", "end")
    assert calls == [1]
    assert dump(postgres_url) == before
    assert len(made) == 1
    assert made[0].closed
    assert invalidated == [None]  # not left in pipeline mode for the pool's reset to fail on
    assert store.advance("s", "end") is RecordStatus.TO_BE_BUILT
    assert len(made) == 2
    assert _backend_pid(store)[1] is made[1]


def test_an_interrupt_while_ending_a_refusals_transaction_drops_the_connection(
    store, postgres_url, monkeypatch
):
    """Ctrl-C while ending the transaction of a refused move: dropped, not pooled.

    The refusal is decided between the round trips, while the transaction holds the
    lock; the sync point that ends it is the move's first ``sync``.
    """
    store.advance("s", "end", at=T0)
    pid, interrupted = _backend_pid(store)
    invalidated = _invalidations(store)
    calls = _interrupt_once(monkeypatch, "sync")
    before = dump(postgres_url)
    with pytest.raises(KeyboardInterrupt):
        store.advance("s", "end")  # illegal from TO_BE_BUILT: refused, then ended
    assert calls == [1]
    assert dump(postgres_url) == before
    assert interrupted.closed
    assert invalidated == [None]
    assert store.advance("s", "fail") is RecordStatus.ERROR
    assert _backend_pid(store)[0] != pid
    assert _idle_in_transaction(postgres_url) == []


def test_advancing_on_an_uninitialised_database_says_to_run_init_then_works(postgres_url):
    """The prepare fails on missing tables: a StoreError; after init the same store works."""
    with SessionLogStore(postgres_url) as store:
        invalidated = _invalidations(store)
        with pytest.raises(StoreError, match=NOT_INITIALISED):
            store.advance("s", "end")
        assert dump(postgres_url) == {}
        assert invalidated == [None]
        store.init()
        store.start("s", instrument="I", at=T0)
        assert store.advance("s", "end") is RecordStatus.TO_BE_BUILT


def test_a_half_prepared_connection_is_dropped_not_prepared_again(store, postgres_url):
    """A session_log without build_claim: LOCK prepares, READ fails; after init it works.

    Re-preparing on the same connection would fail with "prepared statement ...
    already exists", so the store working after ``init`` shows it was dropped.
    """
    store.engine.dispose()  # the next move is a new connection's first: it prepares
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE build_claim")
    invalidated = _invalidations(store)
    before = dump(postgres_url)
    with pytest.raises(StoreError, match=NOT_INITIALISED + "$") as info:
        store.advance("s", "end")
    assert "build_claim" in str(info.value)
    assert dump(postgres_url) == before
    assert invalidated == [None]
    store.init()
    assert store.advance("s", "end") is RecordStatus.TO_BE_BUILT


def test_each_guard_label_is_in_its_own_statement_only():
    """A label edited in one place only would turn its lost race into a StoreError."""
    assert _postgres.ROWS_LOST in _postgres.WRITE
    assert _postgres.ENTRY_REFUSED in _postgres.AGREE
    statements = (_postgres.LOCK, _postgres.READ, _postgres.WRITE, _postgres.AGREE)
    assert [_postgres.ROWS_LOST in sql for sql in statements] == [False, False, True, False]
    assert [_postgres.ENTRY_REFUSED in sql for sql in statements] == [False, False, False, True]


@pytest.mark.parametrize("label", [_postgres.ROWS_LOST, _postgres.ENTRY_REFUSED])
def test_a_guard_label_in_another_error_is_a_store_error_not_a_conflict(store, postgres_url, label):
    """A trigger raising (SQLSTATE P0001) with a guard's label in its text: not a lost race."""
    install_trigger(store, "status_history", "BEFORE INSERT", f"RAISE EXCEPTION '{label}';")
    before = dump(postgres_url)
    with pytest.raises(StoreError, match=f"^cannot use .*: {label}$"):
        store.advance("s", "end")
    assert dump(postgres_url) == before
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER sneaky ON status_history")
    assert store.advance("s", "end") is RecordStatus.TO_BE_BUILT


def test_the_move_prepares_again_after_psycopg_deallocates_all_on_a_rollback(store):
    """psycopg's DEALLOCATE ALL after a rollback drops the move's statements: it re-prepares.

    psycopg prepares a query it ran five times itself, and after a ROLLBACK sends
    DEALLOCATE ALL, which also drops the statements ``advance`` prepared there.
    """
    store.close()
    with store._own_lock:  # moves go to the pool, as another thread's would
        store.advance("s", "end", at=T0)  # prepares the move's statements on it
        for n in range(6):  # start's queries, run often enough for psycopg to prepare them
            store.start(f"x{n}", instrument="I", at=T0)
        with pytest.raises(SessionExists, match=r"^session 's' already exists \(now TO_BE_BUILT\)"):
            store.start("s", instrument="I")  # refused: its transaction is rolled back
        assert store.engine.pool.checkedin() == 1  # all of it on one connection
        assert store.advance("s", "fail") is RecordStatus.ERROR


def test_a_deallocate_all_on_the_pooled_connection_is_followed_by_a_fresh_prepare(store):
    """DEALLOCATE ALL sent by anyone on the store's connection: the move prepares again."""
    store.advance("s", "end", at=T0)
    pid, raw = _backend_pid(store)
    raw.execute("DEALLOCATE ALL")
    raw.commit()
    assert store.advance("s", "fail") is RecordStatus.ERROR
    assert _backend_pid(store)[0] == pid  # on the same connection, not a new one


def test_one_statement_deallocated_is_a_store_error_then_a_fresh_connection(store, postgres_url):
    """Only LOCK dropped: preparing all four again fails, so the connection is replaced."""
    store.advance("s", "end", at=T0)
    pid, dropped = _backend_pid(store)
    dropped.execute("DEALLOCATE nexuslims_lifecycle_lock")
    dropped.commit()
    before = dump(postgres_url)
    with pytest.raises(
        StoreError,
        match=r"^cannot use .*: prepared statement \"nexuslims_lifecycle_read\" already exists$",
    ):
        store.advance("s", "fail")
    assert dump(postgres_url) == before
    assert dropped.closed
    assert store.advance("s", "fail") is RecordStatus.ERROR
    assert _backend_pid(store)[0] != pid


def test_moves_use_the_one_connection_the_store_keeps(store):
    """Moves and status reads after the first reuse one checked-out connection."""
    store.advance("s", "end", at=T0)
    pid, raw = _backend_pid(store)
    checkouts: list[object] = []
    sa.event.listen(store.engine, "checkout", lambda *_args: checkouts.append(1))
    assert store.status("s") is RecordStatus.TO_BE_BUILT
    assert store.advance("s", "fail") is RecordStatus.ERROR
    assert checkouts == []
    assert _backend_pid(store) == (pid, raw)
    assert store.engine.pool.checkedout() == 1
    store.close()
    assert store.engine.pool.checkedout() == 0
    assert raw.closed


def test_a_move_finding_the_kept_connection_busy_uses_the_pool(store):
    """Another thread's move in progress: this one checks a connection out and returns it."""
    store.advance("s", "end", at=T0)
    pid, _raw = _backend_pid(store)
    checkouts: list[object] = []
    sa.event.listen(store.engine, "checkout", lambda *_args: checkouts.append(1))
    with store._own_lock:  # as while another thread's move runs on it
        assert store.advance("s", "fail") is RecordStatus.ERROR
        assert store.status("s") is RecordStatus.ERROR
    assert len(checkouts) == 2
    assert store.engine.pool.checkedout() == 1  # only the kept one
    assert _backend_pid(store)[0] == pid
    assert store.advance("s", "retry") is RecordStatus.TO_BE_BUILT


def _advance_in_child(store: SessionLogStore, sid: str, pids: Any) -> None:
    """In a forked child: start and end ``sid`` through the inherited store; report its pid."""
    import os

    code = 1
    try:
        store.start(sid, instrument="I", at=T0)
        if store.advance(sid, "end") is RecordStatus.TO_BE_BUILT:
            pids.send(_backend_pid(store)[0])  # (a pipe: sent before os._exit)
            code = 0
    finally:
        os._exit(code)


def test_a_forked_child_leaves_the_parents_kept_connection_alone(store):
    """A child inheriting the store moves on a connection of its own, not the parent's."""
    import multiprocessing

    store.advance("s", "end", at=T0)
    pid, raw = _backend_pid(store)
    context = multiprocessing.get_context("fork")
    pids, child_end = context.Pipe(duplex=False)
    child = context.Process(target=_advance_in_child, args=(store, "child", child_end))
    child.start()
    assert pids.poll(60)
    child_pid = pids.recv()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert child_pid != pid
    assert store.status("child") is RecordStatus.TO_BE_BUILT
    assert store.advance("s", "fail") is RecordStatus.ERROR
    assert _backend_pid(store) == (pid, raw)
    assert not raw.closed


def _prepared_at(raw: Any) -> dict[str, Any]:
    """Return when each of the move's statements was prepared on ``raw``."""
    rows = raw.execute(
        "SELECT name, prepare_time FROM pg_prepared_statements "
        "WHERE name LIKE 'nexuslims_lifecycle_%'"
    ).fetchall()
    raw.commit()
    return dict(rows)


def test_the_statements_are_prepared_afresh_every_so_many_uses(store, monkeypatch):
    """A generic plan settled on while the table was small does not last for ever."""
    monkeypatch.setattr(_postgres, "_REPLAN_EVERY", 3)
    store.advance("s", "end", at=T0)  # use 1 (prepares)
    pid, raw = _backend_pid(store)
    first = _prepared_at(raw)
    assert sorted(first) == sorted(name.decode() for name in _postgres._STATEMENTS)
    assert store.status("s") is RecordStatus.TO_BE_BUILT  # use 2
    assert store.advance("s", "fail") is RecordStatus.ERROR  # use 3
    assert _prepared_at(raw) == first
    assert store.advance("s", "retry") is RecordStatus.TO_BE_BUILT  # use 4: prepared afresh
    again = _prepared_at(raw)
    assert sorted(again) == sorted(first)
    assert all(again[name] > first[name] for name in first)
    assert _backend_pid(store) == (pid, raw)  # on the same connection
    assert [entry.event for entry in store.history("s")] == ["start", "end", "fail", "retry"]


def test_a_commit_that_fails_at_the_sync_point_is_a_store_error_writing_nothing(
    store, postgres_url
):
    """A deferred constraint refusing at commit: its error comes ahead of the sync point."""
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE FUNCTION at_commit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$"
        )
        conn.exec_driver_sql(
            "CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON status_history "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION at_commit()"
        )
    before = dump(postgres_url)
    with pytest.raises(StoreError, match=r"^cannot use .*: refused at commit$"):
        store.advance("s", "end")
    assert dump(postgres_url) == before
    assert _idle_in_transaction(postgres_url) == []
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER at_commit ON status_history")
    assert store.advance("s", "end") is RecordStatus.TO_BE_BUILT


def test_a_kept_connection_left_inside_a_transaction_is_rolled_back_first(store):
    """Whatever left the connection mid-transaction, the move starts from a clean one."""
    store.advance("s", "end", at=T0)
    _pid, raw = _backend_pid(store)
    raw.execute("SELECT 1")  # psycopg opens a transaction and leaves it open
    assert raw.pgconn.transaction_status == pq.TransactionStatus.INTRANS
    assert store.advance("s", "fail") is RecordStatus.ERROR
    assert raw.pgconn.transaction_status == pq.TransactionStatus.IDLE


@pytest.mark.parametrize(
    ("rows", "agreed"),
    [
        ([("ERROR",), ("ERROR",)], RecordStatus.ERROR),
        ([("ERROR",), ("COMPLETED",)], None),  # rows that disagree: no status now
        ([("NOT_A_STATUS",)], None),
    ],
)
def test_the_status_reread_after_a_lost_race_is_none_unless_the_rows_agree(rows, agreed):
    assert _postgres._agreed("s", rows) is agreed
