"""The lifecycle machine and the :class:`Session` model that code drives.

One ``transitions`` machine per :class:`Session` class is built from its lifecycle
(``auto_transitions=False``, explicit initial status), and every event goes through
that machine's own trigger path, ``machine.events[event].trigger(session, **kwargs)``:
no session gets a machine of its own, and none is bound with ``add_model``, so a
session costs about what a plain object with the same fields costs.

A subclass configures its machine as a ``transitions`` user would, by naming
callbacks:

- methods ``on_enter_<STATUS>``, ``on_exit_<STATUS>`` (state callbacks) and
  ``prepare_<event>``, ``before_<event>``, ``after_<event>`` (callbacks of every
  transition of that event) are registered by their names;
- class keywords are passed to the ``Machine``: ``send_event``, ``queued``,
  ``prepare_event``, ``before_state_change``, ``after_state_change``,
  ``finalize_event``, ``on_exception``; and ``conditions`` / ``unless`` map an event
  to the callbacks added to its transitions' conditions (after the rule's guard);
- ``lifecycle=`` gives the class rules of its own, checked by
  :func:`~nexuslims_lifecycle.rules.validate` when the class is made.

Everything is inherited by subclasses, which may add to it. Callbacks are called as
``transitions`` calls them: with the event's keyword arguments (``at=`` for
:meth:`Session.end`, ``now=`` and ``delay=`` for :meth:`Session.find_no_files`), or
with one :class:`transitions.EventData` when ``send_event=True``. The order is
``transitions``' own::

    prepare_event -> prepare_<event> -> guard, conditions, unless
        -> before_state_change -> before_<event> -> on_exit_<SOURCE> -> (status set)
        -> on_enter_<DEST> -> after_<event> -> after_state_change -> finalize_event

Two things differ from a plain ``transitions`` machine, on purpose:

- an event the lifecycle does not allow from the current status raises
  :class:`~nexuslims_lifecycle.errors.IllegalTransition` (naming what is legal from
  there) before the machine is asked, so no callback runs for it (``transitions``
  would run ``finalize_event`` and route its ``MachineError`` to ``on_exception``);
  with ``queued=True`` the check is made when the event is fired, and an event that
  is no longer legal when its turn comes fails as it would in ``transitions``;
- listeners (:meth:`Session.add_listener`) are told of every move, each with its own
  event, source and destination, in the order the moves were made, once the
  outermost event fired has returned or raised.

A class with nothing to call (no hooks, no machine options, no conditions) takes a
shorter path with the same outcome: the guard is asked with the event's arguments,
then the status is set.

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

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final, cast

from transitions import EventData, Machine, State

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import IllegalTransition, InvalidArgument, MissingEndTime
from nexuslims_lifecycle.rules import (
    FILE_DELAY,
    FILE_DELAY_GUARD,
    LIFECYCLE,
    EventName,
    Lifecycle,
    file_delay_elapsed,
    parse_status,
    validate,
)

__all__ = [
    "Callbacks",
    "Listener",
    "Session",
    "build_machine",
    "lifecycle_machine",
]

Listener = Callable[["Session", EventName, RecordStatus, RecordStatus], object]
"""A callable told of every move: ``(session, event, source, destination)``."""

Callback = str | Callable[..., object]
Callbacks = Callback | Sequence[Callback]
"""What ``transitions`` accepts as callbacks: a model method's name, a callable, or a list."""

_STATE_HOOKS: Final = ("on_enter_", "on_exit_")
_EVENT_HOOKS: Final = ("prepare_", "before_", "after_")
_HOOK_PREFIXES: Final = _STATE_HOOKS + _EVENT_HOOKS
_MACHINE_OPTIONS: Final = (
    "send_event",
    "queued",
    "prepare_event",
    "before_state_change",
    "after_state_change",
    "finalize_event",
    "on_exception",
)


def _listify(callbacks: Callbacks) -> tuple[Any, ...]:
    """Return ``callbacks`` as a tuple, as ``transitions`` reads one callback or a list."""
    if isinstance(callbacks, str) or callable(callbacks):
        return (callbacks,)
    return tuple(callbacks)


class _RuleGuard:
    """A rule's guard on a ``send_event=True`` machine: still called with the event's arguments.

    A :class:`~nexuslims_lifecycle.rules.Rule` guard is part of the lifecycle, and the
    store, the audit and the test kit judge it the same way whatever the class's
    ``send_event``; only the class's own callbacks receive ``EventData``.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, data: EventData) -> object:
        """Call the model's guard with the event's arguments."""
        return getattr(data.model, self.name)(*data.args, **data.kwargs)

    def __repr__(self) -> str:
        """Return the guard's name, as ``transitions`` logs a named callback."""
        return self.name


class _Moves(threading.local):
    """The moves made while an event fired in this thread is under way, for its listeners."""

    pending: list[tuple[Session, str, RecordStatus, RecordStatus]] | None = None


_MOVES: Final = _Moves()
_MEMBERS: Final = RecordStatus.__members__


def _moved(session: object, event: str, source: RecordStatus, dest: RecordStatus) -> None:
    """Record a move for the listeners of the session's class (at once when none is pending)."""
    if not isinstance(session, Session) or not session._told:
        return
    pending = _MOVES.pending
    if pending is not None:
        pending.append((session, event, source, dest))
        return
    _tell([(session, event, source, dest)])


def _tell(moves: Iterable[tuple[Session, str, RecordStatus, RecordStatus]]) -> None:
    """Tell each move, in order, to the listeners its session's class has now."""
    for session, event, source, dest in moves:
        for listener in session._told:
            listener(session, event, source, dest)  # type: ignore[arg-type]


class _Status(State):
    """A lifecycle status: records the move into it before its ``on_enter`` callbacks run."""

    def enter(self, event_data: EventData) -> None:
        """Record the move (its event, its rule's source, this status), then run on_enter."""
        model = event_data.model
        transition = event_data.transition
        if getattr(model, "_told", None) and transition is not None:  # someone listens
            dest = cast(RecordStatus, self.value)  # the member itself: states are the enum's
            _moved(model, event_data.event.name, _MEMBERS[transition.source], dest)
        super().enter(event_data)


class _LifecycleMachine(Machine):
    """A ``transitions`` machine whose states record moves for the listeners."""

    state_cls = _Status


def build_machine(
    lifecycle: Lifecycle = LIFECYCLE,
    hooks: Iterable[str] = (),
    model: type | None = None,
    *,
    conditions: Mapping[str, Callbacks] | None = None,
    unless: Mapping[str, Callbacks] | None = None,
    **options: Any,
) -> Machine:
    """Build a ``transitions`` machine from a lifecycle table, once it is checked.

    Parameters
    ----------
    lifecycle
        The rules to encode; :data:`~nexuslims_lifecycle.rules.LIFECYCLE` by default.
    hooks
        Names of model methods to register (``on_enter_ERROR``, ``prepare_fail``...).
    model
        The class the machine will drive, whose methods the guards name;
        :class:`Session` by default.
    conditions, unless
        Callbacks added to the conditions (``unless``: the negated conditions) of
        every transition of an event, after the rule's guard.
    **options
        Passed to ``transitions.Machine``: ``send_event``, ``queued``,
        ``prepare_event``, ``before_state_change``, ``after_state_change``,
        ``finalize_event``, ``on_exception``.

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
    conditions, unless = conditions or {}, unless or {}
    machine = _LifecycleMachine(
        model=None,
        states=list(RecordStatus),
        initial=lifecycle.initial,
        auto_transitions=False,
        model_attribute="_status",
        **options,
    )
    send_event = bool(options.get("send_event"))
    for rule in lifecycle.rules:
        guard: tuple[Any, ...] = ()  # transitions types conditions as returning bool
        if rule.guard is not None:
            guard = (_RuleGuard(rule.guard) if send_event else rule.guard,)
        machine.add_transition(
            rule.event,
            list(rule.sources),
            rule.dest,
            conditions=[*guard, *_listify(conditions.get(rule.event, ()))],
            unless=list(_listify(unless.get(rule.event, ()))),
        )
    for name in hooks:
        _register_hook(machine, name)
    return machine


def _split_hook(name: str) -> tuple[str, str] | None:
    """Return ``(prefix, target)`` when ``name`` is shaped like a hook, else None."""
    if name in _MACHINE_OPTIONS:  # prepare_event, before_state_change... are not hooks
        return None
    for prefix in _HOOK_PREFIXES:
        if name.startswith(prefix):
            return prefix, name.removeprefix(prefix)
    return None


def _register_hook(machine: Machine, name: str) -> None:
    """Attach the model method ``name`` where its prefix says it belongs."""
    prefix, target = _split_hook(name) or ("", "")
    if prefix in _STATE_HOOKS:
        machine.get_state(target).add_callback(prefix[3:-1], name)
    else:
        machine.events[target].add_callback(prefix[:-1], name)


def _hook_names(cls: type, lifecycle: Lifecycle) -> tuple[str, ...]:
    """Return the hook methods ``cls`` defines, rejecting ones that name nothing it has."""
    hooks = []
    for name in dir(cls):
        split = _split_hook(name)
        if split is None:
            continue
        prefix, target = split
        valid = tuple(RecordStatus.__members__) if prefix in _STATE_HOOKS else lifecycle.events
        if target not in valid:
            msg = (
                f"{cls.__name__}.{name} looks like a lifecycle hook but {target!r} is not "
                f"one of {', '.join(valid)}: rename it, or it will never run"
            )
            raise TypeError(msg)
        hooks.append(name)
    return tuple(hooks)


def _event_callbacks(
    cls: type, keyword: str, given: Mapping[EventName, Callbacks], lifecycle: Lifecycle
) -> dict[str, tuple[Callback, ...]]:
    """Check a ``conditions``/``unless`` class keyword and return it as tuples per event."""
    checked: dict[str, tuple[Callback, ...]] = {}
    for event, callbacks in given.items():
        if event not in lifecycle.events:
            msg = (
                f"{cls.__name__}: {keyword}= names the event {event!r}, which is not one of "
                f"{', '.join(lifecycle.events)}"
            )
            raise TypeError(msg)
        listed = _listify(callbacks)
        for callback in listed:
            if isinstance(callback, str) and not callable(getattr(cls, callback, None)):
                msg = (
                    f"{cls.__name__}: {keyword}= for {event!r} names {callback!r}, which is not "
                    f"a method of {cls.__name__}"
                )
                raise TypeError(msg)
        checked[event] = listed
    return checked


@dataclass(frozen=True)
class _Config:
    """What a Session class's machine is built from, besides its hooks."""

    lifecycle: Lifecycle
    options: Mapping[str, Any] = field(default_factory=dict)
    conditions: Mapping[str, tuple[Callback, ...]] = field(default_factory=dict)
    unless: Mapping[str, tuple[Callback, ...]] = field(default_factory=dict)


class _Compiled:
    """A class's machine and what its triggers need, built once per configuration."""

    __slots__ = ("events", "hooks", "lifecycle", "machine", "moves", "plain", "states")

    def __init__(self, model: type, config: _Config, hooks: tuple[str, ...]) -> None:
        self.machine = build_machine(
            config.lifecycle,
            hooks,
            model,
            conditions=config.conditions,
            unless=config.unless,
            **config.options,
        )
        self.lifecycle = config.lifecycle
        self.moves = config.lifecycle.moves  # the lifecycle's own table, looked up per event
        self.hooks = hooks
        self.events = self.machine.events
        self.states = {status: self.machine.get_state(status.name) for status in RecordStatus}
        # Nothing to call but the rules' guards: the shorter path gives the same outcome.
        self.plain = not (hooks or config.options or config.conditions or config.unless)


def lifecycle_machine() -> Machine:
    """Return the ``transitions`` machine that drives every plain :class:`Session`.

    Returns
    -------
    transitions.Machine
        The machine built from :data:`~nexuslims_lifecycle.rules.LIFECYCLE`.
    """
    return Session._compiled.machine


def _aware(value: datetime, name: str) -> datetime:
    """Return ``value`` if it carries a UTC offset, else raise a clear ValueError."""
    if value.utcoffset() is None:
        msg = f"{name} must be timezone-aware (e.g. datetime.now(UTC)), got naive {value!r}"
        raise ValueError(msg)
    return value


def _listeners_of(cls: type) -> tuple[Listener, ...]:
    """Return the listeners told of ``cls``'s moves: its ancestors' first, each in order added."""
    return tuple(
        listener
        for klass in reversed(cls.__mro__)
        for listener in vars(klass).get("_own_listeners", ())
    )


def _refresh_listeners(cls: type[Session]) -> None:
    """Recompute the listeners told by ``cls`` and by every subclass of it."""
    cls._told = _listeners_of(cls)
    for subclass in cls.__subclasses__():
        _refresh_listeners(subclass)


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

    _config: ClassVar[_Config]
    _compiled: ClassVar[_Compiled]
    _own_listeners: ClassVar[tuple[Listener, ...]]
    _told: ClassVar[tuple[Listener, ...]] = ()

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

    def __init_subclass__(
        cls,
        lifecycle: Lifecycle | None = None,
        *,
        send_event: bool | None = None,
        queued: bool | None = None,
        prepare_event: Callbacks | None = None,
        before_state_change: Callbacks | None = None,
        after_state_change: Callbacks | None = None,
        finalize_event: Callbacks | None = None,
        on_exception: Callbacks | None = None,
        conditions: Mapping[EventName, Callbacks] | None = None,
        unless: Mapping[EventName, Callbacks] | None = None,
        **kwargs: Any,
    ) -> None:
        """Give a subclass the machine its hooks and keywords describe, shared by its instances.

        Parameters
        ----------
        lifecycle
            The rules this class's sessions follow (``class S(Session, lifecycle=...)``);
            the parent's by default. Checked by :func:`~nexuslims_lifecycle.rules.validate`.
        send_event, queued, prepare_event, before_state_change, after_state_change, finalize_event, on_exception
            Passed to ``transitions.Machine`` as given; a keyword not given keeps the
            parent's value.
        conditions, unless
            Map an event to callbacks added to the conditions (``unless``: negated
            conditions) of its transitions, after the rule's guard; merged, event by
            event, over the parent's.
        **kwargs
            Passed on to ``object.__init_subclass__``.

        Raises
        ------
        InvalidDefinition
            When ``lifecycle`` is not a valid definition; the class is not created.
        TypeError
            When a method is named like a hook for a status or event that does not
            exist, or ``conditions``/``unless`` name an unknown event or method.
        """  # noqa: E501 - numpydoc lists the shared parameters on one line
        super().__init_subclass__(**kwargs)
        parent = cls._config
        rules = parent.lifecycle if lifecycle is None else lifecycle
        given = {
            "send_event": send_event,
            "queued": queued,
            "prepare_event": prepare_event,
            "before_state_change": before_state_change,
            "after_state_change": after_state_change,
            "finalize_event": finalize_event,
            "on_exception": on_exception,
        }
        config = _Config(
            rules,
            {**parent.options, **{k: v for k, v in given.items() if v is not None}},
            {**parent.conditions, **_event_callbacks(cls, "conditions", conditions or {}, rules)},
            {**parent.unless, **_event_callbacks(cls, "unless", unless or {}, rules)},
        )
        hooks = _hook_names(cls, rules)
        if config != parent or hooks != cls._compiled.hooks:
            cls._compiled = _Compiled(cls, config, hooks)
        cls._config = config
        cls._told = _listeners_of(cls)

    def __repr__(self) -> str:
        """Return ``Session('<id>', status=<STATUS>)``."""
        return f"{type(self).__name__}({self.session_identifier!r}, status={self._status.value})"

    @classmethod
    def add_listener(cls, listener: Listener) -> Callable[[], None]:
        """Tell ``listener`` of every move a session of this class (or a subclass) makes.

        A listener added to :class:`Session` hears every session; one added to a
        subclass hears only that subclass and its own subclasses. Each move is told
        with its own event, source and destination, in the order the moves were made,
        once the outermost event fired has returned or raised (so after every hook,
        including moves made by hooks). A call that does not move tells nothing.

        Parameters
        ----------
        listener
            Called as ``listener(session, event, source, destination)``. An
            exception it raises propagates to the code that fired the event (the
            move stands); the listeners after it are not told of that move.

        Returns
        -------
        Callable[[], None]
            The one way to remove this listener again; calling it twice is harmless.

        Raises
        ------
        InvalidArgument
            When ``listener`` is not callable.
        """
        if not callable(listener):
            raise InvalidArgument(
                "listener", listener, "a callable (session, event, source, destination)"
            )
        cls._own_listeners = (*vars(cls).get("_own_listeners", ()), listener)
        _refresh_listeners(cls)
        added = [True]

        def remove() -> None:
            if not added:
                return
            added.clear()
            own = list(vars(cls).get("_own_listeners", ()))
            index = next(i for i, known in enumerate(own) if known is listener)
            cls._own_listeners = (*own[:index], *own[index + 1 :])
            _refresh_listeners(cls)

        return remove

    @property
    def status(self) -> RecordStatus:
        """The session's current status; change it only by firing events."""
        return self._status

    def allowed_events(self) -> tuple[str, ...]:
        """Return the events the lifecycle allows from the current status (guards aside)."""
        return self._compiled.lifecycle.allowed(self._status)

    def file_delay_elapsed(
        self, now: datetime | None = None, delay: timedelta | None = None
    ) -> bool:
        """Return whether the file delay has passed since the session ended.

        The guard named :data:`~nexuslims_lifecycle.rules.FILE_DELAY_GUARD`
        (``find_no_files``'s), judged by :func:`~nexuslims_lifecycle.rules.file_delay_elapsed`.
        It receives the event's arguments.

        Parameters
        ----------
        now
            The time to judge at (timezone-aware); the current time by default.
        delay
            The file delay; :attr:`file_delay` by default.

        Returns
        -------
        bool
            True once ``delay`` has passed between ``ended_at`` and ``now``.

        Raises
        ------
        MissingEndTime
            When ``ended_at`` is unknown.
        ValueError
            When ``now`` is naive.
        """
        if self.ended_at is None:
            guarded = self._compiled.lifecycle.guarded_by(FILE_DELAY_GUARD)
            raise MissingEndTime(self.session_identifier, " or ".join(sorted(guarded)))
        return file_delay_elapsed(
            self.ended_at,
            datetime.now(UTC) if now is None else _aware(now, "now"),
            self.file_delay if delay is None else delay,
        )

    def _fire(self, event: EventName, **kwargs: Any) -> bool:
        """Fire ``event`` through the machine with ``kwargs``; True if the move happened."""
        compiled = self._compiled
        source = self._status
        rule = compiled.moves.get((source, event))
        if rule is None:
            raise IllegalTransition(source.value, event, compiled.lifecycle.allowed(source))
        if compiled.plain:
            guard = rule.guard
            # Condition.check's own test: the guard's answer == True.
            if guard is not None and getattr(self, guard)(**kwargs) != True:  # noqa: E712
                return False
            self._status = rule.dest
            if self._told:
                _moved(self, event, source, rule.dest)
            return True
        trigger = compiled.events[event].trigger
        if _MOVES.pending is not None:  # fired by a hook: the outermost call tells
            return trigger(self, **kwargs)
        moves: list[tuple[Session, str, RecordStatus, RecordStatus]] = []
        _MOVES.pending = moves
        try:
            return trigger(self, **kwargs)
        finally:
            _MOVES.pending = None
            if moves:
                _tell(moves)

    def _may(self, event: EventName, **kwargs: Any) -> bool:
        """Return whether ``event`` would move the session now, as ``transitions``' may_ does.

        Runs ``prepare_event``, the transition's ``prepare`` callbacks and its
        conditions (an exception goes to ``on_exception`` when the class sets it).
        """
        compiled = self._compiled
        status = self._status
        rule = compiled.lifecycle.rule(status, event)
        if rule is None:
            return False
        if compiled.plain:
            return rule.guard is None or getattr(self, rule.guard)(**kwargs) == True  # noqa: E712
        machine = compiled.machine
        fired = compiled.events[event]
        (transition,) = fired.transitions[status.name]
        data = EventData(compiled.states[status], fired, machine, self, (), kwargs)
        data.transition = transition
        try:
            machine.callbacks(machine.prepare_event, data)
            machine.callbacks(transition.prepare, data)
            return all(condition.check(data) for condition in transition.conditions)
        except Exception as error:
            data.error = error
            if not machine.on_exception:
                raise
            machine.callbacks(machine.on_exception, data)
            return False

    def end(self, at: datetime | None = None) -> bool:
        """Log the session's END: WAITING_FOR_END -> TO_BE_BUILT.

        Parameters
        ----------
        at
            When it ended (timezone-aware); now by default. Stored as ``ended_at``
            before the move, and passed to the callbacks as ``at=``.

        Returns
        -------
        bool
            True: the move happened (False only when a condition of the class or an
            ``on_exception`` callback said so; ``ended_at`` is then as it was).

        Raises
        ------
        IllegalTransition
            When the session is not WAITING_FOR_END; nothing changes.
        ValueError
            When ``at`` is naive; nothing changes.
        """
        ended_at = datetime.now(UTC) if at is None else _aware(at, "at")
        source = self._status
        if self._compiled.lifecycle.rule(source, "end") is None:
            allowed = self._compiled.lifecycle.allowed(source)
            raise IllegalTransition(source.value, "end", allowed)
        previous, self.ended_at = self.ended_at, ended_at
        moved = False
        try:
            moved = self._fire("end", at=ended_at)
        finally:
            if not moved and self._status is source:
                self.ended_at = previous
        return moved

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

        The event fires with ``now`` and ``delay``, defaults resolved, as its
        arguments: the guard and every callback receive ``now=`` and ``delay=``.

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
        ValueError
            When ``now`` is naive; nothing changes.
        """
        return self._fire("find_no_files", **self._delay_arguments(now, delay))

    def _delay_arguments(self, now: datetime | None, delay: timedelta | None) -> dict[str, Any]:
        """Return the ``now``/``delay`` arguments of a file-delay call, defaults resolved."""
        return {
            "now": datetime.now(UTC) if now is None else _aware(now, "now"),
            "delay": self.file_delay if delay is None else delay,
        }

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
        ValueError
            When ``now`` is naive.
        """
        return self._may("find_no_files", **self._delay_arguments(now, delay))

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


# Built after the class, so the guards are checked against Session's own methods.
Session._config = _Config(LIFECYCLE)
Session._compiled = _Compiled(Session, Session._config, ())
