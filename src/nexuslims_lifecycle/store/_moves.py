"""What a move is and how it is written, on an open connection.

A move is read, decided in Python (:func:`decide`: the lifecycle, ``expected``, the
build claim, the file delay) and written as one compare-and-set checked by the
database's lifecycle guard (:mod:`._guard`), which records the history entry and
moves the session's other rows: the store writes no history itself.

On SQLite the read and the write share one ``BEGIN IMMEDIATE`` transaction, which
serializes writers (:func:`advance`). On PostgreSQL the read is one statement and the
write another, in autocommit (:func:`advance_autocommit`), so no lock is held while
Python decides: the compare-and-set finds the session's status changed (no row
moved), or the guard finds its row count changed (SQLSTATE 40001), and either is a
:class:`~nexuslims_lifecycle.errors.TransitionConflict`, not a half-done move.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, cast

import sqlalchemy as sa

from nexuslims_lifecycle import legality
from nexuslims_lifecycle.enums import EventType, RecordStatus
from nexuslims_lifecycle.errors import (
    FileDelayNotElapsed,
    MissingEndTime,
    SessionExists,
    StoreError,
    TransitionConflict,
    UnknownInstrument,
    UnknownSession,
)
from nexuslims_lifecycle.rules import (
    FILE_DELAY,
    FILE_DELAY_GUARD,
    LIFECYCLE,
    EventName,
    file_delay_elapsed,
)
from nexuslims_lifecycle.store import _sql
from nexuslims_lifecycle.store._types import parse_stored_time

__all__ = [
    "Move",
    "SessionRows",
    "advance",
    "advance_autocommit",
    "agreed_status",
    "claim_holder",
    "conflict",
    "current",
    "decide",
    "event_row",
    "insert_row",
    "read_session",
    "releases_claim",
    "rows_of",
    "start",
]

_END = EventType.END.value
_START = EventType.START.value


@dataclass(frozen=True, slots=True)
class Move:
    """One requested move: what, by whom, when, and what the writer believes."""

    session_identifier: str
    event: str
    actor: str | None
    at: datetime
    now: datetime
    expected: RecordStatus | None
    file_delay: timedelta = FILE_DELAY


@dataclass(frozen=True, slots=True)
class SessionRows:
    """What one read of a session's ``session_log`` rows found.

    ``being_built`` is NexusLIMS's mark of a build under way (or crashed): a
    RECORD_GENERATION row still WAITING_FOR_END beside TO_BE_BUILT rows.
    """

    status: RecordStatus
    count: int
    instrument: str
    user: str | None
    ended_at: str | None
    being_built: bool = False


_BUILD: Final = EventType.RECORD_GENERATION.value
_WAITING: Final = RecordStatus.WAITING_FOR_END.value
_QUEUED: Final = RecordStatus.TO_BE_BUILT.value


def is_build_row(event_type: str, record_status: str) -> bool:
    """Return whether a row is a build in progress: RECORD_GENERATION, still WAITING_FOR_END.

    NexusLIMS's record builder inserts such a row when it starts building a session
    and sets it, with every other row of the session, to the outcome when it is done.
    """
    return event_type == _BUILD and record_status == _WAITING


def session_status(
    session_identifier: str, values: set[str], building: int
) -> tuple[RecordStatus, bool]:
    """Return a session's status and whether it is being built, from what its rows hold.

    Parameters
    ----------
    session_identifier
        The session, for messages.
    values
        The statuses of its rows that are not builds in progress (:func:`is_build_row`).
    building
        How many of its rows are builds in progress.

    Raises
    ------
    StoreError
        When the rows disagree, or hold a value that is not a RecordStatus.
    """
    if building and values <= {_QUEUED}:
        return RecordStatus.TO_BE_BUILT, True
    if building:
        values = values | {_WAITING}
    return agreed_status(session_identifier, values), False


def agreed_status(session_identifier: str, values: set[str]) -> RecordStatus:
    """Return the one status all rows hold, or raise a StoreError naming what was found."""
    if len(values) != 1:
        msg = (
            f"the session_log rows of {session_identifier!r} disagree on record_status "
            f"({', '.join(sorted(values))}): NexusLIMS keeps one status on all rows; "
            "fix the rows (the audit shows which) before moving this session"
        )
        raise StoreError(msg)
    (value,) = values
    try:
        return RecordStatus(value)
    except ValueError:
        msg = (
            f"session {session_identifier!r} has record_status {value!r} in session_log, "
            f"which is not a RecordStatus (expected one of "
            f"{', '.join(s.value for s in RecordStatus)}); fix the rows before moving it"
        )
        raise StoreError(msg) from None


def read_session(
    conn: sa.Connection, session_identifier: str, *, lock: bool = False
) -> SessionRows:
    """Read every row of a session; raise UnknownSession if there is none.

    With ``lock`` on PostgreSQL, the rows are locked in id order (START first), the
    order every writer uses, so two writers of one session queue instead of deadlocking.
    """
    query = _sql.SELECT_ROWS_LOCKED if lock and _locks(conn) else _sql.SELECT_ROWS
    return rows_of(session_identifier, list(conn.execute(query, {"sid": session_identifier})))


def rows_of(session_identifier: str, rows: list[Any]) -> SessionRows:
    """Return what the rows of :data:`~._sql.SELECT_ROWS` say; raise UnknownSession if none."""
    if not rows:
        raise UnknownSession(session_identifier)
    # Columns: record_status, instrument, user, event_type, timestamp.
    building = [is_build_row(row[3], row[0]) for row in rows]
    settled = {row[0] for row, build in zip(rows, building, strict=True) if not build}
    status, being_built = session_status(session_identifier, settled, sum(building))
    ends = [row[4] for row in rows if row[3] == _END]
    start = next((row for row in rows if row[3] == _START), rows[0])
    return SessionRows(
        status, len(rows), start[1], start[2], (ends or [None])[-1], being_built=being_built
    )


def _locks(conn: sa.Connection) -> bool:
    """Return whether the database takes row locks (PostgreSQL, not SQLite)."""
    return conn.dialect.name == "postgresql"


def set_context(conn: sa.Connection, actor: str | None, at: datetime) -> None:
    """Tell the guard who makes the next moves of this transaction, and when.

    Raises
    ------
    sqlalchemy.exc.DBAPIError
        When the guard is not installed (its context table is missing).
    """
    values = {"actor": actor, "at": at.isoformat()}
    if _locks(conn):
        conn.execute(_sql.PG_SET_CONTEXT, values)
    else:
        conn.execute(_sql.SET_CONTEXT, values)


def clear_context(conn: sa.Connection) -> None:
    """Forget the context, so later writes of the transaction are not attributed to it."""
    if not _locks(conn):
        conn.execute(_sql.CLEAR_CONTEXT)


def insert_row(conn: sa.Connection, sid: str, info: dict[str, Any]) -> int:
    """Insert one session_log row and return its id."""
    return int(conn.execute(_sql.INSERT_ROW, {"session_identifier": sid, **info}).scalar_one())


def check_instrument(conn: sa.Connection, instrument: str) -> None:
    """Refuse an instrument that an existing NexusLIMS ``instruments`` table does not list.

    A database without that table (one the store created on its own) accepts any.
    """
    if not sa.inspect(conn).has_table("instruments"):
        return
    known = [
        str(name)
        for (name,) in conn.exec_driver_sql(
            "SELECT instrument_pid FROM instruments ORDER BY instrument_pid"
        )
    ]
    if instrument not in known:
        raise UnknownInstrument(instrument, known)


def start(conn: sa.Connection, move: Move, instrument: str, user: str | None) -> RecordStatus:
    """Write a new session's START row; the guard records its first history entry."""
    sid = move.session_identifier
    check_instrument(conn, instrument)
    existing = conn.execute(_sql.SELECT_ROWS, {"sid": sid}).first()
    if existing is not None:
        raise SessionExists(sid, existing[0])
    initial = LIFECYCLE.initial
    set_context(conn, move.actor, move.at)
    try:
        insert_row(
            conn,
            sid,
            {
                "instrument": instrument,
                "timestamp": move.at.isoformat(),
                "event_type": EventType.START.value,
                "record_status": initial.value,
                "user": user,
            },
        )
    except sa.exc.IntegrityError:  # a concurrent start of the same session won
        raise SessionExists(sid) from None
    clear_context(conn)
    return initial


_DELAY_GUARDED: Final = LIFECYCLE.guarded_by(FILE_DELAY_GUARD)
"""The events that wait for the file delay after the END (``find_no_files``)."""


def _check_file_delay(rows: SessionRows, move: Move) -> None:
    """Refuse a file-delay-guarded move before the delay has elapsed since the END row."""
    if rows.ended_at is None:
        raise MissingEndTime(move.session_identifier, move.event)
    ended = parse_stored_time(rows.ended_at, move.session_identifier)
    if not file_delay_elapsed(ended, move.now, move.file_delay):
        raise FileDelayNotElapsed(move.session_identifier, ended, ended + move.file_delay)


def claim_holder(claim: Any, move: Move) -> str | None:
    """Return the worker whose build claim (a ``SELECT_CLAIM`` row or None) binds ``move``.

    That is a live claim, or the actor's own claim even once expired.
    """
    if claim is None:
        return None
    worker, expires_at = claim
    if worker == move.actor or datetime.fromisoformat(expires_at) > move.now:
        return str(worker)
    return None


def conflict(
    move: Move, current: RecordStatus | None, holder: str | None = None
) -> TransitionConflict:
    """Build the conflict for ``move`` seen against ``current``."""
    return TransitionConflict(
        move.session_identifier,
        move.event,
        expected=None if move.expected is None else move.expected.value,
        current=None if current is None else current.value,
        holder=holder,
    )


def decide(move: Move, rows: SessionRows, claim: Any) -> tuple[RecordStatus, str | None]:
    """Check ``move`` against what was read; return its destination and the claim holder.

    Parameters
    ----------
    move
        The requested move.
    rows
        The session's rows, read under lock.
    claim
        The session's ``SELECT_CLAIM`` row (None if it has none or was not read
        because the session is not TO_BE_BUILT).

    Raises
    ------
    TransitionConflict
        The session is not in ``move.expected``, or another worker holds its claim.
    IllegalTransition, FileDelayNotElapsed, MissingEndTime
        The lifecycle refuses the move now.
    """
    if move.expected is not None and rows.status is not move.expected:
        raise conflict(move, rows.status)
    dest = legality.next_status(rows.status, cast("EventName", move.event))  # parsed by advance()
    if move.event in _DELAY_GUARDED:
        _check_file_delay(rows, move)
    holder = claim_holder(claim, move) if rows.status is RecordStatus.TO_BE_BUILT else None
    if holder is not None and holder != move.actor:
        raise conflict(move, rows.status, holder)
    return dest, holder


def event_row(move: Move, rows: SessionRows, *, claimed: bool) -> EventType | None:
    """Return the event type of the session_log row a move adds, if any.

    That is END for ``end``, and RECORD_GENERATION for a build outcome (a move out of
    TO_BE_BUILT) of a session not being built. A session being built already has its
    RECORD_GENERATION row (written by NexusLIMS's builder, or by our claim, when the
    attempt started), which the outcome moves with the other rows; it adds none.
    """
    if move.event == "end":
        return EventType.END
    if rows.status is RecordStatus.TO_BE_BUILT and not (claimed or rows.being_built):
        return EventType.RECORD_GENERATION
    return None


def releases_claim(rows: SessionRows, dest: RecordStatus) -> bool:
    """Return whether a move from ``rows.status`` to ``dest`` ends a build (and its claim)."""
    return rows.status is RecordStatus.TO_BE_BUILT and dest is not RecordStatus.TO_BE_BUILT


def _added_row(
    move: Move, rows: SessionRows, dest: RecordStatus, kind: EventType
) -> dict[str, Any]:
    """Return the columns of the row a move adds (END, or RECORD_GENERATION)."""
    return {
        "session_identifier": move.session_identifier,
        "instrument": rows.instrument,
        "timestamp": move.at.isoformat(),
        "event_type": kind.value,
        "record_status": dest.value,
        "user": rows.user,
    }


def advance(conn: sa.Connection, move: Move) -> RecordStatus:
    """Make one checked, compare-and-set move inside the caller's transaction.

    On SQLite the transaction (``BEGIN IMMEDIATE``) holds the write lock throughout;
    on PostgreSQL (``record_usage``'s transaction) the session's rows are locked
    first. Anything amiss raises, which rolls everything back.
    """
    sid = move.session_identifier
    rows = read_session(conn, sid, lock=True)
    building = rows.status is RecordStatus.TO_BE_BUILT
    claim = conn.execute(_sql.SELECT_CLAIM, {"sid": sid}).first() if building else None
    dest, holder = decide(move, rows, claim)
    set_context(conn, move.actor, move.at)
    values = {"sid": sid, "old": rows.status.value, "new": dest.value}
    try:
        moved = conn.execute(_sql.MOVE, values).rowcount
    except sa.exc.IntegrityError:  # the entry's sequence number was taken: another writer won
        raise conflict(move, None) from None
    if moved != 1:
        raise conflict(move, current(conn, sid))
    kind = event_row(move, rows, claimed=holder is not None)
    if kind is not None:
        insert_row(conn, sid, _added_row(move, rows, dest, kind))
    if releases_claim(rows, dest):
        conn.execute(_sql.DELETE_CLAIM, {"sid": sid})
    clear_context(conn)
    return dest


def advance_autocommit(conn: sa.Connection, move: Move) -> RecordStatus:
    """Make one checked move on PostgreSQL in autocommit: one read, then one statement.

    No lock is held between them: :data:`._sql.PG_MOVE` is a compare-and-set, and the
    guard refuses it (SQLSTATE 40001, which the store reports as a conflict) when the
    session gained or lost a row since the read.
    """
    sid = move.session_identifier
    read = list(conn.execute(_sql.SELECT_ROWS_CLAIM, {"sid": sid}))
    rows = rows_of(sid, [row[:5] for row in read])
    worker, expires_at = read[0][5:] if read else (None, None)
    claim = None if worker is None else (worker, expires_at)
    dest, holder = decide(move, rows, claim)
    kind = event_row(move, rows, claimed=holder is not None)
    values = {
        "sid": sid,
        "old": rows.status.value,
        "new": dest.value,
        "actor": move.actor,
        "at": move.at.isoformat(),
        "rows": str(rows.count + (kind is not None)),
        "instrument": rows.instrument,
        "user": rows.user,
        "kind": None if kind is None else kind.value,
        "release": releases_claim(rows, dest),
    }
    try:
        moved = conn.execute(_sql.PG_MOVE, values).scalar_one()
    except sa.exc.IntegrityError:  # the entry's sequence number was taken: another writer won
        raise conflict(move, None) from None
    if moved != 1:
        raise conflict(move, current(conn, sid))
    return dest


def current(conn: sa.Connection, sid: str) -> RecordStatus | None:
    """Return the session's status now, or None if its rows do not agree on one."""
    try:
        return read_session(conn, sid).status
    except StoreError:
        return None
