"""The write transactions of ``start`` and ``advance``, on an open connection.

Each function runs inside one transaction that the caller opened (``BEGIN
IMMEDIATE`` on SQLite, which serializes writers; the build queue's claim on
PostgreSQL, READ COMMITTED, first locks the session's rows in id order, the order
every writer uses). A move is a compare-and-set: every row goes from the status read
to the new one only if it still holds the status read, and the history entry is
written only if every row of the session now holds the new status and its sequence
number is free; a row, a claim or an entry another writer committed in between
turns into a conflict, not a half-done move. Any error raised here rolls the whole
transaction back. What a move is checked against and what it writes (:func:`rows_of`,
:func:`decide`, :func:`event_row`, :func:`releases_claim`) is shared with the
PostgreSQL path of ``advance``, :mod:`._postgres`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

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
from nexuslims_lifecycle.rules import FILE_DELAY, LIFECYCLE
from nexuslims_lifecycle.store import _sql
from nexuslims_lifecycle.store._types import parse_stored_time

__all__ = [
    "Move",
    "SessionRows",
    "advance",
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
    "write",
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
    return rows_of(
        session_identifier, _sql.run(conn, query, {"sid": session_identifier}).fetchall()
    )


def rows_of(session_identifier: str, rows: list[Any]) -> SessionRows:
    """Return what the rows of :data:`~._sql.SELECT_ROWS` say; raise UnknownSession if none."""
    if not rows:
        raise UnknownSession(session_identifier)
    # Columns: record_status, instrument, user, event_type, timestamp.
    settled = {row[0] for row in rows if not is_build_row(row[3], row[0])}
    status, being_built = session_status(session_identifier, settled, len(rows) - _count(rows))
    ends = [row[4] for row in rows if row[3] == _END]
    start = next((row for row in rows if row[3] == _START), rows[0])
    return SessionRows(
        status, len(rows), start[1], start[2], (ends or [None])[-1], being_built=being_built
    )


def _count(rows: list[Any]) -> int:
    """Return how many of ``rows`` are not builds in progress."""
    return sum(1 for row in rows if not is_build_row(row[3], row[0]))


def _locks(conn: sa.Connection) -> bool:
    """Return whether the database takes row locks (PostgreSQL, not SQLite)."""
    return conn.dialect.name == "postgresql"


def _append_history(
    conn: sa.Connection,
    move: Move,
    source: RecordStatus | None,
    dest: RecordStatus,
) -> Any:
    """Append the next history entry; return the cursor, whose one row is its number.

    No row means the session's rows disagree with ``dest`` (nothing was appended); a
    taken sequence number raises an IntegrityError: either way, another writer won.
    """
    return _sql.run(
        conn,
        _sql.INSERT_HISTORY,
        {
            "sid": move.session_identifier,
            "from_status": None if source is None else source.value,
            "to_status": dest.value,
            "event": move.event,
            "actor": move.actor,
            "at": move.at.isoformat(),
        },
    )


def insert_row(conn: sa.Connection, sid: str, info: dict[str, Any]) -> int:
    """Insert one session_log row and return its id."""
    (key,) = _sql.run(conn, _sql.INSERT_ROW, {"session_identifier": sid, **info}).fetchone()
    return int(key)


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
    """Write a new session's START row and first history entry."""
    sid = move.session_identifier
    check_instrument(conn, instrument)
    existing = _sql.run(conn, _sql.SELECT_ROWS, {"sid": sid}).fetchone()
    if existing is not None:
        raise SessionExists(sid, existing[0])
    initial = LIFECYCLE.initial
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
    try:
        entry = _append_history(conn, move, None, initial).fetchone()
    except sa.exc.IntegrityError:  # a concurrent start of the same session won
        entry = None
    if entry is None or entry[0] != 1:  # the session's history already began elsewhere
        raise SessionExists(sid)
    return initial


def _check_file_delay(rows: SessionRows, move: Move) -> None:
    """Refuse ``find_no_files`` before the file delay has elapsed since the END row."""
    if rows.ended_at is None:
        raise MissingEndTime(move.session_identifier, move.event)
    ended = parse_stored_time(rows.ended_at, move.session_identifier)
    if move.now - ended < move.file_delay:
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
    dest = legality.next_status(rows.status, move.event)
    if move.event == "find_no_files":
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


def write(
    conn: sa.Connection, move: Move, rows: SessionRows, dest: RecordStatus, *, holder: str | None
) -> tuple[Any, Any]:
    """Send the writes of a decided move; return the cursors of its update and history entry.

    ``holder`` is the claim holder :func:`decide` returned.
    """
    sid = move.session_identifier
    moved = _sql.run(
        conn,
        _sql.UPDATE_STATUS,
        {"sid": sid, "old": rows.status.value, "building": rows.being_built, "new": dest.value},
    )
    kind = event_row(move, rows, claimed=holder is not None)
    if kind is not None:
        info = {
            "session_identifier": sid,
            "instrument": rows.instrument,
            "timestamp": move.at.isoformat(),
            "event_type": kind.value,
            "record_status": dest.value,
            "user": rows.user,
        }
        _sql.run(conn, _sql.INSERT_ROW, info)  # its id is not needed
    entry = _append_history(conn, move, rows.status, dest)
    if releases_claim(rows, dest):
        _sql.run(conn, _sql.DELETE_CLAIM, {"sid": sid})
    return moved, entry


def advance(conn: sa.Connection, move: Move) -> RecordStatus:
    """Make one checked, compare-and-set move; return the new status (the SQLite path).

    The caller's transaction (``BEGIN IMMEDIATE``) holds the write lock throughout;
    the results of the writes are checked afterwards, and anything amiss raises, which
    rolls everything back. PostgreSQL uses :func:`._postgres.advance` instead.
    """
    sid = move.session_identifier
    try:
        rows = read_session(conn, sid, lock=True)
        building = rows.status is RecordStatus.TO_BE_BUILT
        claim = _sql.run(conn, _sql.SELECT_CLAIM, {"sid": sid}).fetchone() if building else None
        dest, holder = decide(move, rows, claim)
        moved, entry = write(conn, move, rows, dest, holder=holder)
    except sa.exc.IntegrityError:  # the entry's sequence number was taken: another writer won
        raise conflict(move, None) from None
    if moved.rowcount != rows.count:
        raise conflict(move, current(conn, sid))
    if entry.fetchone() is None:  # a row another writer committed since our read
        raise conflict(move, None)
    return dest


def current(conn: sa.Connection, sid: str) -> RecordStatus | None:
    """Return the session's status now, or None if its rows do not agree on one."""
    try:
        return read_session(conn, sid).status
    except StoreError:
        return None
