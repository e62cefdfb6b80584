"""The build queue: hand each TO_BE_BUILT session to exactly one builder at a time.

Lease times are the store's own fixed-width UTC text (:func:`._types.utc_text`), the
one column whose times the database compares as text: only the store writes it, in
one form, so text order is time order there (``session_log`` times, written by
NexusLIMS in any offset, are only ever compared as parsed datetimes).

A claim is one write transaction that (1) picks the oldest TO_BE_BUILT session with
no live claim (on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so builders on many
machines pick different sessions instead of queueing on one), (2) takes the lease in
``build_claim`` with an upsert that only replaces an expired lease, (3) re-asserts
TO_BE_BUILT on every row of the session (a compare-and-set that also takes the rows'
locks, so a concurrent move of the session is a conflict for one of the two), and
(4) writes the RECORD_GENERATION row by which NexusLIMS marks a build attempt. If
another builder won step 2 or the session moved, the transaction is rolled back
and the next candidate is tried.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from nexuslims_lifecycle.enums import EventType, RecordStatus
from nexuslims_lifecycle.errors import StoreError
from nexuslims_lifecycle.store import _sql
from nexuslims_lifecycle.store._moves import insert_row, read_session
from nexuslims_lifecycle.store._schema import BUILD_CLAIM, SESSION_LOG
from nexuslims_lifecycle.store._types import Claim, utc_text

__all__ = ["abandon", "claim_next"]

_LOG = SESSION_LOG.c
_CLAIM = BUILD_CLAIM.c
_TBB = RecordStatus.TO_BE_BUILT.value


class _Lost(Exception):
    """Another builder or writer got to the candidate first."""


def _candidate(conn: sa.Connection, now_text: str, skip: set[str]) -> str | None:
    """Return the oldest TO_BE_BUILT session without a live claim, locking its START row.

    A session that NexusLIMS's own builder is building (a RECORD_GENERATION row still
    WAITING_FOR_END, and no claim of ours) is passed over: NexusLIMS cannot see our
    claims, so taking it would build it twice. One whose claim of ours expired is
    taken over. Every writer locks a session's rows in id order, START first, so
    locking the START row here cannot deadlock with a move of the same session.
    """
    claims = sa.select(_CLAIM.session_identifier).where(
        _CLAIM.session_identifier == _LOG.session_identifier
    )
    live = claims.where(_CLAIM.expires_at > now_text).exists()
    other = SESSION_LOG.alias("build")
    building = (
        sa.select(other.c.id_session_log)
        .where(
            other.c.session_identifier == _LOG.session_identifier,
            other.c.event_type == EventType.RECORD_GENERATION.value,
            other.c.record_status == RecordStatus.WAITING_FOR_END.value,
        )
        .exists()
    )
    query = (
        sa.select(_LOG.session_identifier)
        .where(
            _LOG.event_type == EventType.START.value,
            _LOG.record_status == _TBB,
            ~live,
            sa.or_(claims.exists(), ~building),
        )
        .order_by(_LOG.id_session_log)
        .limit(1)
    )
    if skip:
        query = query.where(_LOG.session_identifier.not_in(skip))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=SESSION_LOG)
    found = conn.execute(query).scalar()
    return None if found is None else str(found)


def _take_lease(conn: sa.Connection, claim: Claim, now_text: str) -> str | None:
    """Take the lease (a new one, or over an expired one); return the worker it replaced."""
    previous = conn.execute(
        sa.select(_CLAIM.worker).where(_CLAIM.session_identifier == claim.session_identifier)
    ).scalar()
    insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(BUILD_CLAIM)
    values = {
        "worker": claim.worker,
        "claimed_at": utc_text(claim.claimed_at),
        "expires_at": utc_text(claim.expires_at),
        "marker_id": None,
    }
    statement = insert.values(session_identifier=claim.session_identifier, **values)
    statement = statement.on_conflict_do_update(
        index_elements=[_CLAIM.session_identifier],
        set_=values,
        where=BUILD_CLAIM.c.expires_at <= now_text,
    )
    if conn.execute(statement.returning(_CLAIM.worker)).first() is None:
        raise _Lost
    return None if previous is None else str(previous)


def _mark_attempt(conn: sa.Connection, sid: str, at_text: str) -> None:
    """Re-assert TO_BE_BUILT on every row and write the attempt's RECORD_GENERATION row.

    The row is the one NexusLIMS's builder writes when it starts a build:
    RECORD_GENERATION, WAITING_FOR_END, so the session reads as *being built* until
    the outcome moves every row.
    """
    rows = read_session(conn, sid, lock=True)
    params = {"sid": sid, "old": _TBB, "building": rows.being_built}
    touched = conn.execute(_sql.TOUCH_STATUS, params).rowcount
    if rows.status is not RecordStatus.TO_BE_BUILT or touched != rows.count:
        raise _Lost
    marker = insert_row(
        conn,
        sid,
        {
            "instrument": rows.instrument,
            "timestamp": at_text,
            "event_type": EventType.RECORD_GENERATION.value,
            "record_status": RecordStatus.WAITING_FOR_END.value,
            "user": rows.user,
        },
    )
    if read_session(conn, sid).count != rows.count + 1:
        raise _Lost
    conn.execute(_sql.SET_MARKER, {"sid": sid, "marker": marker})


def abandon(conn: sa.Connection, sid: str, worker: str) -> bool:
    """End ``worker``'s claim on ``sid`` and delete the build row the claim wrote.

    What NexusLIMS's builder does when it finds no files before the file delay has
    passed: the attempt leaves no trace and the session stays TO_BE_BUILT, for a
    later run. Returns whether ``worker`` held a claim (else nothing is changed).
    """
    held = conn.execute(
        sa.select(_CLAIM.marker_id).where(_CLAIM.session_identifier == sid, _CLAIM.worker == worker)
    ).first()
    if held is None:
        return False
    if held.marker_id is not None:
        conn.execute(
            SESSION_LOG.delete().where(
                _LOG.id_session_log == held.marker_id,
                _LOG.session_identifier == sid,
                _LOG.event_type == EventType.RECORD_GENERATION.value,
                _LOG.record_status == RecordStatus.WAITING_FOR_END.value,
            )
        )
    conn.execute(BUILD_CLAIM.delete().where(_CLAIM.session_identifier == sid))
    return True


def claim_next(
    write: Callable[[], AbstractContextManager[sa.Connection]],
    worker: str,
    lease: timedelta,
    now: datetime,
) -> Claim | None:
    """Claim the oldest unclaimed TO_BE_BUILT session for ``worker``, or return None.

    Parameters
    ----------
    write
        Opens one write transaction and yields its connection.
    worker
        Who claims.
    lease
        How long the claim lasts before another worker may take it over.
    now
        The time of the claim.

    Returns
    -------
    Claim or None
        The claim, or None when no session is waiting to be built. A session whose
        rows disagree on their status is passed over (nothing is written to it).
    """
    now_text = utc_text(now)
    skip: set[str] = set()
    while True:
        sid = None
        try:
            with write() as conn:
                sid = _candidate(conn, now_text, skip)
                if sid is None:
                    return None
                claim = Claim(sid, worker, now.astimezone(UTC), (now + lease).astimezone(UTC))
                previous = _take_lease(conn, claim, now_text)
                _mark_attempt(conn, sid, now.isoformat())
                return replace(claim, taken_over_from=previous)
        except _Lost:
            skip.add(str(sid))
        except StoreError:
            if sid is None:
                raise
            skip.add(sid)  # rows the lifecycle cannot read: leave them to the audit
