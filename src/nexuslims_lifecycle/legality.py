"""Questions about the lifecycle, answered from the machine.

The tables here are read once, at import, from the shared ``transitions`` machine
(not from a second hand-written table), so they cannot disagree with what
:class:`~nexuslims_lifecycle.machine.Session` does. Every function accepts
:class:`~nexuslims_lifecycle.enums.RecordStatus` members or their exact value
strings, and event names; anything else raises
:class:`~nexuslims_lifecycle.errors.UnknownStatus` or
:class:`~nexuslims_lifecycle.errors.UnknownEvent`.

Guards are not evaluated here: ``find_no_files`` counts as legal from TO_BE_BUILT.

Examples
--------
>>> from nexuslims_lifecycle import legality
>>> legality.can("ERROR", "TO_BE_BUILT")
True
>>> legality.shortest_path("WAITING_FOR_END", "COMPLETED")
['end', 'complete']
>>> legality.replay(["end", "fail", "retry", "complete"]).value
'COMPLETED'
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Final

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import IllegalTransition
from nexuslims_lifecycle.machine import lifecycle_machine
from nexuslims_lifecycle.rules import LIFECYCLE, parse_event, parse_status

__all__ = [
    "allowed_events",
    "can",
    "check",
    "is_final",
    "next_status",
    "next_statuses",
    "replay",
    "shortest_path",
]


def _compile() -> dict[tuple[RecordStatus, str], RecordStatus]:
    """Read every (source, event) -> destination from the shared machine."""
    table = {}
    for name, event in lifecycle_machine().events.items():
        for source, transitions in event.transitions.items():
            for transition in transitions:
                table[RecordStatus[source], name] = RecordStatus[str(transition.dest)]
    return table


# RecordStatus members hash and compare like their value strings, so these tables
# answer for "ERROR" as fast as for RecordStatus.ERROR.
_NEXT: Final = _compile()
_ALLOWED: Final = {
    status: tuple(event for (source, event) in _NEXT if source is status) for status in RecordStatus
}
_EDGES: Final = frozenset((source, dest) for (source, _), dest in _NEXT.items())
# Every (source, dest) pair answered in one lookup, as next_status answers (status, event).
_CAN: Final = {
    (source, dest): (source, dest) in _EDGES for source in RecordStatus for dest in RecordStatus
}
_FINAL: Final = LIFECYCLE.final


def _illegal(status: object, event: object, index: int | None = None) -> IllegalTransition:
    """Validate both inputs (raising Unknown*) and build the IllegalTransition for them."""
    checked = parse_status(status)
    name = parse_event(event)
    return IllegalTransition(checked.value, name, _ALLOWED[checked], index=index)


def next_status(status: RecordStatus | str, event: str) -> RecordStatus:
    """Return where ``event`` leads from ``status``.

    Parameters
    ----------
    status
        The status to move from.
    event
        The event to fire.

    Returns
    -------
    RecordStatus
        The destination.

    Raises
    ------
    IllegalTransition
        When the lifecycle does not allow ``event`` from ``status``.

    Examples
    --------
    >>> next_status("TO_BE_BUILT", "fail").value
    'ERROR'
    """
    try:
        return _NEXT[status, event]  # type: ignore[index]
    except (KeyError, TypeError):
        raise _illegal(status, event) from None


def check(status: RecordStatus | str, event: str) -> None:
    """Raise unless the lifecycle allows ``event`` from ``status``.

    Parameters
    ----------
    status
        The status to move from.
    event
        The event to fire.

    Raises
    ------
    IllegalTransition
        When the move is illegal; its message lists what is legal from there.
    """
    next_status(status, event)


def can(source: RecordStatus | str, dest: RecordStatus | str) -> bool:
    """Return whether one event moves a session from ``source`` to ``dest``.

    Parameters
    ----------
    source, dest
        The two statuses.

    Returns
    -------
    bool
        True when a single legal event makes that move.

    Examples
    --------
    >>> can("COMPLETED", "TO_BE_BUILT")
    True
    >>> can("COMPLETED", "ERROR")
    False
    """
    try:
        return _CAN[source, dest]  # type: ignore[index]
    except (KeyError, TypeError):
        return _CAN[parse_status(source), parse_status(dest)]


def allowed_events(status: RecordStatus | str) -> tuple[str, ...]:
    """Return the events legal from ``status``, in table order.

    Parameters
    ----------
    status
        The status to ask about.

    Returns
    -------
    tuple[str, ...]
        Event names; empty when no event leaves ``status``.
    """
    try:
        return _ALLOWED[status]  # type: ignore[index]
    except (KeyError, TypeError):
        return _ALLOWED[parse_status(status)]


def next_statuses(status: RecordStatus | str) -> tuple[RecordStatus, ...]:
    """Return the statuses one legal event leads to from ``status``, without repeats.

    Parameters
    ----------
    status
        The status to ask about.

    Returns
    -------
    tuple[RecordStatus, ...]
        Destinations in table order; empty when no event leaves ``status``.
    """
    checked = parse_status(status)
    return tuple(dict.fromkeys(_NEXT[checked, event] for event in _ALLOWED[checked]))


def is_final(status: RecordStatus | str) -> bool:
    """Return whether ``status`` is final: the builder is done, only an operator moves on.

    Parameters
    ----------
    status
        The status to ask about.

    Returns
    -------
    bool
        True for COMPLETED and NO_CONSENT.

    Examples
    --------
    >>> is_final("COMPLETED"), is_final("ERROR")
    (True, False)
    """
    return parse_status(status) in _FINAL


def shortest_path(source: RecordStatus | str, dest: RecordStatus | str) -> list[str] | None:
    """Return the fewest events that lead from ``source`` to ``dest``.

    Ties are broken by table order, so the answer is the same on every run.

    Parameters
    ----------
    source, dest
        The two statuses.

    Returns
    -------
    list[str] or None
        The events in order (empty when ``source == dest``), or None when no legal
        history leads there.

    Examples
    --------
    >>> shortest_path("ERROR", "NO_CONSENT")
    ['retry', 'deny_consent']
    >>> shortest_path("COMPLETED", "ERROR")
    ['reprocess', 'fail']
    >>> shortest_path("TO_BE_BUILT", "WAITING_FOR_END") is None
    True
    """
    start, goal = parse_status(source), parse_status(dest)
    paths: dict[RecordStatus, list[str]] = {start: []}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        if here is goal:
            return paths[here]
        for event in _ALLOWED[here]:
            there = _NEXT[here, event]
            if there not in paths:
                paths[there] = [*paths[here], event]
                queue.append(there)
    return None


def replay(
    events: Iterable[str], start: RecordStatus | str = RecordStatus.WAITING_FOR_END
) -> RecordStatus:
    """Return the status a session reaches by firing ``events`` from ``start``.

    Parameters
    ----------
    events
        Event names, in the order they fire.
    start
        Where the session begins.

    Returns
    -------
    RecordStatus
        The final status.

    Raises
    ------
    IllegalTransition
        At the first illegal step; its ``index`` is that step's position.
    UnknownEvent
        When an event name is not one of the lifecycle's.
    """
    status = parse_status(start)
    for index, event in enumerate(events):
        try:
            status = _NEXT[status, event]
        except (KeyError, TypeError):
            raise _illegal(status, event, index) from None
    return status
