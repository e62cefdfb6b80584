"""How a timestamp read from the database becomes a timezone-aware datetime.

One rule, used by the store and the audit alike:

- a timestamp with a UTC offset (what NexusLIMS 2.8 and this library write, in the
  writer's local offset) means the instant it names, in that offset;
- a timestamp without one (older NexusLIMS versions, whose ``session_log`` default
  was SQLite's ``strftime('%Y-%m-%dT%H:%M:%f', 'now', 'localtime')``) is a wall-clock
  time in the *local time zone of the process reading it* (the system's, or ``TZ``):
  NexusLIMS wrote it in the zone of the host it ran on, and the tools reading its
  database run there too. A wall-clock time that occurs twice (the hour a daylight
  saving change repeats) is read as the first.

Anything else (not text, not ISO 8601) is unreadable: :func:`read_stored` returns
None and each caller says what that means for it.
"""

from __future__ import annotations

from datetime import datetime

__all__ = ["as_aware", "read_stored"]


def as_aware(moment: datetime) -> datetime:
    """Return ``moment`` if it carries an offset, else the same wall-clock time, local.

    Parameters
    ----------
    moment
        A datetime read from the database.

    Returns
    -------
    datetime
        A timezone-aware datetime: ``moment`` itself, or for a naive one the same
        wall-clock time in the reading process's local time zone.

    Examples
    --------
    >>> from datetime import UTC
    >>> as_aware(datetime(2024, 1, 31, 14, 0, tzinfo=UTC)).isoformat()
    '2024-01-31T14:00:00+00:00'
    >>> as_aware(datetime(2024, 1, 31, 14, 0)).replace(tzinfo=None).isoformat()
    '2024-01-31T14:00:00'
    """
    if moment.utcoffset() is not None:
        return moment
    return moment.astimezone()  # a naive datetime is taken as local time, then given its offset


def read_stored(value: object) -> datetime | None:
    """Return a stored timestamp as a timezone-aware datetime, or None if unreadable.

    Parameters
    ----------
    value
        ISO 8601 text as ``session_log.timestamp``, ``status_history.at`` or
        ``build_claim`` keep it (or a datetime, as a driver may return one).

    Returns
    -------
    datetime or None
        The time, by the rule of this module; None for anything that is not an ISO
        8601 date and time.

    Examples
    --------
    >>> read_stored("2024-01-31T14:00:00-07:00").isoformat()
    '2024-01-31T14:00:00-07:00'
    >>> read_stored("2024-01-31T14:00:00").utcoffset() is not None
    True
    >>> read_stored("yesterday") is None
    True
    """
    if isinstance(value, datetime):
        return as_aware(value)
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return as_aware(moment)
