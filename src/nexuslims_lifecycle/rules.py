"""The lifecycle of a NexusLIMS session, as data.

This table is the one place a move is defined. The machine, the legality queries,
the diagrams, the store and the audit are all built from :data:`LIFECYCLE`.

Examples
--------
>>> from nexuslims_lifecycle.rules import LIFECYCLE
>>> [rule.event for rule in LIFECYCLE.rules][:3]
['end', 'complete', 'complete']
>>> LIFECYCLE.initial.value
'WAITING_FOR_END'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Literal

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import UnknownEvent, UnknownStatus

__all__ = [
    "EVENTS",
    "FILE_DELAY",
    "LIFECYCLE",
    "EventName",
    "Lifecycle",
    "Rule",
    "parse_event",
    "parse_status",
]

EventName = Literal[
    "end",
    "complete",
    "fail_export",
    "fail",
    "find_no_files",
    "deny_consent",
    "find_no_reservation",
    "retry",
]
"""The name of a lifecycle event (a trigger of the machine)."""

FILE_DELAY: Final = timedelta(days=2)
"""How long after a session ends ``find_no_files`` waits (NexusLIMS's NX_FILE_DELAY_DAYS)."""

_S = RecordStatus


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the lifecycle table: an event, where it may fire, where it leads.

    Parameters
    ----------
    event
        The trigger name, e.g. ``"complete"``.
    sources
        The statuses the event may fire from.
    dest
        The status the event leads to.
    meaning
        What happened in NexusLIMS when this move is made.
    guard
        Name of a ``Session`` method that must return True for the move to happen.
    """

    event: str
    sources: tuple[RecordStatus, ...]
    dest: RecordStatus
    meaning: str
    guard: str | None = None


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """A whole lifecycle: its rules, its initial status and its terminal statuses.

    Parameters
    ----------
    rules
        The moves, in the order they are documented.
    initial
        The status every session starts in.
    terminal
        The statuses with no way out.
    """

    rules: tuple[Rule, ...]
    initial: RecordStatus
    terminal: frozenset[RecordStatus]

    @property
    def events(self) -> tuple[str, ...]:
        """Return the event names in the order they first appear in the rules."""
        return tuple(dict.fromkeys(rule.event for rule in self.rules))


LIFECYCLE: Final = Lifecycle(
    rules=(
        Rule("end", (_S.WAITING_FOR_END,), _S.TO_BE_BUILT, "the session's END was logged"),
        Rule(
            "complete",
            (_S.TO_BE_BUILT,),
            _S.COMPLETED,
            "record built, validated and exported as the export strategy requires",
        ),
        Rule(
            "complete",
            (_S.BUILT_NOT_EXPORTED,),
            _S.COMPLETED,
            "a later export of the already built record succeeded",
        ),
        Rule(
            "fail_export",
            (_S.TO_BE_BUILT,),
            _S.BUILT_NOT_EXPORTED,
            "record built, but the export strategy was not satisfied",
        ),
        Rule(
            "fail",
            (_S.TO_BE_BUILT,),
            _S.ERROR,
            "building raised, or the record failed schema validation",
        ),
        Rule(
            "find_no_files",
            (_S.TO_BE_BUILT,),
            _S.NO_FILES_FOUND,
            "no files found and the file delay has elapsed since the session ended",
            guard="file_delay_elapsed",
        ),
        Rule(
            "deny_consent",
            (_S.TO_BE_BUILT,),
            _S.NO_CONSENT,
            "the user did not consent to data harvesting",
        ),
        Rule(
            "find_no_reservation",
            (_S.TO_BE_BUILT,),
            _S.NO_RESERVATION,
            "no matching reservation",
        ),
        Rule(
            "retry",
            (_S.ERROR, _S.NO_FILES_FOUND, _S.NO_RESERVATION, _S.BUILT_NOT_EXPORTED),
            _S.TO_BE_BUILT,
            "an operator requeues the session for another build",
        ),
    ),
    initial=_S.WAITING_FOR_END,
    terminal=frozenset({_S.COMPLETED, _S.NO_CONSENT}),
)
"""The NexusLIMS session lifecycle: the contract every other module follows."""

EVENTS: Final[tuple[str, ...]] = LIFECYCLE.events
"""Every event name, in table order."""

_STATUS_VALUES: Final = tuple(status.value for status in RecordStatus)
_EVENT_SET: Final = frozenset(EVENTS)


def parse_status(value: object) -> RecordStatus:
    """Return the :class:`~.enums.RecordStatus` for a member or its exact value string.

    Parameters
    ----------
    value
        A ``RecordStatus`` member, or exactly its value (``"TO_BE_BUILT"``).

    Returns
    -------
    RecordStatus
        The matching member.

    Raises
    ------
    UnknownStatus
        For anything else (wrong case, typos, ``None``, numbers), naming the valid values.

    Examples
    --------
    >>> parse_status("ERROR")
    <RecordStatus.ERROR: 'ERROR'>
    """
    if isinstance(value, RecordStatus):
        return value
    if isinstance(value, str):
        try:
            return RecordStatus(value)
        except ValueError:
            pass
    raise UnknownStatus(value, _STATUS_VALUES)


def parse_event(value: object) -> str:
    """Return the event name for an exact event string.

    Parameters
    ----------
    value
        An event name such as ``"retry"``.

    Returns
    -------
    str
        The same name, checked.

    Raises
    ------
    UnknownEvent
        When ``value`` names no event of :data:`LIFECYCLE`.

    Examples
    --------
    >>> parse_event("retry")
    'retry'
    """
    if isinstance(value, str) and value in _EVENT_SET:
        return value
    raise UnknownEvent(value, EVENTS)
