"""The lifecycle of a NexusLIMS session, as data.

This table is the one place a move is defined. The machine, the legality queries,
the diagrams, the store and the audit are all built from
:data:`~nexuslims_lifecycle.rules.LIFECYCLE`.

Examples
--------
>>> from nexuslims_lifecycle.rules import LIFECYCLE
>>> [rule.event for rule in LIFECYCLE.rules][:3]
['end', 'complete', 'complete']
>>> LIFECYCLE.initial.value
'WAITING_FOR_END'
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Literal

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import InvalidDefinition, UnknownEvent, UnknownStatus

__all__ = [
    "ACTORS",
    "EVENTS",
    "FILE_DELAY",
    "LIFECYCLE",
    "START_EVENT",
    "Actor",
    "EventName",
    "Lifecycle",
    "Rule",
    "parse_event",
    "parse_status",
    "validate",
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
    "reprocess",
]
"""The name of a lifecycle event (a trigger of the machine)."""

Actor = Literal["harvester", "builder", "exporter", "operator"]
"""Who makes a move in a NexusLIMS deployment."""

ACTORS: Final[tuple[Actor, ...]] = ("harvester", "builder", "exporter", "operator")
"""Every :data:`Actor`, in the order a session meets them."""

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
    by
        Who makes the move: the NEMO ``harvester``, the record ``builder``, the
        ``exporter`` or an ``operator``.
    guard
        Name of a ``Session`` method that must return True for the move to happen.
    """

    event: str
    sources: tuple[RecordStatus, ...]
    dest: RecordStatus
    meaning: str
    by: Actor
    guard: str | None = None


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """A whole lifecycle: its rules, its initial status and its final statuses.

    Parameters
    ----------
    rules
        The moves, in the order they are documented.
    initial
        The status every session starts in.
    final
        The statuses where the builder is done: only an operator moves a session on.
    """

    rules: tuple[Rule, ...]
    initial: RecordStatus
    final: frozenset[RecordStatus]

    @property
    def events(self) -> tuple[str, ...]:
        """Return the event names in the order they first appear in the rules."""
        return tuple(dict.fromkeys(rule.event for rule in self.rules))


LIFECYCLE: Final = Lifecycle(
    rules=(
        Rule(
            "end",
            (_S.WAITING_FOR_END,),
            _S.TO_BE_BUILT,
            "the session's END was logged",
            by="harvester",
        ),
        Rule(
            "complete",
            (_S.TO_BE_BUILT,),
            _S.COMPLETED,
            "record built, validated and exported as the export strategy requires",
            by="builder",
        ),
        Rule(
            "complete",
            (_S.BUILT_NOT_EXPORTED,),
            _S.COMPLETED,
            "a later export of the already built record succeeded",
            by="exporter",
        ),
        Rule(
            "fail_export",
            (_S.TO_BE_BUILT,),
            _S.BUILT_NOT_EXPORTED,
            "record built, but the export strategy was not satisfied",
            by="builder",
        ),
        Rule(
            "fail",
            (_S.TO_BE_BUILT,),
            _S.ERROR,
            "building raised, or the record failed schema validation",
            by="builder",
        ),
        Rule(
            "find_no_files",
            (_S.TO_BE_BUILT,),
            _S.NO_FILES_FOUND,
            "no files found and the file delay has elapsed since the session ended",
            by="builder",
            guard="file_delay_elapsed",
        ),
        Rule(
            "deny_consent",
            (_S.TO_BE_BUILT,),
            _S.NO_CONSENT,
            "the user did not consent to data harvesting",
            by="builder",
        ),
        Rule(
            "find_no_reservation",
            (_S.TO_BE_BUILT,),
            _S.NO_RESERVATION,
            "no matching reservation",
            by="builder",
        ),
        Rule(
            "retry",
            (_S.ERROR, _S.NO_FILES_FOUND, _S.NO_RESERVATION, _S.BUILT_NOT_EXPORTED),
            _S.TO_BE_BUILT,
            "an operator requeues the session for another build",
            by="operator",
        ),
        Rule(
            "reprocess",
            (_S.COMPLETED, _S.NO_CONSENT),
            _S.TO_BE_BUILT,
            "an operator has a finished record built again (an extractor was fixed, "
            "consent came later)",
            by="operator",
        ),
    ),
    initial=_S.WAITING_FOR_END,
    final=frozenset({_S.COMPLETED, _S.NO_CONSENT}),
)
"""The NexusLIMS session lifecycle: the contract every other module follows."""

EVENTS: Final[tuple[str, ...]] = LIFECYCLE.events
"""Every event name, in table order."""

START_EVENT: Final = "start"
"""The event of a session's first ``status_history`` entry (no status before it).

Not a lifecycle event: a session is created in the initial status, never moved there.
"""

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
        When ``value`` names no event of :data:`~nexuslims_lifecycle.rules.LIFECYCLE`.

    Examples
    --------
    >>> parse_event("retry")
    'retry'
    """
    if isinstance(value, str) and value in _EVENT_SET:
        return value
    raise UnknownEvent(value, EVENTS)


def validate(lifecycle: Lifecycle, model: type | None = None) -> None:
    """Raise unless ``lifecycle`` is a definition a session can live by.

    Every lifecycle must keep these rules; each broken one is reported:

    - each (status, event) has at most one move;
    - each (source, destination) pair has exactly one event, so a status change read
      from a database names the event that made it;
    - every :class:`~nexuslims_lifecycle.enums.RecordStatus` member is mentioned by some rule;
    - every status is reachable from the initial status;
    - only an operator's move leaves a final status (the builder is done there);
    - from every status some final status can be reached. A *resting* status (ERROR,
      BUILT_NOT_EXPORTED, NO_FILES_FOUND, NO_RESERVATION), where a session waits for
      an operator or the exporter, passes because ``retry`` leads back to
      TO_BE_BUILT; a status with no way out that is not declared final, or a loop
      with no exit, does not;
    - every guard names a method of ``model`` (checked only when ``model`` is given).

    Parameters
    ----------
    lifecycle
        The definition to check.
    model
        The class whose methods the guards name (e.g.
        :class:`~nexuslims_lifecycle.machine.Session`).

    Raises
    ------
    InvalidDefinition
        Listing every problem found, in the order above.

    Examples
    --------
    >>> validate(LIFECYCLE)
    >>> broken = Lifecycle(LIFECYCLE.rules, LIFECYCLE.initial, frozenset({_S.TO_BE_BUILT}))
    >>> validate(broken)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    nexuslims_lifecycle.errors.InvalidDefinition: ...: TO_BE_BUILT is final but 'complete' ...
    """
    problems = [
        *_duplicate_moves(lifecycle),
        *_ambiguous_changes(lifecycle),
        *_unmentioned(lifecycle),
        *_unreachable(lifecycle),
        *_final_exits(lifecycle),
        *_unfinishable(lifecycle),
        *_unresolved_guards(lifecycle, model),
    ]
    if problems:
        raise InvalidDefinition(problems)


def _moves(lifecycle: Lifecycle) -> Iterator[tuple[RecordStatus, str, RecordStatus]]:
    """Yield every (source, event, destination) of the table, in table order."""
    for rule in lifecycle.rules:
        for source in rule.sources:
            yield source, rule.event, rule.dest


def _mentioned(lifecycle: Lifecycle) -> set[RecordStatus]:
    """Return the statuses some rule moves from or to."""
    return {status for source, _, dest in _moves(lifecycle) for status in (source, dest)}


def _closure(
    start: set[RecordStatus], edges: list[tuple[RecordStatus, RecordStatus]]
) -> set[RecordStatus]:
    """Return every status reachable from ``start`` along ``edges`` (start included)."""
    seen = set(start)
    frontier = list(start)
    while frontier:
        here = frontier.pop()
        for source, dest in edges:
            if source is here and dest not in seen:
                seen.add(dest)
                frontier.append(dest)
    return seen


def _duplicate_moves(lifecycle: Lifecycle) -> Iterator[str]:
    """Report each (status, event) that has more than one move."""
    dests: dict[tuple[RecordStatus, str], list[str]] = {}
    for source, event, dest in _moves(lifecycle):
        dests.setdefault((source, event), []).append(dest.value)
    for (source, event), found in dests.items():
        if len(found) > 1:
            yield (
                f"{source.value} has {len(found)} moves for {event!r} (to {', '.join(found)}): "
                "keep one rule per status and event"
            )


def _unmentioned(lifecycle: Lifecycle) -> Iterator[str]:
    """Report each RecordStatus member that no rule moves from or to."""
    mentioned = _mentioned(lifecycle)
    for status in RecordStatus:
        if status not in mentioned:
            yield (
                f"no rule mentions {status.value}: every RecordStatus member needs a rule "
                "that leads to it"
            )


def _unreachable(lifecycle: Lifecycle) -> Iterator[str]:
    """Report each mentioned status that no sequence of moves reaches from the initial one."""
    edges = [(source, dest) for source, _, dest in _moves(lifecycle)]
    reached = _closure({lifecycle.initial}, edges)
    mentioned = _mentioned(lifecycle)
    for status in RecordStatus:
        if status in mentioned and status not in reached:
            yield (
                f"{status.value} is unreachable from the initial status "
                f"{lifecycle.initial.value}: add a move that leads to it"
            )


def _ambiguous_changes(lifecycle: Lifecycle) -> Iterator[str]:
    """Report each (source, destination) pair that more than one event makes."""
    events: dict[tuple[RecordStatus, RecordStatus], list[str]] = {}
    for source, event, dest in _moves(lifecycle):
        events.setdefault((source, dest), []).append(event)
    for (source, dest), found in events.items():
        if len(found) > 1:
            yield (
                f"{source.value} -> {dest.value} is made by {len(found)} events "
                f"({', '.join(map(repr, found))}): keep one, so a status change read from "
                "the database names its event"
            )


def _final_exits(lifecycle: Lifecycle) -> Iterator[str]:
    """Report each move out of a final status that is not an operator's."""
    for rule in lifecycle.rules:
        for source in rule.sources:
            if source in lifecycle.final and rule.by != "operator":
                yield (
                    f"{source.value} is final but {rule.event!r} (by the {rule.by}) leads "
                    f"out of it (to {rule.dest.value}): only an operator moves a session "
                    f"on from a final status; make the move an operator's, or do not "
                    f"declare {source.value} final"
                )


def _unfinishable(lifecycle: Lifecycle) -> Iterator[str]:
    """Report each status from which no final status can be reached."""
    backwards = [(dest, source) for source, _, dest in _moves(lifecycle)]
    finishing = _closure(set(lifecycle.final), backwards)
    names = ", ".join(sorted(status.value for status in lifecycle.final)) or "none declared"
    mentioned = _mentioned(lifecycle)
    for status in RecordStatus:
        if status in mentioned and status not in finishing:
            yield (
                f"{status.value} is not final and no final status ({names}) can be "
                "reached from it: a session there could never finish; add a move out of it, "
                "or declare it final"
            )


def _unresolved_guards(lifecycle: Lifecycle, model: type | None) -> Iterator[str]:
    """Report each guard that names no method of ``model``."""
    if model is None:
        return
    for rule in lifecycle.rules:
        if rule.guard is not None and not callable(getattr(model, rule.guard, None)):
            yield (
                f"the guard {rule.guard!r} of {rule.event!r} does not resolve: "
                f"{model.__name__} has no method {rule.guard!r}; name a method that "
                "returns whether the move may happen"
            )
