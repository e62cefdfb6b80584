"""``advance`` on PostgreSQL: two round trips of prepared statements on libpq's pipeline.

The move runs on the pooled psycopg connection's libpq handle (:mod:`psycopg.pq`),
not through SQLAlchemy or psycopg's cursors, whose Python costs several times what
the server spends on the move. Each connection prepares the four statements below
once; a move then sends:

1. ``BEGIN``, :data:`LOCK` and :data:`READ`, in one flush. :data:`LOCK` takes the
   row lock of the session's first row (its START row), the lock every writer of
   the session takes first, so writers of one session queue there instead of
   deadlocking. :data:`READ` then reads all of the session's rows and its build
   claim; it runs after the lock is granted, in a snapshot of its own, so it sees
   whatever the previous holder committed. The move is checked in Python
   (:func:`._moves.decide`).
2. :data:`WRITE`, :data:`AGREE` and ``COMMIT``, in one flush. So the writes must
   check themselves on the server: :data:`WRITE` moves every row with a
   compare-and-set, adds the END or RECORD_GENERATION row, appends the history
   entry (numbered in the same statement) and ends the build claim, in one
   statement, and fails unless it moved exactly the rows read; :data:`AGREE` then
   fails unless every row of the session, as committed by anyone by now, holds the
   new status. A failure aborts the transaction, so the ``COMMIT`` is not carried
   out; each guard fails with its own label, from which the lost race is told
   apart. A taken sequence number fails on its unique constraint. Nothing is
   half-written in any case.

Errors come back as SQLAlchemy's exceptions wrapping psycopg's, like every other
statement of the store. A connection whose state is unknown after an error (the
network failed, or the wait was interrupted) is closed, not returned to the pool.
"""

from __future__ import annotations

import select
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Final

import psycopg
import sqlalchemy as sa
from psycopg import pq
from psycopg.pq.abc import PGresult
from sqlalchemy.pool import PoolProxiedConnection

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import LifecycleError
from nexuslims_lifecycle.store import _moves

__all__ = ["AGREE", "ENTRY_REFUSED", "LOCK", "READ", "ROWS_LOST", "WRITE", "advance"]

ROWS_LOST: Final = "nexuslims-lifecycle rows lost"
"""The label of a :data:`WRITE` that moved other rows than were read."""

ENTRY_REFUSED: Final = "nexuslims-lifecycle entry refused"
"""The label of an :data:`AGREE` that found a row without the new status."""

_BAD_TEXT: Final = "22P02"  # invalid_text_representation: a failed guard
_UNIQUE: Final = "23505"  # unique_violation: the entry's sequence number was taken

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
    "WHERE session_identifier = $1::text AND record_status = $2::text RETURNING 1), "
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
build claim ends."""

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

_OK: Final = frozenset({pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK})
_SYNC: Final = pq.ExecStatus.PIPELINE_SYNC


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
        Any other database error; nothing is written.
    """
    sid = move.session_identifier
    with _Pipeline(pooled) as wire:
        key = [wire.encode(sid)]
        wire.query(b"BEGIN")
        wire.prepared(_NAME_LOCK, key)
        found = wire.prepared(_NAME_READ, key)
        wire.sync()  # round trip 1
        rows = wire.rows(found)
        info = _moves.rows_of(sid, [row[:5] for row in rows])
        worker, expires_at = rows[0][5:]
        dest, holder = _moves.decide(move, info, None if worker is None else (worker, expires_at))
        kind = _moves.event_row(move, info, claimed=holder is not None)
        at = move.at.isoformat()
        wire.prepared(
            _NAME_WRITE,
            [
                *key,
                *wire.encode_all(info.status.value, dest.value, str(info.count), info.instrument),
                *wire.encode_all(at, None if kind is None else kind.value, info.user),
                *wire.encode_all(move.event, move.actor),
                b"t" if _moves.releases_claim(info, dest) else b"f",
            ],
        )
        wire.prepared(_NAME_AGREE, [*key, wire.encode(dest.value)])
        wire.query(b"COMMIT")
        try:
            wire.sync()  # round trip 2
        except sa.exc.DBAPIError as error:
            lost = _lost(error)
            if lost is None:
                raise
            again = wire.rollback(reread=sid if lost == ROWS_LOST else None)
            now = None if again is None else _agreed(sid, wire.rows(again))
            raise _moves.conflict(move, now) from None
    return dest


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

    Queries are queued, then :meth:`sync` flushes them with a sync point and collects
    their results, raising the first error among them as SQLAlchemy's exception.
    The handle stays non-blocking, as psycopg left it; waits use :func:`select.poll`
    (:func:`select.select` where there is none), so they can be interrupted.

    On leaving, an open transaction is rolled back and pipeline mode ends. If that
    cannot be done (the connection broke, or a wait was interrupted), the connection
    is invalidated: closed and dropped from the pool.
    """

    def __init__(self, pooled: PoolProxiedConnection) -> None:
        self._pooled = pooled
        self._conn: psycopg.Connection[Any] = pooled.dbapi_connection  # type: ignore[assignment]
        self._pg = self._conn.pgconn
        self._encoding = self._conn.info.encoding
        self._queued: list[tuple[str, Sequence[bytes | None] | None]] = []
        self._results: dict[int, PGresult] = {}
        self._poll = select.poll() if hasattr(select, "poll") else None
        if self._poll is not None:
            self._poll.register(self._pg.socket, select.POLLIN)

    def __enter__(self) -> _Pipeline:
        if self._pg.transaction_status != pq.TransactionStatus.IDLE:
            self._conn.rollback()  # (never expected: the pool returns connections idle)
        self._pg.enter_pipeline_mode()
        info = self._pooled.info
        if not info.get(_PREPARED):
            for name, sql in _STATEMENTS.items():
                self._pg.send_prepare(name, sql.encode())
                self._queued.append((sql, None))
            try:
                self.sync()
            except Exception:  # some may be prepared: start afresh on a new connection
                self._pg.exit_pipeline_mode()
                self._pooled.invalidate()
                raise
            info[_PREPARED] = True
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
        if isinstance(error, Exception) and self._pg.status == pq.ConnStatus.OK:
            try:
                if self._queued or self._pg.transaction_status != pq.TransactionStatus.IDLE:
                    self.rollback()
                self._pg.exit_pipeline_mode()
            except Exception:  # noqa: BLE001, S110 - unusable: it is dropped below
                pass
            else:
                return
        self._pooled.invalidate()

    def encode(self, text: str) -> bytes:
        """Return ``text`` in the connection's encoding."""
        return text.encode(self._encoding)

    def encode_all(self, *texts: str | None) -> list[bytes | None]:
        """Return each of ``texts`` encoded (None stays NULL)."""
        return [None if text is None else text.encode(self._encoding) for text in texts]

    def query(self, sql: bytes) -> int:
        """Queue a statement without parameters; return its position in this batch."""
        self._pg.send_query_params(sql, None)
        self._queued.append((sql.decode(), None))
        return len(self._queued) - 1

    def prepared(self, name: bytes, params: Sequence[bytes | None]) -> int:
        """Queue a prepared statement; return its position in this batch."""
        self._pg.send_query_prepared(name, params)
        self._queued.append((_STATEMENTS[name], params))
        return len(self._queued) - 1

    def sync(self) -> None:
        """Send the queued statements and collect their results (see :meth:`rows`).

        Raises
        ------
        sqlalchemy.exc.DBAPIError
            The first statement that failed, once every result has been collected.
        """
        self._pg.pipeline_sync()
        self._flush()
        queued, self._queued = self._queued, []
        self._results = {}
        failed: tuple[PGresult, str, Any] | None = None
        for position, (sql, params) in enumerate(queued):
            result = self._next()
            while self._next() is not None:  # each statement's results end with None
                pass
            if result is None or result.status == pq.ExecStatus.PIPELINE_ABORTED:
                continue
            if result.status not in _OK:
                failed = failed or (result, sql, params)
            self._results[position] = result
        sync = self._next()
        if sync is None or sync.status != _SYNC:
            msg = f"libpq returned {sync!r} where the pipeline's sync point belongs"
            broken = psycopg.OperationalError(msg)
            raise sa.exc.DBAPIError.instance("(pipeline)", None, broken, psycopg.Error)
        if failed is not None:
            result, sql, params = failed
            error = psycopg.errors.error_from_result(result, encoding=self._encoding)
            raise sa.exc.DBAPIError.instance(sql, params, error, psycopg.Error)

    def rows(self, position: int) -> list[tuple[str | None, ...]]:
        """Return the rows the statement queued at ``position`` returned, decoded."""
        result = self._results[position]
        encoding = self._encoding
        return [
            tuple(
                None if (value := result.get_value(row, column)) is None else value.decode(encoding)
                for column in range(result.nfields)
            )
            for row in range(result.ntuples)
        ]

    def rollback(self, *, reread: str | None = None) -> int | None:
        """Roll back; with ``reread`` (a session), then read its rows (see :meth:`rows`)."""
        self.query(b"ROLLBACK")
        found = None if reread is None else self.prepared(_NAME_READ, [self.encode(reread)])
        self.sync()
        return found

    def _flush(self) -> None:
        """Send everything queued, reading meanwhile so that neither side stalls."""
        while self._pg.flush():
            self._wait(write=True)
            self._pg.consume_input()

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
