"""The errors the library raises.

Every error derives from :class:`LifecycleError`, so one ``except`` catches them
all. Errors about bad input also derive from :class:`ValueError`, so callers that
already catch ``ValueError`` keep working. Each error keeps the offending values
as attributes, and its message says what was wrong and what would be accepted.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from datetime import datetime

__all__ = [
    "EmptySelection",
    "FileDelayNotElapsed",
    "IllegalTransition",
    "InvalidArgument",
    "InvalidConfiguration",
    "InvalidDefinition",
    "LifecycleError",
    "MissingEndTime",
    "MissingExtra",
    "SessionExists",
    "StoreError",
    "TransitionConflict",
    "UnknownEvent",
    "UnknownFormat",
    "UnknownInstrument",
    "UnknownSession",
    "UnknownStatus",
    "UnusableDatabase",
]


class LifecycleError(Exception):
    """Root of every error raised by nexuslims-lifecycle."""


def _suggestion(value: object, valid: Iterable[str]) -> str:
    """Return a ``did you mean`` clause for a near miss, or an empty string."""
    if not isinstance(value, str):
        return ""
    by_upper = {name.upper(): name for name in valid}
    close = difflib.get_close_matches(value.upper(), list(by_upper), n=1, cutoff=0.6)
    return f"; did you mean {by_upper[close[0]]!r}?" if close else ""


class InvalidDefinition(LifecycleError, ValueError):
    """A lifecycle table that breaks a rule every lifecycle must keep.

    Raised when a machine is built from the table (at import for the library's own
    lifecycle), never while sessions move: it is a bug in the definition, not in the
    code that drives sessions.

    Parameters
    ----------
    problems
        One sentence per problem found, each naming the offending status, event or
        guard and saying what to change.
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        msg = f"invalid lifecycle definition: {'; '.join(self.problems)}"
        super().__init__(msg)


class _UnknownValue(LifecycleError, ValueError):
    """A value outside a closed set; subclasses name the set with ``noun``."""

    noun = "value"

    def __init__(self, value: object, valid: Iterable[str]) -> None:
        self.value = value
        self.valid = tuple(valid)
        msg = (
            f"unknown {self.noun} {value!r}: expected one of "
            f"{', '.join(self.valid)}{_suggestion(value, self.valid)}"
        )
        super().__init__(msg)


class UnknownStatus(_UnknownValue):
    """A value that is not a :class:`~nexuslims_lifecycle.enums.RecordStatus`.

    Parameters
    ----------
    value
        The value that was given.
    valid
        The exact values that would have been accepted.
    """

    noun = "record status"


class UnknownEvent(_UnknownValue):
    """A value that names no lifecycle event (trigger).

    Parameters
    ----------
    value
        The value that was given.
    valid
        The event names that would have been accepted.
    """

    noun = "lifecycle event"


class IllegalTransition(LifecycleError, ValueError):
    """An event that the lifecycle does not allow from a status.

    Parameters
    ----------
    status
        The status the move was tried from.
    event
        The event that was tried.
    allowed
        The events that are legal from ``status`` (empty when no event leaves it).
    index
        Position of the offending event in a replayed sequence, if any.
    """

    def __init__(
        self,
        status: str,
        event: str,
        allowed: Iterable[str],
        *,
        index: int | None = None,
    ) -> None:
        self.status = status
        self.event = event
        self.allowed = tuple(allowed)
        self.index = index
        where = f"step {index}: " if index is not None else ""
        legal = (
            f"legal from there: {', '.join(self.allowed)}"
            if self.allowed
            else f"no event leaves {status}"
        )
        msg = f"{where}cannot {event!r} from {status}: {legal}"
        super().__init__(msg)


class MissingEndTime(LifecycleError, ValueError):
    """A guarded move needs the session's end time, and it is not known.

    Parameters
    ----------
    session_identifier
        The session whose ``ended_at`` is missing.
    event
        The event that needed it.
    """

    def __init__(self, session_identifier: str, event: str) -> None:
        self.session_identifier = session_identifier
        self.event = event
        msg = (
            f"cannot decide {event!r} for session {session_identifier!r}: its end "
            "time is unknown; pass ended_at= when creating the Session (or end() it "
            "through this library) so the file delay can be measured"
        )
        super().__init__(msg)


class UnknownFormat(_UnknownValue):
    """A diagram format that :func:`nexuslims_lifecycle.diagrams.render` does not draw.

    Parameters
    ----------
    value
        The format that was asked for.
    valid
        The formats that would have been accepted.
    """

    noun = "diagram format"


class MissingExtra(LifecycleError, ImportError):
    """An optional feature needs a package that is not installed.

    Parameters
    ----------
    package
        The package that could not be imported, e.g. ``"pygraphviz"``.
    extra
        The extra of ``nexuslims-lifecycle`` that installs it, e.g. ``"render"``.
    feature
        What needed it, e.g. ``"SVG output"``.
    """

    def __init__(self, package: str, extra: str, feature: str) -> None:
        self.package = package
        self.extra = extra
        self.feature = feature
        msg = (
            f"{feature} needs {package}, which is not installed: install the {extra!r} "
            f"extra with: pip install 'nexuslims-lifecycle[{extra}]'"
        )
        super().__init__(msg, name=package)

    @classmethod
    def of_sql_extra(cls, error: ImportError, feature: str) -> MissingExtra | None:
        """Return the error naming the ``sql`` extra when ``error`` is about one of its packages.

        Parameters
        ----------
        error
            An ``ImportError`` raised while opening a database.
        feature
            What needed the package, e.g. ``"a PostgreSQL session log"``.

        Returns
        -------
        MissingExtra or None
            The error to raise instead, or None when ``error`` is about another package
            (which must then propagate as it is).
        """
        package = (error.name or "").partition(".")[0]
        return cls(package, "sql", feature) if package in _SQL_EXTRA_PACKAGES else None


_SQL_EXTRA_PACKAGES = frozenset(
    {"sqlalchemy", "psycopg", "psycopg2", "psycopg_binary", "psycopg_c"}
)
"""The packages the ``sql`` extra installs, and the drivers SQLAlchemy may import for them."""


class TransitionConflict(LifecycleError):
    """Another writer changed the session first; nothing was written.

    Read the session again and decide anew (or use
    :func:`nexuslims_lifecycle.store.retry_on_conflict`).

    Parameters
    ----------
    session_identifier
        The session that was contended.
    event
        The event this writer tried.
    expected
        The status this writer expected the session to be in (None if it did not say).
    current
        The status the session is in now, as far as this writer could see.
    holder
        The worker holding the session's build claim, when the claim was the conflict.
    """

    def __init__(
        self,
        session_identifier: str,
        event: str,
        *,
        expected: str | None,
        current: str | None,
        holder: str | None = None,
    ) -> None:
        self.session_identifier = session_identifier
        self.event = event
        self.expected = expected
        self.current = current
        self.holder = holder
        if holder is not None:
            why = f"its build is claimed by worker {holder!r}"
        elif expected is not None and expected != current:
            why = f"expected {expected}, but another writer moved it to {current}"
        elif current is None:
            why = "another writer changed it first"
        else:
            why = f"another writer moved it first (now {current})"
        msg = (
            f"conflict on session {session_identifier!r} for {event!r}: {why}; "
            "nothing was written: read the status again and retry if still wanted"
        )
        super().__init__(msg)


class UnknownSession(LifecycleError, LookupError):
    """No row of ``session_log`` has this session identifier.

    Parameters
    ----------
    session_identifier
        The identifier that was looked up.
    """

    def __init__(self, session_identifier: str) -> None:
        self.session_identifier = session_identifier
        msg = (
            f"unknown session {session_identifier!r}: no session_log row has this "
            "session_identifier; start it first or check the identifier"
        )
        super().__init__(msg)

    def __str__(self) -> str:
        """Return the message itself (``LookupError`` would quote it)."""
        return str(self.args[0])


class UnknownInstrument(LifecycleError, LookupError):
    """An instrument that the database's ``instruments`` table does not list.

    NexusLIMS fails a session whose instrument it does not know, so the store refuses
    to write one.

    Parameters
    ----------
    instrument
        The instrument that was given.
    known
        The instruments the table lists (``instrument_pid``).
    """

    def __init__(self, instrument: str, known: Iterable[str]) -> None:
        self.instrument = instrument
        self.known = tuple(known)
        listed = ", ".join(self.known[:10]) + (", ..." if len(self.known) > 10 else "")
        msg = (
            f"unknown instrument {instrument!r}: the instruments table lists "
            f"{listed or 'none'}; add it to NexusLIMS first (its instruments table), or "
            "check the name"
        )
        super().__init__(msg)

    def __str__(self) -> str:
        """Return the message itself (``LookupError`` would quote it)."""
        return str(self.args[0])


class SessionExists(LifecycleError, ValueError):
    """A session with this identifier has already been started.

    Parameters
    ----------
    session_identifier
        The identifier that is taken.
    status
        The existing session's status, if known.
    """

    def __init__(self, session_identifier: str, status: str | None = None) -> None:
        self.session_identifier = session_identifier
        self.status = status
        now = f" (now {status})" if status is not None else ""
        msg = (
            f"session {session_identifier!r} already exists{now}: a session starts "
            "once; advance it instead, or use a new identifier"
        )
        super().__init__(msg)


class FileDelayNotElapsed(LifecycleError):
    """``find_no_files`` came before the file delay elapsed; nothing was written.

    The session stays TO_BE_BUILT, to be tried again after ``ready_at``.

    Parameters
    ----------
    session_identifier
        The session.
    ended_at
        When the session ended (its END row's timestamp).
    ready_at
        The earliest time ``find_no_files`` is accepted.
    """

    def __init__(self, session_identifier: str, ended_at: datetime, ready_at: datetime) -> None:
        self.session_identifier = session_identifier
        self.ended_at = ended_at
        self.ready_at = ready_at
        msg = (
            f"cannot 'find_no_files' for session {session_identifier!r} yet: it ended at "
            f"{ended_at.isoformat()} and files may still arrive until "
            f"{ready_at.isoformat()}; it stays TO_BE_BUILT, try again after that"
        )
        super().__init__(msg)


class EmptySelection(LifecycleError, ValueError):
    """A selection of sessions that matches none of them; nothing was done.

    Parameters
    ----------
    criteria
        The selection in words, e.g. ``"started from 2024-01-01 to 2024-01-31"``.
    """

    def __init__(self, criteria: str) -> None:
        self.criteria = criteria
        msg = (
            f"no session matches the selection ({criteria}): nothing was moved; check the "
            "dates (a session is placed by its START row's time, in that row's own UTC "
            "offset) and the statuses, e.g. with `nexuslims-lifecycle sessions`"
        )
        super().__init__(msg)


class StoreError(LifecycleError):
    """The database cannot be used as a session log, or holds rows the lifecycle rejects.

    Parameters
    ----------
    message
        What is wrong and what to do about it.
    url
        The database, with any password hidden, if known.
    """

    def __init__(self, message: str, *, url: str | None = None) -> None:
        self.url = url
        super().__init__(message)


class InvalidArgument(LifecycleError, ValueError):
    """An argument that the store cannot use (empty identifier, naive time, bad lease).

    Parameters
    ----------
    name
        The parameter's name.
    value
        The value that was given.
    expected
        What would have been accepted.
    """

    def __init__(self, name: str, value: object, expected: str) -> None:
        self.name = name
        self.value = value
        self.expected = expected
        msg = f"invalid {name} {value!r}: expected {expected}"
        super().__init__(msg)


class InvalidConfiguration(LifecycleError, ValueError):
    """A setting read from the environment that cannot be used (e.g. ``NX_FILE_DELAY_DAYS``).

    Parameters
    ----------
    name
        The environment variable.
    value
        The text it holds.
    expected
        What would have been accepted, and what to do.
    """

    def __init__(self, name: str, value: str, expected: str) -> None:
        self.name = name
        self.value = value
        self.expected = expected
        msg = f"invalid configuration {name}={value!r}: expected {expected}"
        super().__init__(msg)


class UnusableDatabase(StoreError):
    """A database that cannot be opened or read, or lacks the tables we need.

    Parameters
    ----------
    url
        The database, as it was given (a path, or a URL with any password hidden).
    reason
        What is wrong with it.
    """

    def __init__(self, url: str, reason: str) -> None:
        self.reason = reason
        msg = f"cannot use database {url!r}: {reason}"
        super().__init__(msg, url=url)
