"""The errors the library raises.

Every error derives from :class:`LifecycleError`, so one ``except`` catches them
all. Errors about bad input also derive from :class:`ValueError`, so callers that
already catch ``ValueError`` keep working. Each error keeps the offending values
as attributes, and its message says what was wrong and what would be accepted.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "IllegalTransition",
    "InvalidDefinition",
    "LifecycleError",
    "MissingEndTime",
    "UnknownEvent",
    "UnknownStatus",
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


class UnknownStatus(LifecycleError, ValueError):
    """A value that is not a :class:`~nexuslims_lifecycle.enums.RecordStatus`.

    Parameters
    ----------
    value
        The value that was given.
    valid
        The exact values that would have been accepted.
    """

    def __init__(self, value: object, valid: Iterable[str]) -> None:
        self.value = value
        self.valid = tuple(valid)
        msg = (
            f"unknown record status {value!r}: expected one of "
            f"{', '.join(self.valid)}{_suggestion(value, self.valid)}"
        )
        super().__init__(msg)


class UnknownEvent(LifecycleError, ValueError):
    """A value that names no lifecycle event (trigger).

    Parameters
    ----------
    value
        The value that was given.
    valid
        The event names that would have been accepted.
    """

    def __init__(self, value: object, valid: Iterable[str]) -> None:
        self.value = value
        self.valid = tuple(valid)
        msg = (
            f"unknown lifecycle event {value!r}: expected one of "
            f"{', '.join(self.valid)}{_suggestion(value, self.valid)}"
        )
        super().__init__(msg)


class IllegalTransition(LifecycleError, ValueError):
    """An event that the lifecycle does not allow from a status.

    Parameters
    ----------
    status
        The status the move was tried from.
    event
        The event that was tried.
    allowed
        The events that are legal from ``status`` (empty for a terminal status).
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
            else f"{status} is terminal: no event leaves it"
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
