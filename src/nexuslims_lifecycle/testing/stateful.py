"""A ready stateful test: subclass :class:`LifecycleStateMachine` to check your own code.

It drives a session (a :class:`~nexuslims_lifecycle.machine.Session` subclass with
hooks, a store, a listener) through random legal and illegal events and checks,
after every step, that the session still behaves as the lifecycle says, and that
its listeners were told the truth, including moves its hooks made. This module
needs Hypothesis (the ``test`` extra).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Any, ClassVar, NamedTuple

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from nexuslims_lifecycle import legality
from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import IllegalTransition
from nexuslims_lifecycle.machine import Session
from nexuslims_lifecycle.rules import (
    EVENTS,
    FILE_DELAY,
    FILE_DELAY_GUARD,
    LIFECYCLE,
    Lifecycle,
    Rule,
    file_delay_elapsed,
)
from nexuslims_lifecycle.testing.strategies import (
    _AROUND_THE_DELAY,
    _DELAYS,
    _END_TIMES,
    _NEMO_USAGE_EVENT,
    _NOT_ENDED,
)

__all__ = ["LifecycleStateMachine"]


class _Reference:
    """The strategies a lifecycle table gives rise to, built once per table."""

    __slots__ = ("any_event", "legal_event", "timed")

    def __init__(self, lifecycle: Lifecycle) -> None:
        # Strategies built once: building one per step costs more than the step.
        self.any_event = st.sampled_from(tuple(dict.fromkeys((*lifecycle.events, *EVENTS))))
        self.legal_event = {
            status: st.sampled_from(lifecycle.allowed(status))
            for status in RecordStatus
            if lifecycle.allowed(status)
        }
        self.timed = lifecycle.guarded_by(FILE_DELAY_GUARD)


@cache
def _reference(lifecycle: Lifecycle) -> _Reference:
    """Return the reference for ``lifecycle``, built once per table."""
    return _Reference(lifecycle)


class _Told(NamedTuple):
    """One move a listener was told of."""

    event: str
    source: RecordStatus
    dest: RecordStatus

    def __str__(self) -> str:
        """Return ``event: SOURCE -> DEST``."""
        return f"{self.event}: {_shown(self.source)} -> {_shown(self.dest)}"


class _Snapshot(NamedTuple):
    """What an illegal move or a held-back guard must leave as it was."""

    status: object
    ended_at: object

    def __str__(self) -> str:
        """Return ``<STATUS> (ended at <time>)``."""
        return f"{_shown(self.status)} (ended at {self.ended_at})"


def _shown(status: object) -> str:
    """Return a status as messages show it: the member's value, or the repr of anything else."""
    return status.value if isinstance(status, RecordStatus) else repr(status)


def _require(condition: bool, message: str) -> None:
    """Fail the stateful test with ``message`` unless ``condition`` holds."""
    if not condition:
        raise AssertionError(message)


def _call(event: str, arguments: dict[str, Any]) -> str:
    """Return ``event(name=value, ...)`` for failure messages."""
    shown = ", ".join(f"{name}={value!r}" for name, value in arguments.items())
    return f"{event}({shown})"


class LifecycleStateMachine(RuleBasedStateMachine):
    """A stateful test that drives one session through random events against the lifecycle.

    Each step fires an event, legal or not, with drawn arguments (``end(at=...)``,
    ``find_no_files(now=..., delay=...)`` on both sides of the file delay), and
    checks that:

    - an illegal event raises :class:`~nexuslims_lifecycle.errors.IllegalTransition`
      naming the status and the event, and changes nothing (status, ``ended_at``);
    - a legal event returns True and reaches the table's destination, or, held back
      by its guard, returns False and changes nothing;
    - the file-delay guard lets the move happen exactly when the delay has passed
      since the session ended;
    - ``may_<event>()``, asked just before, said what the event then did;
    - the session class's listeners (:meth:`~nexuslims_lifecycle.machine.Session.add_listener`)
      were told each move, with its own event, source and destination, in order:
      the moves form a chain of lifecycle moves from the status before the step to
      the status after it, the event fired is among them, and a call that did not
      move told nothing. Moves made by the class's hooks (an ``on_enter_ERROR``
      that fires ``retry()``) are followed: the session is then expected where the
      last of them led.

    After every step these invariants hold: the status is a
    :class:`~nexuslims_lifecycle.enums.RecordStatus`,
    the one the lifecycle says; only an operator's move leaves a final status;
    ``allowed_events()`` agrees with the lifecycle (and with
    :mod:`~nexuslims_lifecycle.legality` when checking
    :data:`~nexuslims_lifecycle.rules.LIFECYCLE`).

    Subclass it to check your own code: set :attr:`session_class` (or override
    :meth:`make_session`), add ``@invariant()`` or ``@rule()`` methods of your
    own, and expose ``TestYours = YourMachine.TestCase`` to pytest. A subclass that
    overrides :meth:`teardown` calls ``super().teardown()``, which stops listening.

    Attributes
    ----------
    session_class
        The class whose instances are driven;
        :class:`~nexuslims_lifecycle.machine.Session` by default.
    lifecycle
        The table the session is checked against (the expected model);
        :data:`~nexuslims_lifecycle.rules.LIFECYCLE` by default. Set it to a table
        of your own to check a session against an independent definition.
    session
        The session being driven.
    expected
        Where the lifecycle says the session is now.
    """

    session_class: ClassVar[type[Session]] = Session
    lifecycle: ClassVar[Lifecycle] = LIFECYCLE

    def __init__(self) -> None:
        super().__init__()
        self.reference = _reference(self.lifecycle)
        self.expected: RecordStatus = self.lifecycle.initial
        self.ended_at: datetime | None = None
        self.last_move: tuple[RecordStatus, Rule] | None = None
        self.session = self.make_session()
        self.told: list[_Told] = []
        self._stop_listening = type(self.session).add_listener(self._hear)

    def _hear(self, session: Session, event: str, source: RecordStatus, dest: RecordStatus) -> None:
        """Listen for the moves of the session being driven."""
        if session is self.session:
            self.told.append(_Told(event, source, dest))

    def teardown(self) -> None:
        """Stop listening to the session's class."""
        self._stop_listening()
        super().teardown()

    def make_session(self) -> Session:
        """Return the session to drive, in the lifecycle's initial status.

        Returns
        -------
        Session
            A new ``session_class`` instance; override to build yours another way.
        """
        return self.session_class(_NEMO_USAGE_EVENT.format(4711))

    @precondition(lambda self: self.expected in self.reference.legal_event)
    @rule(data=st.data())
    def fire_legal_event(self, data: st.DataObject) -> None:
        """Fire an event the lifecycle allows from the current status."""
        self.fire(data.draw(self.reference.legal_event[self.expected], label="event"), data)

    @rule(data=st.data())
    def fire_any_event(self, data: st.DataObject) -> None:
        """Fire any event, legal or not."""
        self.fire(data.draw(self.reference.any_event, label="event"), data)

    def fire(self, event: str, data: st.DataObject) -> None:
        """Fire ``event`` with drawn arguments and check what it did against the lifecycle.

        Parameters
        ----------
        event
            The event to fire.
        data
            Where to draw the event's arguments from.
        """
        calls, asks = self._arguments(event, data)
        before = self._snapshot()
        may = getattr(self.session, f"may_{event}")(**asks)
        self.told.clear()
        move = self.lifecycle.rule(self.expected, event)
        if move is None:
            self._check_refused(event, calls, before, may)
        else:
            self._check_made(move, calls, before, may)

    def _arguments(self, event: str, data: st.DataObject) -> tuple[dict[str, Any], dict[str, Any]]:
        """Draw the arguments for ``event`` and for ``may_<event>``."""
        if event == "end":
            return {"at": data.draw(_END_TIMES, label="at")}, {}
        if event not in self.reference.timed:
            return {}, {}
        delay = data.draw(_DELAYS, label="delay")
        off_by = data.draw(_AROUND_THE_DELAY, label="time since the end, minus the delay")
        now = (self.ended_at or _NOT_ENDED) + self._delay(delay) + off_by
        arguments = {"now": now, "delay": delay}
        return arguments, arguments

    def _delay(self, delay: timedelta | None) -> timedelta:
        """Return the file delay a guarded call uses: the given one or the session's."""
        default: timedelta = getattr(self.session, "file_delay", FILE_DELAY)
        return default if delay is None else delay

    def _snapshot(self) -> _Snapshot:
        """Return the session's state that a refused or held-back event must keep."""
        return _Snapshot(self.session.status, getattr(self.session, "ended_at", None))

    def _guard_passes(self, move: Rule, calls: dict[str, Any]) -> bool | None:
        """Return whether the move's guard lets it happen, or None when the kit cannot tell."""
        if move.guard is None:
            return True
        if move.guard == FILE_DELAY_GUARD and self.ended_at is not None and "now" in calls:
            return file_delay_elapsed(self.ended_at, calls["now"], self._delay(calls["delay"]))
        return None

    def _check_refused(
        self, event: str, calls: dict[str, Any], before: _Snapshot, may: object
    ) -> None:
        """Check that an illegal event raised, named itself, and changed nothing."""
        source, call = self.expected.value, _call(event, calls)
        try:
            result = getattr(self.session, event)(**calls)
        except IllegalTransition as error:
            _require(
                (error.status, error.event) == (source, event),
                f"{call} from {source} raised IllegalTransition for {error.event!r} from "
                f"{error.status}; it must name the status and event of the refused move",
            )
        else:
            status = _shown(self.session.status)
            raise AssertionError(
                f"{call} from {source} returned {result!r} and left the session {status}, but "
                f"the lifecycle forbids {event!r} from {source}: it must raise IllegalTransition"
            )
        after = self._snapshot()
        _require(
            after == before,
            f"the refused {call} from {source} changed the session from {before} to {after}; "
            "an illegal move must change nothing",
        )
        _require(
            may is False,
            f"may_{event}() returned {may!r} from {source}, where the lifecycle forbids {event!r}",
        )
        self._check_told(call, None)

    def _check_made(
        self, move: Rule, calls: dict[str, Any], before: _Snapshot, may: object
    ) -> None:
        """Check that a legal event moved where the table says, or was held back by its guard."""
        source, call = self.expected.value, _call(move.event, calls)
        result = getattr(self.session, move.event)(**calls)
        if result is True:  # where it led, as its listeners heard it (hooks may move on)
            self._check_told(call, _Told(move.event, self.expected, move.dest))
        elif result is False:
            _require(
                move.guard is not None,
                f"{call} from {source} returned False, but the lifecycle allows it without a "
                "guard: the move must happen",
            )
            after = self._snapshot()
            _require(
                after == before,
                f"{call} from {source} was held back by its guard but changed the session "
                f"from {before} to {after}; a move that does not happen must change nothing",
            )
        else:
            raise AssertionError(f"{call} from {source} returned {result!r}, not True or False")
        passes = self._guard_passes(move, calls)
        _require(
            passes is None or result is passes,
            f"{call} from {source} returned {result}, but with the session ended at "
            f"{self.ended_at} its guard {move.guard!r} should have let it "
            f"{'happen' if passes else 'wait'}",
        )
        _require(
            may is result,
            f"may_{move.event}() said {may!r} from {source}, but {call} then returned {result!r}",
        )
        if not result:
            self._check_told(call, None)
        else:
            self.last_move = (self.expected, move)
            self.expected = self.told[-1].dest
            self.ended_at = calls["at"] if move.event == "end" else self.ended_at

    def _check_told(self, call: str, fired: _Told | None) -> None:
        """Check what the listeners were told of the call: each move, in order, or nothing."""
        told, start = self.told, self.expected
        heard = "[" + ", ".join(map(str, told)) + "]"
        said = f"{call} from {start.value} told the listeners {heard}"
        if fired is None:
            _require(not told, f"{said}, but it made no move: a listener must hear nothing")
            return
        where = start
        for move in told:
            _require(
                move.source is where,
                f"{said}: '{move}' starts from {_shown(move.source)}, but the session was then "
                f"{_shown(where)}; each move must be told with its own source, in order",
            )
            rule = self.lifecycle.rule(where, move.event)
            _require(
                rule is not None and rule.dest is move.dest,
                f"{said}: '{move}' is not a move of the lifecycle; each move must be told "
                "with its own event and destination",
            )
            where = move.dest
        _require(
            fired in told,
            f"{said}, but not '{fired}', the move it made; no move may be hidden",
        )
        status = self.session.status
        _require(
            status is where,
            f"{said}, which end at {_shown(where)}, but the session is {_shown(status)}",
        )

    @invariant()
    def status_is_a_record_status(self) -> None:
        """Check that the session's status is always a RecordStatus member."""
        status = self.session.status
        _require(
            isinstance(status, RecordStatus),
            f"session.status is {status!r}, a {type(status).__name__}: it must be a "
            "RecordStatus member",
        )

    @invariant()
    def status_is_where_the_lifecycle_says(self) -> None:
        """Check that the session is in the status the lifecycle leads to."""
        status = self.session.status
        _require(
            status is self.expected,
            f"session.status is {_shown(status)}, but the lifecycle says {self.expected.value}",
        )

    @invariant()
    def only_an_operator_leaves_a_final_status(self) -> None:
        """Check that the last move out of a final status was an operator's."""
        if self.last_move is None:
            return
        source, move = self.last_move
        _require(
            source not in self.lifecycle.final or move.by == "operator",
            f"{move.event!r} by the {move.by} moved the session out of the final status "
            f"{source.value} to {move.dest.value}; only an operator moves a session on from "
            "a final status",
        )

    @invariant()
    def allowed_events_agree_with_legality(self) -> None:
        """Check that ``allowed_events()`` lists exactly the events the lifecycle allows."""
        status = self.session.status
        try:  # a plain str hashes like its member: its answer is still compared
            expected = self.lifecycle.allowed(status)
        except KeyError:
            expected = ()
        listed = tuple(self.session.allowed_events())
        where = _shown(status)
        _require(
            sorted(listed) == sorted(expected),
            f"session.allowed_events() is {listed} at {where}; the lifecycle allows {expected}",
        )
        if self.lifecycle is LIFECYCLE:
            legal = legality.allowed_events(status)
            _require(
                sorted(legal) == sorted(expected),
                f"legality.allowed_events({where}) is {legal}; the lifecycle allows {expected}",
            )
