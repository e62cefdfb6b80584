"""Session and legality do what a plain ``transitions.Machine`` does.

The machine is built from the test's own copy of the lifecycle table
(``design_table``), never from the library's rules.

Session: the same hook methods (state and event hooks, machine-level callbacks,
``send_event``, ``prepare``/``conditions``/``unless``, a hook that raises, a hook that
fires another event, ``queued``) are given to a :class:`Session` subclass and to a
plain model bound with ``add_model``. Both are driven through the same steps; the
call logs, results, statuses and ``may_<event>()`` answers must be identical, and the
session's listeners must report exactly the moves the plain machine made.

Legality: ``allowed_events``, ``next_status`` and ``replay`` accept and refuse the
same steps as the plain machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transitions import EventData, Machine, MachineError

from design_table import GUARDS, INITIAL, MOVES, STATUSES
from nexuslims_lifecycle import IllegalTransition, RecordStatus, Session, legality
from nexuslims_lifecycle.testing import event_sequences

S = RecordStatus
ENDED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
REFUSED = "refused"
DELAY = timedelta(days=2)
EVENT_NAMES = tuple(dict.fromkeys(event for event, _, _ in MOVES))
LEGAL = {(source, event) for event, source, _ in MOVES}
STATE_HOOKS = tuple(f"{kind}_{status}" for status in STATUSES for kind in ("on_enter", "on_exit"))
EVENT_HOOKS = tuple(
    f"{kind}_{event}" for event in EVENT_NAMES for kind in ("prepare", "before", "after")
)
MACHINE_CALLBACKS = (
    "prepare_event",
    "before_state_change",
    "after_state_change",
    "finalize_event",
)
CONDITIONS = {"complete": "exported_is_allowed", "fail": "failing_is_allowed"}
UNLESS = {"deny_consent": "consent_is_known"}


class Boom(Exception):
    """What a failing hook raises."""


def _shown(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Return what a callback received, comparable across the two sides."""
    if len(args) == 1 and isinstance(args[0], EventData):
        data = args[0]
        transition = data.transition
        return (
            "EventData",
            data.event.name if data.event is not None else None,
            None if transition is None else (transition.source, transition.dest),
            tuple(sorted(data.kwargs.items())),
            type(data.error).__name__ if data.error is not None else None,
        )
    return (args, tuple(sorted(kwargs.items())))


class Traced:
    """The hooks both sides share; each call is logged with the status it saw and its arguments."""

    log: list[tuple[Any, ...]]
    failing: str | None
    cascade: bool
    allowed: bool
    status: Any

    def _call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.log.append((name, S(self.status).value, _shown(args, kwargs)))
        if name == self.failing:
            raise Boom(name)

    def _condition(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        self._call(name, args, kwargs)
        return self.allowed

    def exported_is_allowed(self, *args: Any, **kwargs: Any) -> bool:
        return self._condition("exported_is_allowed", args, kwargs)

    def failing_is_allowed(self, *args: Any, **kwargs: Any) -> bool:
        return self._condition("failing_is_allowed", args, kwargs)

    def consent_is_known(self, *args: Any, **kwargs: Any) -> bool:
        return not self._condition("consent_is_known", args, kwargs)

    def on_exception(self, *args: Any, **kwargs: Any) -> None:
        self._call("on_exception", args, kwargs)


def _hook(name: str) -> Any:
    def hook(self: Traced, *args: Any, **kwargs: Any) -> None:
        self._call(name, args, kwargs)
        if self.cascade and name == "on_enter_BUILT_NOT_EXPORTED":
            self.complete()  # type: ignore[attr-defined]
        if self.cascade and name == "on_enter_ERROR":
            self.retry()  # type: ignore[attr-defined]

    hook.__name__ = name
    return hook


class Hooked(Traced):
    """Traced, plus every state and event hook there is."""


for _name in (*STATE_HOOKS, *EVENT_HOOKS):
    setattr(Hooked, _name, _hook(_name))
for _name in MACHINE_CALLBACKS:
    setattr(Traced, f"on_{_name}", _hook(_name))


@dataclass(frozen=True)
class Config:
    """One way a transitions user may configure a machine."""

    name: str
    hooks: bool = True
    callbacks: bool = False
    rule_callbacks: bool = False
    send_event: bool = False
    queued: bool = False
    on_exception: bool = False

    def machine_options(self) -> dict[str, Any]:
        """The keywords both the Machine and the Session class get."""
        options: dict[str, Any] = {}
        if self.callbacks:
            options.update({name: f"on_{name}" for name in MACHINE_CALLBACKS})
        if self.send_event:
            options["send_event"] = True
        if self.queued:
            options["queued"] = True
        if self.on_exception:
            options["on_exception"] = "on_exception"
        return options


CONFIGS = [
    Config("nothing to call", hooks=False),
    Config("hooks"),
    Config("hooks, machine callbacks, conditions", callbacks=True, rule_callbacks=True),
    Config("send_event", callbacks=True, rule_callbacks=True, send_event=True),
    Config("queued", callbacks=True, rule_callbacks=True, queued=True),
    Config("on_exception", callbacks=True, rule_callbacks=True, on_exception=True),
    Config("all at once", callbacks=True, rule_callbacks=True, send_event=True, queued=True),
]


def _guard(model: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """The file-delay guard, written out: logged, then judged from the event's arguments."""
    if args and isinstance(args[0], EventData):
        kwargs = args[0].kwargs
    model.log.append(("guard", S(model.status).value, tuple(sorted(kwargs.items()))))
    result: bool = kwargs["now"] - model.ended_at >= kwargs["delay"]
    return result


class PlainModel:
    """The reference side: a plain object ``add_model`` binds to the machine."""

    def __init__(self, ended_at: datetime | None) -> None:
        self.ended_at = ended_at
        self.log: list[tuple[Any, ...]] = []
        self.failing: str | None = None
        self.cascade = False
        self.allowed = True


def reference(config: Config, base: type, status: S, ended_at: datetime | None) -> Any:
    """Return a plain model bound with add_model to a machine built from the test's table."""

    class Plain(base, PlainModel):  # type: ignore[misc, valid-type]
        def file_delay_elapsed(self, *args: Any, **kwargs: Any) -> bool:
            return _guard(self, args, kwargs)

    machine = Machine(
        model=None,
        states=list(S),
        initial=S(INITIAL),
        auto_transitions=False,
        model_attribute="status",
        **config.machine_options(),
    )
    for event, source, dest in MOVES:
        conditions = [GUARDS[event]] if event in GUARDS else []
        unless = []
        if config.rule_callbacks:
            conditions += [CONDITIONS[event]] if event in CONDITIONS else []
            unless += [UNLESS[event]] if event in UNLESS else []
        machine.add_transition(event, source, dest, conditions=conditions, unless=unless)
    if config.hooks:  # transitions binds on_enter_/on_exit_ itself; event hooks are named
        for name in EVENT_HOOKS:
            kind, event = name.split("_", 1)
            machine.events[event].add_callback(kind, name)
    model = Plain(ended_at)
    machine.add_model(model, initial=status)
    return model


def session_class(config: Config) -> type[Session]:
    """Return the Session subclass configured as ``config`` says (hooks found by name)."""
    base: type = Hooked if config.hooks else Traced
    keywords: dict[str, Any] = config.machine_options()
    if config.rule_callbacks:
        keywords.update(conditions=CONDITIONS, unless=UNLESS)

    class Tested(base, Session, **keywords):  # type: ignore[misc, valid-type]
        def __init__(self, status: S, ended_at: datetime | None) -> None:
            super().__init__("https://nemo.example.org/api/usage_events/?id=1", status)
            self.ended_at = ended_at
            self.log: list[tuple[Any, ...]] = []
            self.failing: str | None = None
            self.cascade = False
            self.allowed = True

        def file_delay_elapsed(self, *args: Any, **kwargs: Any) -> bool:
            return _guard(self, args, kwargs)

    return Tested


CLASSES = {config.name: session_class(config) for config in CONFIGS}
HOOK_NAMES = (
    *STATE_HOOKS,
    *EVENT_HOOKS,
    *MACHINE_CALLBACKS,
    *CONDITIONS.values(),
    *UNLESS.values(),
    "guard-is-not-a-hook",
)


@dataclass
class Step:
    """One event fired at both sides, with what the hooks do during it."""

    event: str
    since_end: timedelta
    failing: str | None
    cascade: bool
    allowed: bool


STEPS = st.builds(
    Step,
    event=st.sampled_from(EVENT_NAMES),
    since_end=st.sampled_from([DELAY, DELAY - timedelta(microseconds=1), 3 * DELAY]),
    failing=st.none() | st.none() | st.sampled_from(HOOK_NAMES),
    cascade=st.booleans(),
    allowed=st.sampled_from([True, True, False]),  # conditions pass more often than not
)


def _arguments(step: Step) -> dict[str, Any]:
    if step.event == "end":
        return {"at": ENDED}
    if step.event in GUARDS:
        return {"now": ENDED + step.since_end, "delay": DELAY}
    return {}


def _outcome(side: Any, method: str, arguments: dict[str, Any]) -> tuple[str, Any]:
    """Call ``side.method(**arguments)``: what it returned, or the failing hook it raised for."""
    try:
        return ("returned", getattr(side, method)(**arguments))
    except Boom as error:
        return ("raised", str(error))


def _moves_in(log: list[tuple[Any, ...]], event: str) -> list[tuple[str, str, str]]:
    """Read the moves a plain model made from its hook log: (event, exited, entered)."""
    moves, current, exited = [], event, None
    for name, _, _ in log:
        if name.startswith("before_") and name != "before_state_change":
            current = name.removeprefix("before_")
        elif name.startswith("on_exit_"):
            exited = name.removeprefix("on_exit_")
        elif name.startswith("on_enter_"):
            moves.append((current, exited, name.removeprefix("on_enter_")))
    return moves


def _sync(sides: tuple[Any, Any], step: Step) -> None:
    for side in sides:
        side.log.clear()
        side.failing, side.cascade, side.allowed = step.failing, step.cascade, step.allowed


@pytest.mark.parametrize("config", CONFIGS, ids=[config.name for config in CONFIGS])
@settings(max_examples=60, deadline=None)
@given(start=st.sampled_from(list(S)), steps=st.lists(STEPS, max_size=8))
def test_a_session_runs_the_same_callbacks_as_a_plain_transitions_machine(
    config: Config, start: S, steps: list[Step]
) -> None:
    tested = CLASSES[config.name]
    session = tested(start, ENDED)
    plain = reference(config, Hooked if config.hooks else Traced, start, ENDED)
    told: list[tuple[str, str, str]] = []

    def listener(moved: Session, event: str, source: S, dest: S) -> None:
        assert moved is session
        told.append((event, source.value, dest.value))

    remove = tested.add_listener(listener)
    try:
        for step in steps:
            arguments = _arguments(step)
            asks = {k: v for k, v in arguments.items() if k != "at"}
            _sync((session, plain), step)
            may = f"may_{step.event}"
            assert _outcome(session, may, asks) == _outcome(plain, may, asks)
            assert session.log == plain.log
            before = S(plain.status)
            if (before.value, step.event) not in LEGAL:
                with pytest.raises(IllegalTransition):
                    getattr(session, step.event)(**arguments)
                if config.on_exception:  # transitions routes its MachineError there
                    assert getattr(plain, step.event)(**arguments) is False
                else:
                    with pytest.raises(MachineError):
                        getattr(plain, step.event)(**arguments)
                continue
            _sync((session, plain), step)
            told.clear()
            fired = _outcome(session, step.event, arguments)
            assert fired == _outcome(plain, step.event, arguments)
            assert session.log == plain.log
            assert session.status is plain.status
            if config.hooks:
                assert told == _moves_in(plain.log, step.event)
            else:
                moved = session.status is not before
                assert told == ([(step.event, before.value, session.status.value)] if moved else [])
    finally:
        remove()


def test_an_illegal_event_reaches_no_callback_where_transitions_runs_finalize_event() -> None:
    """The one deliberate difference: IllegalTransition is raised before the machine is asked."""
    config = CONFIGS[2]
    session = CLASSES[config.name](S.WAITING_FOR_END, None)
    plain = reference(config, Hooked, S.WAITING_FOR_END, None)
    _sync((session, plain), Step("retry", DELAY, None, cascade=False, allowed=True))
    with pytest.raises(IllegalTransition, match="cannot 'retry' from WAITING_FOR_END"):
        session.retry()
    with pytest.raises(MachineError):
        plain.retry()
    assert session.log == []
    assert [name for name, _, _ in plain.log] == ["finalize_event"]


def test_the_configurations_include_a_class_with_nothing_to_call() -> None:
    """The shorter path of a class with nothing to call is among those compared."""
    plain = CONFIGS[0]
    assert not plain.hooks
    assert plain.machine_options() == {}
    assert not plain.rule_callbacks


# --- legality ---------------------------------------------------------------------------


class LegalityModel:
    """A bare model for the reference machine, with the file-delay guard written out."""

    state: str

    def __init__(self) -> None:
        self.now = ENDED
        self.delay = DELAY

    def file_delay_elapsed(self) -> bool:
        return self.now - ENDED >= self.delay


def legality_reference(guarded: bool) -> tuple[Machine, LegalityModel]:
    """Build a plain machine from the test's own table (with or without the guard)."""
    model = LegalityModel()
    transitions = [
        {
            "trigger": event,
            "source": source,
            "dest": dest,
            "conditions": GUARDS.get(event) if guarded else None,
        }
        for event, source, dest in MOVES
    ]
    machine = Machine(
        model=model,
        states=list(STATUSES),
        transitions=transitions,
        initial=INITIAL,
        auto_transitions=False,
    )
    return machine, model


def plain_step(model: LegalityModel, event: str) -> object:
    """Fire ``event`` on the reference model: its result, or REFUSED."""
    try:
        return getattr(model, event)()
    except MachineError:
        return REFUSED


def test_the_reference_machine_refuses_what_the_table_does_not_hold() -> None:
    _, model = legality_reference(guarded=True)
    assert plain_step(model, "retry") == REFUSED
    assert model.state == INITIAL


@given(event_sequences(max_size=15))
def test_legality_accepts_and_refuses_the_same_steps_as_the_plain_machine(
    events: list[str],
) -> None:
    machine, model = legality_reference(guarded=False)
    status = legality.replay([])
    for event in events:
        expected = plain_step(model, event)
        assert legality.allowed_events(status) == tuple(machine.get_triggers(status.value))
        try:
            status = legality.next_status(status, event)
        except IllegalTransition:
            assert expected == REFUSED
        else:
            assert expected is True
        assert status.value == model.state


@given(event_sequences(max_size=15))
def test_replay_stops_where_the_plain_machine_first_refuses(events: list[str]) -> None:
    _, model = legality_reference(guarded=False)
    outcomes = [plain_step(model, event) for event in events]
    if REFUSED not in outcomes:
        assert legality.replay(events).value == model.state
        return
    first = outcomes.index(REFUSED)
    with pytest.raises(IllegalTransition) as caught:
        legality.replay(events)
    assert caught.value.index == first
