"""``advance`` and ``status`` on PostgreSQL: prepared statements on libpq's pipeline.

A move runs on the pooled psycopg connection's libpq handle (:mod:`psycopg.pq`), not
through SQLAlchemy or psycopg's cursors, whose Python cost several times what the
server spends on the move. Each connection prepares the four statements below (and
prepares them afresh every :data:`_REPLAN_EVERY` uses); a move then takes two round
trips, its statements running in the implicit transaction that the extended query
protocol opens at the first statement and ends at the next sync point:

1. :data:`LOCK` and :data:`READ`, sent with a flush request instead of a sync point,
   so the transaction stays open, holding the lock, while Python checks the move
   (:func:`._moves.decide`). :data:`LOCK` takes the row lock of the session's first
   row (its START row), the lock every writer of the session takes first, so writers
   of one session queue there instead of deadlocking. :data:`READ` then reads all of
   the session's rows and its build claim; it runs after the lock is granted, in a
   snapshot of its own, so it sees whatever the previous holder committed. A refused
   move ends the transaction (it only read and locked) with a bare sync point.
2. :data:`WRITE` and :data:`AGREE`, sent with the sync point, at which the server
   commits. So the writes must check themselves on the server: :data:`WRITE` moves
   every row with a compare-and-set, adds the END or RECORD_GENERATION row, appends
   the history entry (numbered in the same statement) and ends the build claim, and
   fails unless it moved exactly the rows read; :data:`AGREE` then fails unless every
   row of the session, as committed by anyone by now, holds the new status. A
   failure aborts the transaction, which the server then rolls back at the sync
   point; each guard fails with its own label, from which the lost race is told
   apart. A taken sequence number fails on its unique constraint. Nothing is
   half-written in any case.

Errors come back as SQLAlchemy's exceptions wrapping psycopg's, like every other
statement of the store. A connection whose state is unknown after an error (the
network failed, or a wait was interrupted) is closed, not returned to the pool.
"""

from __future__ import annotations

import select
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Final, TypeVar

import psycopg
import sqlalchemy as sa
from psycopg import pq
from psycopg.pq.abc import PGresult
from sqlalchemy.pool import PoolProxiedConnection

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import LifecycleError
from nexuslims_lifecycle.store import _moves

_T = TypeVar("_T")

__all__ = ["AGREE", "ENTRY_REFUSED", "LOCK", "READ", "ROWS_LOST", "WRITE", "advance", "read"]

ROWS_LOST: Final = "nexuslims-lifecycle rows lost"
"""The label of a :data:`WRITE` that moved other rows than were read."""

ENTRY_REFUSED: Final = "nexuslims-lifecycle entry refused"
"""The label of an :data:`AGREE` that found a row without the new status."""

_BAD_TEXT: Final = "22P02"  # invalid_text_representation: a failed guard
_UNIQUE: Final = "23505"  # unique_violation: the entry's sequence number was taken
_GONE: Final = "26000"  # invalid_sql_statement_name: our prepared statements were dropped

LOCK: Final = (
    "SELECT 1 FROM session_log WHERE session_identifier = $1::text "
    "ORDER BY id_session_log LIMIT 1 FOR UPDATE"
)
"""Lock the session's first row. Parameters: the session."""

READ: Final = (
    'SELECT l.record_status, l.instrument, l."user", l.event_type, l.timestamp, '
    "c.worker, c.expires_at FROM session_log l LEFT JOIN build_claim c "
    "ON c.session_identifier = l.session_identifier "
    "WHERE l.session_identifier = $1::text ORDER BY l.id_session_log"
)
"""The session's rows, oldest first, each with the build claim (if any). Parameters:
the session."""

WRITE: Final = (
    "WITH moved AS (UPDATE session_log SET record_status = $3::text "
    "WHERE session_identifier = $1::text AND (record_status = $2::text OR ($12::boolean "
    "AND event_type = 'RECORD_GENERATION' AND record_status = 'WAITING_FOR_END')) "
    "RETURNING 1), "
    "added AS (INSERT INTO session_log "
    '(session_identifier, instrument, timestamp, event_type, record_status, "user") '
    "SELECT $1::text, $5::text, $6::text, $7::text, $3::text, $8::text "
    "WHERE $7::text IS NOT NULL), "
    "entry AS (INSERT INTO status_history "
    "(session_identifier, seq, from_status, to_status, event, actor, at) "
    "SELECT $1::text, coalesce(max(seq), 0) + 1, $2::text, $3::text, $9::text, $10::text, "
    "$6::text FROM status_history WHERE session_identifier = $1::text), "
    "released AS (DELETE FROM build_claim WHERE session_identifier = $1::text "
    "AND $11::boolean) "
    "SELECT CAST(CASE WHEN (SELECT count(*) FROM moved) = $4::integer THEN '0' "
    "ELSE 'nexuslims-lifecycle rows lost' END AS integer)"
)
"""The writes of a move, failing with :data:`ROWS_LOST` unless exactly the rows read
moved. Parameters: the session, from, to, the number of rows read, instrument, time,
the event type of the row to add (NULL: none), user, event, actor, whether the
build claim ends, whether the session is being built (its build rows in progress move
too)."""

AGREE: Final = (
    "SELECT CAST(CASE WHEN EXISTS (SELECT FROM session_log WHERE session_identifier = "
    "$1::text AND record_status <> $2::text) THEN 'nexuslims-lifecycle entry refused' "
    "ELSE '0' END AS integer)"
)
"""Fail with :data:`ENTRY_REFUSED` if a row of the session lacks the new status.
Parameters: the session, the new status."""

_STATEMENTS: Final = {
    b"nexuslims_lifecycle_lock": LOCK,
    b"nexuslims_lifecycle_read": READ,
    b"nexuslims_lifecycle_write": WRITE,
    b"nexuslims_lifecycle_agree": AGREE,
}
_NAME_LOCK, _NAME_READ, _NAME_WRITE, _NAME_AGREE = _STATEMENTS
_PREPARED: Final = "nexuslims_lifecycle_prepared"  # key in the pool's per-connection info

_REPLAN_EVERY: Final = 250
"""Uses of a connection's prepared statements after which they are prepared afresh.

PostgreSQL plans a prepared statement for its parameters five times, then settles on
a generic plan, kept until the table's statistics change (autovacuum's ANALYZE). One
settled on while ``session_log`` was a few pages scans it whole, and keeps doing so
as it grows until then; preparing afresh bounds that to this many moves, at the cost
of a few dozen plans per thousand moves."""

_OK: Final = frozenset({pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK})
_FINE: Final = _OK | {pq.ExecStatus.PIPELINE_ABORTED}  # (an aborted one did not fail itself)
_SYNC: Final = pq.ExecStatus.PIPELINE_SYNC
_OUT_OF_STEP: Final = "the connection broke, or fell out of step with the pipeline"


def advance(pooled: PoolProxiedConnection, move: _moves.Move) -> RecordStatus:
    """Make one checked, compare-and-set move and commit it; return the new status.

    Parameters
    ----------
    pooled
        A psycopg connection checked out of the store's pool, outside any transaction.
        The move commits on it; it is invalidated if it is left in an unknown state.
    move
        The requested move.

    Returns
    -------
    RecordStatus
        The new status.

    Raises
    ------
    TransitionConflict
        Another writer moved the session first (``.current`` is its status now, when
        known), it is not in ``move.expected``, or another worker holds its claim.
    IllegalTransition, FileDelayNotElapsed, MissingEndTime, UnknownSession, StoreError
        As :func:`._moves.advance`; nothing is written.
    sqlalchemy.exc.DBAPIError
        Any other database error; nothing is written. Or libpq's own failure, such as
        a lost connection: nothing is written unless it failed after the writes were
        sent (the second round trip), when whether the move committed is unknown.
    """
    return _again_if_deallocated(pooled, lambda: _advance(pooled, move))


def _advance(pooled: PoolProxiedConnection, move: _moves.Move) -> RecordStatus:
    """Do :func:`advance`; libpq's own failures leave as psycopg's exceptions."""
    sid = move.session_identifier
    with _Pipeline(pooled) as wire:
        key = [wire.encode(sid)]
        wire.send(_NAME_LOCK, key)
        wire.send(_NAME_READ, key)
        rows = wire.rows(wire.results()[1])  # round trip 1: the transaction stays open
        info = _moves.rows_of(sid, [row[:5] for row in rows])
        worker, expires_at = rows[0][5:]
        dest, holder = _moves.decide(move, info, None if worker is None else (worker, expires_at))
        kind = _moves.event_row(move, info, claimed=holder is not None)
        writes = [
            *key,
            *wire.encode_all(info.status.value, dest.value, str(info.count), info.instrument),
            *wire.encode_all(move.at.isoformat(), None if kind is None else kind.value, info.user),
            *wire.encode_all(move.event, move.actor),
            b"t" if _moves.releases_claim(info, dest) else b"f",
            b"t" if info.being_built else b"f",
        ]
        agree = [*key, wire.encode(dest.value)]
        wire.send(_NAME_WRITE, writes)
        wire.send(_NAME_AGREE, agree)
        try:
            wire.sync()  # round trip 2: commits, unless a statement failed
        except sa.exc.DBAPIError as error:
            lost = _lost(error)
            if lost is None:
                raise
            now = None
            if lost == ROWS_LOST:
                wire.send(_NAME_READ, key)
                now = _agreed(sid, wire.rows(wire.sync()[0]))
            raise _moves.conflict(move, now) from None
    return dest


def read(pooled: PoolProxiedConnection, session_identifier: str) -> _moves.SessionRows:
    """Read a session's rows in one round trip (one statement, in a transaction of its own).

    Raises
    ------
    UnknownSession, StoreError
        As :func:`._moves.rows_of`.
    sqlalchemy.exc.DBAPIError
        Any database error.
    """
    return _again_if_deallocated(pooled, lambda: _read(pooled, session_identifier))


def _read(pooled: PoolProxiedConnection, session_identifier: str) -> _moves.SessionRows:
    """Do :func:`read`; libpq's own failures leave as psycopg's exceptions."""
    with _Pipeline(pooled) as wire:
        wire.send(_NAME_READ, [wire.encode(session_identifier)])
        rows = wire.rows(wire.sync()[0])
    return _moves.rows_of(session_identifier, [row[:5] for row in rows])


def _again_if_deallocated(pooled: PoolProxiedConnection, run: Callable[[], _T]) -> _T:
    """Return ``run()``, once more if the statements had been dropped; wrap libpq's failures.

    A ``DEALLOCATE ALL`` on the connection (psycopg sends one after a ROLLBACK once it
    has prepared queries of its own, and a pooler may send ``DISCARD ALL``) drops the
    prepared statements; the statement that found one missing did nothing, so they
    are prepared again and ``run`` runs once more. libpq's own failures (a lost
    connection, say) are raised as SQLAlchemy's exception, like every statement's.
    """
    try:
        try:
            return run()
        except sa.exc.DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) != _GONE or not pooled.is_valid:
                raise
            pooled.info.pop(_PREPARED, None)
            return run()
    except psycopg.Error as error:  # libpq's own failure (not a statement's)
        raise sa.exc.DBAPIError.instance("(pipeline)", None, error, psycopg.Error) from error


def _agreed(sid: str, rows: list[tuple[str | None, ...]]) -> RecordStatus | None:
    """Return the status the rows re-read after a lost race agree on, or None."""
    try:
        return _moves.agreed_status(sid, {str(row[0]) for row in rows})
    except LifecycleError:
        return None


def _lost(error: sa.exc.DBAPIError) -> str | None:
    """Return which race ``error`` says was lost (a guard's label, or ``"seq"``), else None."""
    state = getattr(error.orig, "sqlstate", None)
    if state == _UNIQUE:
        return "seq"
    if state != _BAD_TEXT:
        return None
    text = str(getattr(getattr(error.orig, "diag", None), "message_primary", "") or "")
    for label in (ROWS_LOST, ENTRY_REFUSED):
        if label in text:
            return label
    return None


class _Pipeline:
    """One move's use of a pooled psycopg connection's libpq handle in pipeline mode.

    Statements queued with :meth:`send` run in one implicit transaction, which lasts
    until the next sync point: :meth:`results` sends them with a flush request
    instead, so the transaction stays open (holding its locks) while Python decides,
    and :meth:`sync` sends them with a sync point, at which the server commits the
    transaction if no statement failed and rolls it back if one did. Either raises
    the first failed statement's error as SQLAlchemy's exception, once every result
    is in. The handle stays non-blocking, as psycopg left it; waits use
    :func:`select.poll` (:func:`select.select` where there is none), so they can be
    interrupted.

    On leaving with an error, a transaction still open (it has only read and locked)
    is ended with a sync point and pipeline mode ends. If the connection broke, a
    wait was interrupted, or statements were queued but not sent, the connection is
    invalidated instead: closed and dropped from the pool, so its transaction ends
    without committing anything.
    """

    def __init__(self, pooled: PoolProxiedConnection) -> None:
        self._pooled = pooled
        self._conn: psycopg.Connection[Any] = pooled.dbapi_connection  # type: ignore[assignment]
        self._pg = self._conn.pgconn
        self._encoding = self._conn.info.encoding
        self._queued: list[tuple[str, Sequence[bytes | None] | None]] = []
        self._open = False  # statements ran since the last sync point
        self._poll = select.poll() if hasattr(select, "poll") else None
        if self._poll is not None:
            self._poll.register(self._pg.socket, select.POLLIN)

    def __enter__(self) -> _Pipeline:
        if self._pg.transaction_status != pq.TransactionStatus.IDLE:
            self._conn.rollback()  # (never expected: the pool returns connections idle)
        self._pg.enter_pipeline_mode()
        info = self._pooled.info
        left = info.get(_PREPARED, 0)
        if left <= 0:
            if _PREPARED in info:  # prepared before: plan afresh (see _REPLAN_EVERY)
                for name in _STATEMENTS:
                    self._pg.send_query_params(b"DEALLOCATE " + name, None)
                    self._queued.append(("DEALLOCATE", None))
            for name, sql in _STATEMENTS.items():
                self._pg.send_prepare(name, sql.encode())
                self._queued.append((sql, None))
            try:
                self.sync()
            except BaseException:  # some may be prepared: start afresh on a new connection
                self._pooled.invalidate()
                raise
            left = _REPLAN_EVERY
        info[_PREPARED] = left - 1
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        _trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self._pg.exit_pipeline_mode()
            return
        usable = self._pg.status == pq.ConnStatus.OK and not self._queued
        if isinstance(error, Exception) and usable:
            try:
                if self._open:
                    self.sync()  # it only read and locked: nothing is committed
                self._pg.exit_pipeline_mode()
            except Exception:  # noqa: BLE001, S110 - unusable: it is dropped below
                pass
            except BaseException:  # the sync was interrupted: drop it, let that through
                self._pooled.invalidate()
                raise
            else:
                return
        self._pooled.invalidate()

    def encode(self, text: str) -> bytes:
        """Return ``text`` in the connection's encoding."""
        return text.encode(self._encoding)

    def encode_all(self, *texts: str | None) -> list[bytes | None]:
        """Return each of ``texts`` encoded (None stays NULL)."""
        return [None if text is None else text.encode(self._encoding) for text in texts]

    def send(self, name: bytes, params: Sequence[bytes | None]) -> None:
        """Queue a prepared statement."""
        self._pg.send_query_prepared(name, params)
        self._queued.append((_STATEMENTS[name], params))

    def results(self) -> list[PGresult]:
        """Send the queued statements without a sync point; return their results."""
        self._pg.send_flush_request()
        self._open = True
        return self._collect(sync=False)

    def sync(self) -> list[PGresult]:
        """Send the queued statements with a sync point; return their results."""
        self._pg.pipeline_sync()
        results = self._collect(sync=True)
        self._open = False
        return results

    def rows(self, result: PGresult) -> list[tuple[str | None, ...]]:
        """Return the rows of a statement's ``result``, decoded."""
        encoding = self._encoding
        return [
            tuple(
                None if (value := result.get_value(row, column)) is None else value.decode(encoding)
                for column in range(result.nfields)
            )
            for row in range(result.ntuples)
        ]

    def _collect(self, *, sync: bool) -> list[PGresult]:
        """Flush, then collect a result per queued statement (and the sync point's)."""
        while self._pg.flush():  # (reading meanwhile, so that neither side stalls)
            self._wait(write=True)
            self._pg.consume_input()
        queued, self._queued = self._queued, []
        results: list[PGresult] = []
        failed: tuple[PGresult, str, Any] | None = None
        for sql, params in queued:
            result = self._next()
            if result is None:  # (libpq has no result where one is owed: it broke)
                raise psycopg.OperationalError(_OUT_OF_STEP)
            while self._next() is not None:  # each statement's results end with None
                pass
            results.append(result)
            if result.status not in _FINE and failed is None:
                failed = (result, sql, params)
        if sync:
            # A commit that fails reports its error here, ahead of the sync point.
            nothing = 0
            while (point := self._next()) is None or point.status != _SYNC:
                nothing = nothing + 1 if point is None else 0
                if nothing > 1 or self._pg.status != pq.ConnStatus.OK:
                    raise psycopg.OperationalError(_OUT_OF_STEP)
                if point is not None and failed is None:
                    failed = (point, "COMMIT", None)
        if failed is not None:
            result, sql, params = failed
            error = psycopg.errors.error_from_result(result, encoding=self._encoding)
            raise sa.exc.DBAPIError.instance(sql, params, error, psycopg.Error)
        return results

    def _next(self) -> PGresult | None:
        """Return libpq's next result, waiting for the server as long as it takes."""
        while self._pg.is_busy():
            self._wait(write=False)
            self._pg.consume_input()
        return self._pg.get_result()

    def _wait(self, *, write: bool) -> None:
        """Block until the socket is readable (or, with ``write``, writable too)."""
        fd = self._pg.socket
        if self._poll is None:  # pragma: no cover - platforms without poll (Windows)
            select.select([fd], [fd] if write else [], [])
            return
        if write:
            self._poll.modify(fd, select.POLLIN | select.POLLOUT)
            self._poll.poll()
            self._poll.modify(fd, select.POLLIN)
        else:
            self._poll.poll()
