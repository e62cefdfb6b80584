"""What the store returns, and the few value checks every operation shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nexuslims_lifecycle._timestamps import read_stored
from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import InvalidArgument, StoreError

__all__ = ["Claim", "HistoryEntry", "SessionInfo", "aware", "identifier", "lease_of", "utc_text"]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One move of one session, as ``status_history`` keeps it.

    Parameters
    ----------
    session_identifier
        The session.
    seq
        1 for the session's start, then 2, 3, ... with no gaps.
    from_status
        The status before the move (None for the start).
    to_status
        The status after it.
    event
        The lifecycle event (``"start"`` for the first entry).
    actor
        Who made the move, if given.
    at
        When (timezone-aware, in the offset it was written with; a stored time
        without an offset is local time, as the store guide's "Stored times" says).
    """

    session_identifier: str
    seq: int
    from_status: RecordStatus | None
    to_status: RecordStatus
    event: str
    actor: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One session of ``session_log``: who, where, since when, and its status.

    Parameters
    ----------
    session_identifier
        The session.
    instrument
        Its instrument (from its START row).
    user
        Its user, from its START row (NexusLIMS's build rows carry ``nexuslims``).
    status
        Its record status, or None when its rows disagree (the audit says how).
    started_at
        Its START row's timestamp (its earliest row's, without one), timezone-aware in
        the offset it was written with (one stored without an offset is local time,
        as the store guide's "Stored times" says); None when that timestamp is not
        ISO 8601 (the audit reports it as ``invalid-timestamp``).
    being_built
        Whether a build is under way (or crashed): a RECORD_GENERATION row still
        WAITING_FOR_END beside TO_BE_BUILT rows, as NexusLIMS's builder (or a claim of
        :meth:`~nexuslims_lifecycle.store.SessionLogStore.claim_next`) leaves it.
    problem
        Why ``status`` is None, else None.
    """

    session_identifier: str
    instrument: str
    user: str | None
    status: RecordStatus | None
    started_at: datetime | None
    being_built: bool = False
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """A worker's lease on building one TO_BE_BUILT session.

    Parameters
    ----------
    session_identifier
        The session to build.
    worker
        Who holds the claim; pass it as ``actor`` with the build's outcome event.
    claimed_at, expires_at
        The lease, as timezone-aware datetimes in UTC; after ``expires_at`` another
        worker may take over.
    taken_over_from
        The worker whose expired claim this one replaced, if any.
    """

    session_identifier: str
    worker: str
    claimed_at: datetime
    expires_at: datetime
    taken_over_from: str | None = None


def utc_text(moment: datetime) -> str:
    """Return ``moment`` as fixed-width ISO-8601 UTC text (sorts like the time it names)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def aware(moment: datetime | None, name: str) -> datetime:
    """Return ``moment`` (now, in the local offset, if None), refusing a naive time.

    The local offset is the one NexusLIMS stamps its own rows with (the system's
    time zone, ``TZ``), so rows the store writes read like NexusLIMS's.
    """
    if moment is None:
        return datetime.now().astimezone()
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise InvalidArgument(name, moment, "a timezone-aware datetime, e.g. datetime.now(UTC)")
    return moment


def identifier(value: object, name: str, *, optional: bool = False) -> str | None:
    """Return ``value`` if it is a usable identifier: a non-blank string (or None if optional)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(name, value, "a non-empty string")
    return value


def lease_of(value: object) -> timedelta:
    """Return a claim's lease from a timedelta or a number of seconds, refusing <= 0."""
    if isinstance(value, timedelta):
        lease = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        lease = timedelta(seconds=value)
    else:
        raise InvalidArgument("lease", value, "a timedelta or a number of seconds > 0")
    if lease <= timedelta(0):
        raise InvalidArgument("lease", value, "a timedelta or a number of seconds > 0")
    return lease


def parse_stored_time(text: str, session_identifier: str) -> datetime:
    """Return a session's stored END timestamp, read by the one rule for stored times.

    A timestamp without a UTC offset (older NexusLIMS) is local time; see
    ``nexuslims_lifecycle._timestamps``.

    Raises
    ------
    StoreError
        When ``text`` is not an ISO-8601 date and time.
    """
    moment = read_stored(text)
    if moment is None:
        msg = (
            f"session {session_identifier!r} has END timestamp {text!r}, which is not "
            "an ISO-8601 date and time: the file delay cannot be measured; fix the row"
        )
        raise StoreError(msg)
    return moment
