"""Questions about a lifecycle, answered from its own tables.

Every function answers from a :class:`~nexuslims_lifecycle.rules.Lifecycle`
(:data:`~nexuslims_lifecycle.rules.LIFECYCLE` unless ``lifecycle=`` names another),
whose lookup tables are computed once, when it is made: the same tables the machine
of :class:`~nexuslims_lifecycle.machine.Session` is built from, so the two cannot
disagree, and a lifecycle of your own gets answers for its own rules. Every function
accepts :class:`~nexuslims_lifecycle.enums.RecordStatus` members or their exact value
strings, and event names; anything else raises
:class:`~nexuslims_lifecycle.errors.UnknownStatus` or
:class:`~nexuslims_lifecycle.errors.UnknownEvent`.

Guards are not evaluated here: ``find_no_files`` counts as legal from TO_BE_BUILT.

``lifecycle`` is the last parameter of every function; pass it by keyword. It is not
keyword-only on purpose: CPython (3.11 to 3.13) does not specialize a call to a
function with keyword-only parameters, which would make each query about 25 ns
slower, past twice a bare dictionary lookup (``make bench-core``).

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

from collections.abc import Iterable

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import IllegalTransition
from nexuslims_lifecycle.rules import LIFECYCLE, EventName, Lifecycle, parse_event, parse_status

__all__ = [
    "allowed_events",
    "can",
    "is_final",
    "next_status",
    "next_statuses",
    "replay",
    "shortest_path",
]

# Each query tries the lifecycle's table first (a RecordStatus member and its value
# string find the same entry) and validates its input only when that lookup misses:
# the common, legal question costs one dictionary lookup.


def _illegal(
    lifecycle: Lifecycle, status: object, event: object, index: int | None = None
) -> IllegalTransition:
    """Validate both inputs (raising Unknown*) and build the IllegalTransition for them."""
    checked = parse_status(status)
    name = parse_event(event, lifecycle=lifecycle)
    return IllegalTransition(checked.value, name, lifecycle.allowed(checked), index=index)


def next_status(
    status: RecordStatus | str, event: EventName, lifecycle: Lifecycle = LIFECYCLE
) -> RecordStatus:
    """Return where ``event`` leads from ``status``, or raise if it is illegal there.

    This is the one check of a move: use it to guard a write you are about to make.

    Parameters
    ----------
    status
        The status to move from.
    event
        The event to fire.
    lifecycle
        The lifecycle to follow; :data:`~nexuslims_lifecycle.rules.LIFECYCLE` by default.

    Returns
    -------
    RecordStatus
        The destination.

    Raises
    ------
    IllegalTransition
        When the lifecycle does not allow ``event`` from ``status``; its message lists
        what is legal from there.
    UnknownStatus, UnknownEvent
        When ``status`` is not a status, or ``event`` not an event of ``lifecycle``.

    Examples
    --------
    >>> next_status("TO_BE_BUILT", "fail").value
    'ERROR'
    """
    try:
        return lifecycle.dest_of[status, event]  # type: ignore[index]
    except (KeyError, TypeError):
        raise _illegal(lifecycle, status, event) from None


def can(
    source: RecordStatus | str, dest: RecordStatus | str, lifecycle: Lifecycle = LIFECYCLE
) -> bool:
    """Return whether one event moves a session from ``source`` to ``dest``.

    Parameters
    ----------
    source, dest
        The two statuses.
    lifecycle
        The lifecycle to follow; :data:`~nexuslims_lifecycle.rules.LIFECYCLE` by default.

    Returns
    -------
    bool
        True when a single legal event makes that move.

    Raises
    ------
    UnknownStatus
        When either is not a status.

    Examples
    --------
    >>> can("COMPLETED", "TO_BE_BUILT")
    True
    >>> can("COMPLETED", "ERROR")
    False
    """
    try:
        return lifecycle.one_step[source, dest]  # type: ignore[index]
    except (KeyError, TypeError):
        return lifecycle.one_step[parse_status(source), parse_status(dest)]


def allowed_events(status: RecordStatus | str, lifecycle: Lifecycle = LIFECYCLE) -> tuple[str, ...]:
    """Return the events legal from ``status``, in table order.

    Parameters
    ----------
    status
        The status to ask about.
    lifecycle
        The lifecycle to follow; :data:`~nexuslims_lifecycle.rules.LIFECYCLE` by default.

    Returns
    -------
    tuple[str, ...]
        Event names; empty when no event leaves ``status``.

    Raises
    ------
    UnknownStatus
        When ``status`` is not a status.
    """
    try:
        return lifecycle.events_from[status]  # type: ignore[index]
    except (KeyError, TypeError):
        return lifecycle.events_from[parse_status(status)]


def next_statuses(
    status: RecordStatus | str, lifecycle: Lifecycle = LIFECYCLE
) -> tuple[RecordStatus, ...]:
    """Return the statuses one legal event leads to from ``status``, without repeats.

    Parameters
    ----------
    status
        The status to ask about.
    lifecycle
        The lifecycle to follow; :data:`~nexuslims_lifecycle.rules.LIFECYCLE` by default.

    Returns
    -------
    tuple[RecordStatus, ...]
        Destinations in table order; empty when no event leaves ``status``.

    Raises
    ------
    UnknownStatus
        When ``status`` is not a status.
    """
    return lifecycle.next_statuses(parse_status(status))


def is_final(status: RecordStatus | str, lifecycle: Lifecycle = LIFECYCLE) -> bool:
    """Return whether ``status`` is final: the builder is done, only an operator moves on.

    Parameters
    ----------
    status
        The status to ask about.
    lifecycle
        The lifecycle to follow; :data:`~nexuslims_lifecycle.rules.LIFECYCLE` by default.

    Returns
    -------
    bool
        True for a status of ``lifecycle.final`` (COMPLETED and NO_CONSENT by default).

    Raises
    ------
    UnknownStatus
        When ``status`` is not a status.

    Examples
    --------
    >>> is_final("COMPLETED"), is_final("ERROR")
    (True, False)
    """
    return parse_status(status) in lifecycle.final


def shortest_path(
    source: RecordStatus | str, dest: RecordStatus | str, lifecycle: Lifecycle = LIFECYCLE
) -> list[str] | None:
    """Return the fewest events that lead from ``source`` to ``dest``.

    Ties are broken by table order, so the answer is the same on every run.

    Parameters
    ----------
    source, dest
        The two statuses.
    lifecycle
        The lifecycle to follow; :data:`~nexuslims_lifecycle.rules.LIFECYCLE` by default.

    Returns
    -------
    list[str] or None
        The events in order (empty when ``source == dest``), or None when no legal
        history leads there.

    Raises
    ------
    UnknownStatus
        When either is not a status.

    Examples
    --------
    >>> shortest_path("ERROR", "NO_CONSENT")
    ['retry', 'deny_consent']
    >>> shortest_path("COMPLETED", "ERROR")
    ['reprocess', 'fail']
    >>> shortest_path("TO_BE_BUILT", "WAITING_FOR_END") is None
    True
    """
    path = lifecycle.shortest_path(parse_status(source), parse_status(dest))
    return None if path is None else list(path)


def replay(
    events: Iterable[EventName],
    start: RecordStatus | str | None = None,
    lifecycle: Lifecycle = LIFECYCLE,
) -> RecordStatus:
    """Return the status a session reaches by firing ``events`` from ``start``.

    Parameters
    ----------
    events
        Event names, in the order they fire.
    start
        Where the session begins; the lifecycle's initial status (WAITING_FOR_END)
        by default.
    lifecycle
        The lifecycle to follow; :data:`~nexuslims_lifecycle.rules.LIFECYCLE` by default.

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
    UnknownStatus
        When ``start`` is not a status.
    """
    status = lifecycle.initial if start is None else parse_status(start)
    dest_of = lifecycle.dest_of
    for index, event in enumerate(events):
        try:
            status = dest_of[status, event]
        except (KeyError, TypeError):
            raise _illegal(lifecycle, status, event, index) from None
    return status
