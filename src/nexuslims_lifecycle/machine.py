"""The lifecycle machine and the :class:`Session` model that code drives.

One ``transitions`` machine is built from :data:`~nexuslims_lifecycle.rules.LIFECYCLE`
(``auto_transitions=False``, explicit initial status) and drives every session: no
session gets a machine of its own, and none is bound with ``add_model``, so a
session costs about what a plain object with the same fields costs.

A subclass of :class:`Session` that defines hooks (``on_enter_<STATUS>``,
``on_exit_<STATUS>``, ``before_<event>``, ``after_<event>``) gets one machine for
the whole class, built from the same rules with those hooks registered, and shared
by all of its instances. A subclass may also follow a lifecycle of its own
(``class Variant(Session, lifecycle=MY_RULES)``); every lifecycle is checked by
:func:`~nexuslims_lifecycle.rules.validate` when its machine is built, so a broken
definition raises :class:`~nexuslims_lifecycle.errors.InvalidDefinition` at import.

Hooks run in ``transitions``' order and take no arguments besides ``self``::

    guard -> before_<event> -> on_exit_<SOURCE> -> (status set)
          -> on_enter_<DEST> -> after_<event> -> listeners

When a hook raises, the exception propagates and:

- from the guard, ``before_<event>`` or ``on_exit_<SOURCE>``: nothing changed, the
  status is still the source (and ``end(at=...)`` leaves ``ended_at`` as it was);
- from ``on_enter_<DEST>`` or ``after_<event>``: the move stands, the status is the
  destination, the hooks after the failing one do not run, and the listeners are
  still told of the move (a move that stood is never hidden from them).

Examples
--------
>>> from nexuslims_lifecycle import Session
>>> session = Session("https://nemo.example.org/api/usage_events/?id=4711")
>>> session.end()
True
>>> session.status.value
'TO_BE_BUILT'
>>> session.allowed_events()
('complete', 'fail_export', 'fail', 'find_no_files', 'deny_consent', 'find_no_reservation')
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final

from transitions import EventData, Machine, Transition

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import IllegalTransition, MissingEndTime
from nexuslims_lifecycle.rules import (
    EVENTS,
    FILE_DELAY,
    LIFECYCLE,
    Lifecycle,
    parse_status,
    validate,
)

__all__ = [
    "Listener",
    "Session",
    "add_listener",
    "build_machine",
    "remove_listener",
]

# transitions logs every callback at INFO; a library should not speak unless asked.
_TRANSITIONS_LOGGER = logging.getLogger("transitions.core")
if _TRANSITIONS_LOGGER.level == logging.NOTSET:
    _TRANSITIONS_LOGGER.setLevel(logging.WARNING)

Listener = Callable[["Session", str, RecordStatus, RecordStatus], object]
"""A callable told of every move: ``(session, event, source, destination)``."""

_STATE_HOOKS: Final = ("on_enter_", "on_exit_")
_EVENT_HOOKS: Final = ("before_", "after_")
_HOOK_PREFIXES: Final = _STATE_HOOKS + _EVENT_HOOKS
_listeners: tuple[Listener, ...] = ()
# (now, delay) for the guard of the call under way; a context variable keeps
# concurrent threads and tasks apart without a field on every session.
_guard_args: ContextVar[tuple[datetime | None, timedelta | None]] = ContextVar(
    "nexuslims_lifecycle_guard_args", default=(None, None)
)


def build_machine(
    lifecycle: Lifecycle = LIFECYCLE, hooks: Iterable[str] = (), model: type | None = None
) -> Machine:
    """Build a ``transitions`` machine from a lifecycle table, once it is checked.

    Parameters
    ----------
    lifecycle
        The rules to encode; :data:`~nexuslims_lifecycle.rules.LIFECYCLE` by default.
    hooks
        Names of model methods to register (``on_enter_ERROR``, ``before_retry``...).
    model
        The class the machine will drive, whose methods the guards name;
        :class:`Session` by default.

    Returns
    -------
    transitions.Machine
        A machine with no model, no ``to_<STATUS>`` shortcuts, and ``_status`` as the
        model's state attribute.

    Raises
    ------
    InvalidDefinition
        When ``lifecycle`` breaks a rule of :func:`~nexuslims_lifecycle.rules.validate`.
    """
    validate(lifecycle, model=Session if model is None else model)
    machine = Machine(
        model=None,
        states=list(RecordStatus),
        initial=lifecycle.initial,
        auto_transitions=False,
        model_attribute="_status",
    )
    for rule in lifecycle.rules:
        machine.add_transition(
            rule.event, list(rule.sources), rule.dest, conditions=rule.guard or None
        )
    for name in hooks:
        _register_hook(machine, name)
    return machine


def _register_hook(machine: Machine, name: str) -> None:
    """Attach the model method ``name`` where its prefix says it belongs."""
    for prefix in _HOOK_PREFIXES:
        if name.startswith(prefix):
            target = name.removeprefix(prefix)
            break
    if prefix in _STATE_HOOKS:
        machine.get_state(target).add_callback(prefix[3:-1], name)
        return
    for transitions in machine.events[target].transitions.values():
        for transition in transitions:
            transition.add_callback(prefix[:-1], name)


def _hook_names(cls: type) -> list[str]:
    """Return the hook methods ``cls`` defines, rejecting ones that name nothing."""
    hooks = []
    for name in dir(cls):
        prefix = next((p for p in _HOOK_PREFIXES if name.startswith(p)), None)
        if prefix is None:
            continue
        target = name.removeprefix(prefix)
        valid = RecordStatus.__members__ if prefix in _STATE_HOOKS else EVENTS
        if target not in valid:
            msg = (
                f"{cls.__name__}.{name} looks like a lifecycle hook but {target!r} is not "
                f"one of {', '.join(valid)}: rename it, or it will never run"
            )
            raise TypeError(msg)
        hooks.append(name)
    return hooks


class _Compiled:
    """A machine plus the lookups a trigger needs, computed once per machine."""

    __slots__ = ("allowed", "events", "lifecycle", "machine", "moves", "states")

    def __init__(self, machine: Machine, lifecycle: Lifecycle) -> None:
        self.machine = machine
        self.lifecycle = lifecycle
        self.events = machine.events
        self.states = {status: machine.get_state(status.name) for status in RecordStatus}
        self.moves: dict[tuple[RecordStatus, str], Transition] = {}
        for name, event in machine.events.items():
            for source, transitions in event.transitions.items():
                (transition,) = transitions
                self.moves[RecordStatus[source], name] = transition
        self.allowed = {
            status: tuple(name for (source, name) in self.moves if source is status)
            for status in RecordStatus
        }


def lifecycle_machine() -> Machine:
    """Return the shared ``transitions`` machine built from the lifecycle rules.

    Returns
    -------
    transitions.Machine
        The machine that drives every plain :class:`Session`.
    """
    return _LIFECYCLE_MACHINE.machine


def add_listener(listener: Listener) -> Callable[[], None]:
    """Tell ``listener`` of every move any session makes from now on.

    Parameters
    ----------
    listener
        Called as ``listener(session, event, source, destination)`` once the move
        has happened, after the hooks. An exception it raises propagates to the
        code that fired the event; the move still stands.

    Returns
    -------
    Callable[[], None]
        A function that removes the listener again.
    """
    global _listeners  # noqa: PLW0603 - a tuple swapped whole, so readers never see it half-built
    _listeners = (*_listeners, listener)
    return lambda: remove_listener(listener)


def remove_listener(listener: Listener) -> None:
    """Stop telling ``listener`` of moves; a listener never added is ignored.

    Parameters
    ----------
    listener
        A callable earlier given to :func:`add_listener`.
    """
    global _listeners  # noqa: PLW0603 - see add_listener
    _listeners = tuple(known for known in _listeners if known is not listener)


def _aware(value: datetime, name: str) -> datetime:
    """Return ``value`` if it carries a UTC offset, else raise a clear ValueError."""
    if value.utcoffset() is None:
        msg = f"{name} must be timezone-aware (e.g. datetime.now(UTC)), got naive {value!r}"
        raise ValueError(msg)
    return value


class Session:
    """One NexusLIMS session, driven through the lifecycle.

    Parameters
    ----------
    session_identifier
        The session's identifier in ``session_log`` (for NEMO, a usage event URL).
    status
        Where the session is now: a :class:`~nexuslims_lifecycle.enums.RecordStatus`
        or its exact value string.
    instrument
        The instrument's identifier (``instrument`` column), if known.
    user
        The user's name (``user`` column), if known.
    ended_at
        When the session ended (timezone-aware); needed by :meth:`find_no_files`.

    Raises
    ------
    UnknownStatus
        When ``status`` is not a ``RecordStatus`` nor exactly one of its values.
    ValueError
        When ``ended_at`` is a naive datetime.
    """

    __slots__ = ("_status", "ended_at", "instrument", "session_identifier", "user")

    file_delay: ClassVar[timedelta] = FILE_DELAY
    """How long after ``ended_at`` :meth:`find_no_files` may move; override per class."""

    _compiled: ClassVar[_Compiled]

    def __init__(
        self,
        session_identifier: str,
        status: RecordStatus | str = RecordStatus.WAITING_FOR_END,
        *,
        instrument: str | None = None,
        user: str | None = None,
        ended_at: datetime | None = None,
    ) -> None:
        self.session_identifier = session_identifier
        self._status = parse_status(status)
        self.instrument = instrument
        self.user = user
        self.ended_at = None if ended_at is None else _aware(ended_at, "ended_at")

    def __init_subclass__(cls, lifecycle: Lifecycle | None = None, **kwargs: Any) -> None:
        """Give a subclass with hooks or its own lifecycle one machine, shared by its instances.

        Parameters
        ----------
        lifecycle
            The rules this class's sessions follow (``class S(Session, lifecycle=...)``);
            the parent's by default. Checked by :func:`~nexuslims_lifecycle.rules.validate`.
        **kwargs
            Passed on to ``object.__init_subclass__``.

        Raises
        ------
        InvalidDefinition
            When ``lifecycle`` is not a valid definition; the class is not created.
        """
        super().__init_subclass__(**kwargs)
        hooks = _hook_names(cls)
        if hooks or lifecycle is not None:
            rules = cls._compiled.lifecycle if lifecycle is None else lifecycle
            cls._compiled = _Compiled(build_machine(rules, hooks, model=cls), rules)

    def __repr__(self) -> str:
        """Return ``Session('<id>', status=<STATUS>)``."""
        return f"{type(self).__name__}({self.session_identifier!r}, status={self._status.value})"

    @property
    def status(self) -> RecordStatus:
        """The session's current status; change it only by firing events."""
        return self._status

    def allowed_events(self) -> tuple[str, ...]:
        """Return the events the lifecycle allows from the current status (guards aside)."""
        return self._compiled.allowed[self._status]

    def file_delay_elapsed(self) -> bool:
        """Return whether the file delay has passed since the session ended.

        This is the guard of ``find_no_files``; the ``now``/``delay`` given to that
        call (or to ``may_find_no_files``) apply, else the current time and
        :attr:`file_delay`.

        Raises
        ------
        MissingEndTime
            When ``ended_at`` is unknown.
        """
        if self.ended_at is None:
            raise MissingEndTime(self.session_identifier, "find_no_files")
        now, delay = _guard_args.get()
        now = datetime.now(UTC) if now is None else _aware(now, "now")
        return now - self.ended_at >= (self.file_delay if delay is None else delay)

    def _transition(self, event: str) -> tuple[Transition, EventData]:
        """Return the one transition ``event`` takes from here, or raise IllegalTransition."""
        compiled = self._compiled
        transition = compiled.moves.get((self._status, event))
        if transition is None:
            raise IllegalTransition(self._status.value, event, compiled.allowed[self._status])
        state = compiled.states[self._status]
        data = EventData(state, compiled.events[event], compiled.machine, self, (), {})
        data.transition = transition
        return transition, data

    def _fire(self, event: str) -> bool:
        """Make the move ``event`` through the machine; True if it happened."""
        source = self._status
        transition, data = self._transition(event)
        try:
            return transition.execute(data)
        finally:
            if _listeners and self._status is not source:
                for listener in _listeners:
                    listener(self, event, source, self._status)

    def _may(self, event: str) -> bool:
        """Return whether ``event`` is legal from here and its guards pass."""
        if (self._status, event) not in self._compiled.moves:
            return False
        transition, data = self._transition(event)
        return all(condition.check(data) for condition in transition.conditions)

    def end(self, at: datetime | None = None) -> bool:
        """Log the session's END: WAITING_FOR_END -> TO_BE_BUILT.

        Parameters
        ----------
        at
            When it ended (timezone-aware); now by default. Stored as ``ended_at``.

        Returns
        -------
        bool
            True: the move happened.

        Raises
        ------
        IllegalTransition
            When the session is not WAITING_FOR_END; nothing changes.
        """
        ended_at = datetime.now(UTC) if at is None else _aware(at, "at")
        self._transition("end")
        previous, self.ended_at = self.ended_at, ended_at
        try:
            return self._fire("end")
        except BaseException:
            if self._status is RecordStatus.WAITING_FOR_END:
                self.ended_at = previous
            raise

    def complete(self) -> bool:
        """Mark the record built and exported: TO_BE_BUILT or BUILT_NOT_EXPORTED -> COMPLETED.

        Returns
        -------
        bool
            True: the move happened.

        Raises
        ------
        IllegalTransition
            From any other status; nothing changes.
        """
        return self._fire("complete")

    def fail_export(self) -> bool:
        """Mark the record built but not exported: TO_BE_BUILT -> BUILT_NOT_EXPORTED.

        Returns
        -------
        bool
            True: the move happened.

        Raises
        ------
        IllegalTransition
            From any other status; nothing changes.
        """
        return self._fire("fail_export")

    def fail(self) -> bool:
        """Record that building raised or failed validation: TO_BE_BUILT -> ERROR.

        Returns
        -------
        bool
            True: the move happened.

        Raises
        ------
        IllegalTransition
            From any other status; nothing changes.
        """
        return self._fire("fail")

    def find_no_files(self, now: datetime | None = None, delay: timedelta | None = None) -> bool:
        """Record that no files were found: TO_BE_BUILT -> NO_FILES_FOUND, after the file delay.

        Parameters
        ----------
        now
            The time to measure the delay at (timezone-aware); the current time by default.
        delay
            The file delay for this call; :attr:`file_delay` by default.

        Returns
        -------
        bool
            True if the move happened; False if the delay has not yet passed since
            ``ended_at`` (the status stays TO_BE_BUILT, try again later).

        Raises
        ------
        IllegalTransition
            From any status but TO_BE_BUILT; nothing changes.
        MissingEndTime
            When ``ended_at`` is unknown; nothing changes.
        """
        token = _guard_args.set((now, delay))
        try:
            return self._fire("find_no_files")
        finally:
            _guard_args.reset(token)

    def deny_consent(self) -> bool:
        """Record that the user did not consent: TO_BE_BUILT -> NO_CONSENT (final).

        Returns
        -------
        bool
            True: the move happened.

        Raises
        ------
        IllegalTransition
            From any other status; nothing changes.
        """
        return self._fire("deny_consent")

    def find_no_reservation(self) -> bool:
        """Record that no reservation matched: TO_BE_BUILT -> NO_RESERVATION.

        Returns
        -------
        bool
            True: the move happened.

        Raises
        ------
        IllegalTransition
            From any other status; nothing changes.
        """
        return self._fire("find_no_reservation")

    def retry(self) -> bool:
        """Requeue for another build: ERROR, NO_FILES_FOUND, NO_RESERVATION or BUILT_NOT_EXPORTED -> TO_BE_BUILT.

        Returns
        -------
        bool
            True: the move happened.

        Raises
        ------
        IllegalTransition
            From any other status; nothing changes.
        """  # noqa: E501 - the summary names every source
        return self._fire("retry")

    def reprocess(self) -> bool:
        """Have a finished record built again: COMPLETED or NO_CONSENT -> TO_BE_BUILT.

        An operator's move, e.g. after an extractor was fixed or consent came later.

        Returns
        -------
        bool
            True: the move happened.

        Raises
        ------
        IllegalTransition
            From any other status; nothing changes.
        """
        return self._fire("reprocess")

    def may_end(self) -> bool:
        """Return whether :meth:`end` would move the session now."""
        return self._may("end")

    def may_complete(self) -> bool:
        """Return whether :meth:`complete` would move the session now."""
        return self._may("complete")

    def may_fail_export(self) -> bool:
        """Return whether :meth:`fail_export` would move the session now."""
        return self._may("fail_export")

    def may_fail(self) -> bool:
        """Return whether :meth:`fail` would move the session now."""
        return self._may("fail")

    def may_find_no_files(
        self, now: datetime | None = None, delay: timedelta | None = None
    ) -> bool:
        """Return whether :meth:`find_no_files` would move the session now.

        Parameters
        ----------
        now
            The time to measure the file delay at; the current time by default.
        delay
            The file delay; :attr:`file_delay` by default.

        Raises
        ------
        MissingEndTime
            When the move is legal from here but ``ended_at`` is unknown.
        """
        token = _guard_args.set((now, delay))
        try:
            return self._may("find_no_files")
        finally:
            _guard_args.reset(token)

    def may_deny_consent(self) -> bool:
        """Return whether :meth:`deny_consent` would move the session now."""
        return self._may("deny_consent")

    def may_find_no_reservation(self) -> bool:
        """Return whether :meth:`find_no_reservation` would move the session now."""
        return self._may("find_no_reservation")

    def may_retry(self) -> bool:
        """Return whether :meth:`retry` would move the session now."""
        return self._may("retry")

    def may_reprocess(self) -> bool:
        """Return whether :meth:`reprocess` would move the session now."""
        return self._may("reprocess")


_LIFECYCLE_MACHINE: Final = _Compiled(build_machine(LIFECYCLE, model=Session), LIFECYCLE)
# Built after the class, so the guards are checked against Session's own methods.
Session._compiled = _LIFECYCLE_MACHINE
