"""``advance`` on PostgreSQL in two round trips: read under lock, then write and commit.

The first round trip sends ``BEGIN``, the locking read of the session's rows (in id
order, the order every writer uses) and the read of its build claim, as one psycopg
pipeline; the claim is read after the lock is granted, so a claim committed while
this writer waited is seen. The move is checked in Python (:func:`._moves.decide`).
The second round trip sends the writes and ``COMMIT`` together, so the writes must
check themselves on the server: the compare-and-set update and the history insert
are *guarded*, turned into statements that fail (aborting the transaction, so the
``COMMIT`` is not carried out) when they touched fewer rows than they must. Each
guard fails with its own label, from which the conflict is told apart: fewer rows
moved than read, or a history entry refused because a row another writer committed
disagrees with the new status. A taken sequence number fails on its unique
constraint, as before. Nothing is half-written in any case.
"""

from __future__ import annotations

from typing import Any, Final

import sqlalchemy as sa

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.store import _moves, _sql

__all__ = ["ENTRY_REFUSED", "GUARDED_HISTORY", "GUARDED_UPDATE", "ROWS_LOST", "advance"]

ROWS_LOST: Final = "nexuslims-lifecycle rows lost"
"""The label of a guarded update that moved fewer rows than were read."""

ENTRY_REFUSED: Final = "nexuslims-lifecycle entry refused"
"""The label of a guarded history insert that wrote no entry."""

_BAD_TEXT: Final = "22P02"  # invalid_text_representation: a failed guard
_UNIQUE: Final = "23505"  # unique_violation: the entry's sequence number was taken


def _guarded(statement: Any, wanted: sa.ColumnElement[Any], label: str) -> Any:
    """Return ``statement`` (with RETURNING) as a CTE whose query fails unless ``wanted``.

    The failure is a cast of ``label`` to an integer, which PostgreSQL reports with
    the label in its message. The cast applies to a CASE on the rows returned, so the
    planner cannot evaluate it ahead of time.
    """
    done = statement.cte("done")
    outcome = sa.case((wanted, sa.literal_column("'0'")), else_=sa.literal_column(f"'{label}'"))
    return sa.select(sa.cast(outcome, sa.Integer)).select_from(done)


GUARDED_UPDATE: Final = _guarded(
    _sql.UPDATE_STATUS.returning(sa.literal_column("1")),
    sa.func.count() == sa.bindparam("count", type_=sa.Integer),
    ROWS_LOST,
)
"""The compare-and-set of :data:`._sql.UPDATE_STATUS`, failing unless it moved
exactly ``count`` rows (those read). Parameters: ``sid``, ``old``, ``new``, ``count``."""

GUARDED_HISTORY: Final = _guarded(
    _sql.INSERT_HISTORY, sa.func.count() == sa.literal_column("1"), ENTRY_REFUSED
)
"""The history insert of :data:`._sql.INSERT_HISTORY`, failing unless it wrote the
entry. Parameters: those of ``INSERT_HISTORY``."""


def advance(conn: sa.Connection, move: _moves.Move) -> RecordStatus:
    """Make one checked, compare-and-set move and commit it; return the new status.

    Parameters
    ----------
    conn
        A PostgreSQL connection inside a write transaction that nothing has used yet;
        this function commits it.
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
    """
    sid = move.session_identifier
    params = {"sid": sid}
    with _sql.batch(conn):
        try:
            found = _sql.run(conn, _sql.SELECT_ROWS_LOCKED, params)
            claim = _sql.run(conn, _sql.SELECT_CLAIM, params)
            rows = _moves.rows_of(sid, found.fetchall())  # round trip 1
            dest, holder = _moves.decide(move, rows, claim.fetchone())
            _moves.write(
                conn, move, rows, dest, holder=holder, statements=(GUARDED_UPDATE, GUARDED_HISTORY)
            )
            conn.commit()  # round trip 2: the writes and COMMIT
        except sa.exc.DBAPIError as error:  # (a guard may fail while later writes are sent)
            _sql.rollback(conn)  # inside the pipeline, which holds the aborted results
            lost = _lost(error)
            if lost is None:
                raise
            now = _moves.current(conn, sid) if lost == ROWS_LOST else None
            raise _moves.conflict(move, now) from None
    return dest


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
