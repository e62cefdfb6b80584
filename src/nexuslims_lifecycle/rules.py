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

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Final, Literal, cast

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import InvalidDefinition, UnknownEvent, UnknownStatus

__all__ = [
    "ACTORS",
    "EVENTS",
    "FILE_DELAY",
    "FILE_DELAY_GUARD",
    "LIFECYCLE",
    "START_EVENT",
    "Actor",
    "EventName",
    "Lifecycle",
    "Rule",
    "file_delay_elapsed",
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

    Its lookup tables (the move of each (status, event), the events allowed from
    each status, the event between two statuses) are computed once, when it is
    made, and answered by its methods: the machine, :mod:`~nexuslims_lifecycle.legality`,
    the diagrams, the store and the command line all ask the lifecycle they follow.

    Parameters
    ----------
    rules
        The moves, in the order they are documented.
    initial
        The status every session starts in.
    final
        The statuses where the builder is done: only an operator moves a session on.

    Examples
    --------
    >>> LIFECYCLE.allowed(RecordStatus.ERROR)
    ('retry',)
    >>> LIFECYCLE.rule(RecordStatus.TO_BE_BUILT, "fail").dest.value
    'ERROR'
    >>> LIFECYCLE.event_between(RecordStatus.COMPLETED, RecordStatus.TO_BE_BUILT)
    'reprocess'
    """

    rules: tuple[Rule, ...]
    initial: RecordStatus
    final: frozenset[RecordStatus]
    _moves: Mapping[tuple[RecordStatus, str], Rule] = field(init=False, repr=False, compare=False)
    _between: Mapping[tuple[RecordStatus, RecordStatus], str] = field(
        init=False, repr=False, compare=False
    )
    dest_of: Mapping[tuple[RecordStatus, str], RecordStatus] = field(
        init=False, repr=False, compare=False
    )
    """Where each legal (status, event) leads (read-only): what ``next_status`` answers."""
    events_from: Mapping[RecordStatus, tuple[str, ...]] = field(
        init=False, repr=False, compare=False
    )
    """The events legal from each status, every status present (read-only; see :meth:`allowed`)."""
    one_step: Mapping[tuple[RecordStatus, RecordStatus], bool] = field(
        init=False, repr=False, compare=False
    )
    """Every (source, destination) pair: whether one event makes that move (read-only)."""

    def __post_init__(self) -> None:
        """Compute the lookup tables once (the first rule wins a duplicate (status, event))."""
        moves: dict[tuple[RecordStatus, str], Rule] = {}
        for rule in self.rules:
            for source in rule.sources:
                moves.setdefault((source, rule.event), rule)
        allowed = {
            status: tuple(event for (source, event) in moves if source is status)
            for status in RecordStatus
        }
        between: dict[tuple[RecordStatus, RecordStatus], str] = {}
        for (source, event), rule in moves.items():
            between.setdefault((source, rule.dest), event)
        object.__setattr__(self, "_moves", MappingProxyType(moves))
        object.__setattr__(self, "_between", MappingProxyType(between))
        # The three tables legality answers from, one lookup per query. A RecordStatus
        # hashes and compares like its value string, so "ERROR" finds RecordStatus.ERROR.
        # Plain dicts, typed read-only: CPython subscripts an exact dict in one
        # specialized step, and a MappingProxyType would make every query ~10 ns slower.
        dests = {key: rule.dest for key, rule in moves.items()}
        steps = {(s, d): (s, d) in between for s in RecordStatus for d in RecordStatus}
        object.__setattr__(self, "dest_of", dests)
        object.__setattr__(self, "events_from", allowed)
        object.__setattr__(self, "one_step", steps)

    @property
    def events(self) -> tuple[str, ...]:
        """Return the event names in the order they first appear in the rules."""
        return tuple(dict.fromkeys(rule.event for rule in self.rules))

    @property
    def moves(self) -> Mapping[tuple[RecordStatus, str], Rule]:
        """Return every legal (source, event) and the rule that moves it, in table order."""
        return self._moves

    def rule(self, status: RecordStatus, event: str) -> Rule | None:
        """Return the rule ``event`` follows from ``status``, or None when it is illegal.

        Parameters
        ----------
        status
            The status to move from.
        event
            The event to fire.

        Returns
        -------
        Rule or None
            The rule (its ``dest``, ``by`` and ``guard``), or None.
        """
        return self._moves.get((status, event))

    def allowed(self, status: RecordStatus) -> tuple[str, ...]:
        """Return the events legal from ``status``, in table order (guards aside).

        Parameters
        ----------
        status
            The status to ask about.

        Returns
        -------
        tuple[str, ...]
            Event names; empty when no event leaves ``status``.
        """
        return self.events_from[status]

    def next_statuses(self, status: RecordStatus) -> tuple[RecordStatus, ...]:
        """Return the statuses one legal event leads to from ``status``, without repeats.

        Parameters
        ----------
        status
            The status to ask about.

        Returns
        -------
        tuple[RecordStatus, ...]
            Destinations in table order.
        """
        return tuple(dict.fromkeys(self.dest_of[status, e] for e in self.events_from[status]))

    def event_between(self, source: RecordStatus, dest: RecordStatus) -> str | None:
        """Return the event that moves ``source`` to ``dest``, or None when none does.

        Parameters
        ----------
        source, dest
            The two statuses.

        Returns
        -------
        str or None
            The event name (one per pair in a valid lifecycle), or None.
        """
        return self._between.get((source, dest))

    def shortest_path(self, source: RecordStatus, dest: RecordStatus) -> tuple[str, ...] | None:
        """Return the fewest events that lead from ``source`` to ``dest``.

        Ties are broken by table order, so the answer is the same on every run.

        Parameters
        ----------
        source, dest
            The two statuses.

        Returns
        -------
        tuple[str, ...] or None
            The events in order (empty when ``source is dest``), or None when no
            legal history leads there.
        """
        paths: dict[RecordStatus, tuple[str, ...]] = {source: ()}
        queue = deque([source])
        while queue:
            here = queue.popleft()
            if here is dest:
                return paths[here]
            for event in self.events_from[here]:
                there = self.dest_of[here, event]
                if there not in paths:
                    paths[there] = (*paths[here], event)
                    queue.append(there)
        return None

    def guarded_by(self, guard: str) -> frozenset[str]:
        """Return the events whose rules carry the guard named ``guard``.

        Parameters
        ----------
        guard
            A guard name, e.g. :data:`FILE_DELAY_GUARD`.

        Returns
        -------
        frozenset[str]
            Event names; empty when no rule names that guard.
        """
        return frozenset(rule.event for rule in self.rules if rule.guard == guard)


FILE_DELAY_GUARD: Final = "file_delay_elapsed"
"""The guard of a move that must wait for the file delay after the session ended.

It is ``find_no_files``'s in :data:`LIFECYCLE`: the name of the
:class:`~nexuslims_lifecycle.machine.Session` method that checks it, and the one name
the store, the audit and the test kit look for in :attr:`Rule.guard`."""


def file_delay_elapsed(ended_at: datetime, now: datetime, delay: timedelta) -> bool:
    """Return whether ``delay`` has passed between ``ended_at`` and ``now``.

    The one test of the :data:`FILE_DELAY_GUARD`, used by the session, the store, the
    audit and the test kit alike.

    Parameters
    ----------
    ended_at
        When the session ended (timezone-aware).
    now
        The time to judge at (timezone-aware).
    delay
        The file delay.

    Returns
    -------
    bool
        True when ``now - ended_at >= delay``.

    Examples
    --------
    >>> from datetime import UTC
    >>> end = datetime(2026, 1, 1, tzinfo=UTC)
    >>> file_delay_elapsed(end, end + FILE_DELAY, FILE_DELAY)
    True
    """
    return now - ended_at >= delay


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
            guard=FILE_DELAY_GUARD,
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


def parse_event(value: object, *, lifecycle: Lifecycle = LIFECYCLE) -> EventName:
    """Return the event name for an exact event string.

    Parameters
    ----------
    value
        An event name such as ``"retry"``.
    lifecycle
        The lifecycle whose events are accepted; :data:`LIFECYCLE` by default.

    Returns
    -------
    EventName
        The same name, checked. (A lifecycle of its own may name events that
        :data:`EventName` does not list; they pass under the same type.)

    Raises
    ------
    UnknownEvent
        When ``value`` names no event of ``lifecycle``, listing its events.

    Examples
    --------
    >>> parse_event("retry")
    'retry'
    """
    events = EVENTS if lifecycle is LIFECYCLE else lifecycle.events
    if isinstance(value, str) and value in events:
        return cast("EventName", value)
    raise UnknownEvent(value, events)


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
