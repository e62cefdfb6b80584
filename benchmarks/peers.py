"""The contenders, each built from ``rules.LIFECYCLE`` (no second hand-written table).

Every contender stores the same five fields per session: ``session_identifier``,
``status``, ``instrument``, ``user`` and ``ended_at``. A contender is a
:class:`Contender`: a way to make a fresh "world" (shared machine and the like,
built untimed), a way to make one session in it, and a way to fire an event on one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from transitions import Machine

from nexuslims_lifecycle import RecordStatus, Session
from nexuslims_lifecycle.rules import LIFECYCLE

logging.getLogger("transitions.core").setLevel(logging.WARNING)

MakeSession = Callable[[str, str, str], Any]
Fire = Callable[[Any, str], object]


@dataclass(frozen=True)
class Contender:
    """One implementation under test.

    ``world()`` returns ``(make, fire)``: ``make(identifier, instrument, user)``
    creates a session in WAITING_FOR_END; ``fire(session, event)`` fires an event
    the way that library's users would (a bound trigger method).
    """

    key: str
    label: str
    world: Callable[[], tuple[MakeSession, Fire]]


# --- the floor: a plain __slots__ object with the same fields, no behaviour ----------


class PlainSession:
    """The floor: the five fields and nothing else."""

    __slots__ = ("ended_at", "instrument", "session_identifier", "status", "user")

    def __init__(
        self,
        session_identifier: str,
        status: RecordStatus = LIFECYCLE.initial,
        *,
        instrument: str | None = None,
        user: str | None = None,
        ended_at: datetime | None = None,
    ) -> None:
        self.session_identifier = session_identifier
        self.status = status
        self.instrument = instrument
        self.user = user
        self.ended_at = ended_at


def _plain_world() -> tuple[MakeSession, Fire]:
    def make(identifier: str, instrument: str, user: str) -> PlainSession:
        return PlainSession(identifier, instrument=instrument, user=user)

    def fire(_session: Any, _event: str) -> object:
        raise NotImplementedError("the floor has no transitions")

    return make, fire


# --- nexuslims-lifecycle -------------------------------------------------------------


def _ours_world() -> tuple[MakeSession, Fire]:
    def make(identifier: str, instrument: str, user: str) -> Session:
        return Session(identifier, instrument=instrument, user=user)

    def fire(session: Any, event: str) -> object:
        return getattr(session, event)()

    return make, fire


class HookedSession(Session):
    """A Session subclass with one hook: it takes transitions' own trigger path."""

    __slots__ = ()

    def on_enter_ERROR(self) -> None:  # noqa: N802 - transitions' hook naming
        """Do nothing: the cost measured is the trigger path's, not the hook's."""


def _ours_hooked_world() -> tuple[MakeSession, Fire]:
    def make(identifier: str, instrument: str, user: str) -> Session:
        return HookedSession(identifier, instrument=instrument, user=user)

    def fire(session: Any, event: str) -> object:
        return getattr(session, event)()

    return make, fire


# --- transitions: one shared machine, add_model per session ---------------------------


class TransitionsModel:
    """A plain model for ``transitions``; ``add_model`` binds triggers into its ``__dict__``."""

    def __init__(
        self,
        session_identifier: str,
        *,
        instrument: str | None = None,
        user: str | None = None,
        ended_at: datetime | None = None,
    ) -> None:
        self.session_identifier = session_identifier
        self.instrument = instrument
        self.user = user
        self.ended_at = ended_at
        # ``status`` is set by add_model (model_attribute="status").

    def file_delay_elapsed(self) -> bool:
        """Guard of ``find_no_files`` (not on the benchmarked path)."""
        return True


def transitions_machine() -> Machine:
    """Return a shared ``transitions`` machine of the lifecycle, with no model."""
    machine = Machine(
        model=None,
        states=RecordStatus,
        initial=LIFECYCLE.initial,
        auto_transitions=False,
        model_attribute="status",
    )
    for rule in LIFECYCLE.rules:
        machine.add_transition(
            rule.event, list(rule.sources), rule.dest, conditions=rule.guard or None
        )
    return machine


class HookedTransitionsModel(TransitionsModel):
    """The same model with the same hook (``add_model`` registers ``on_enter_ERROR`` itself)."""

    def on_enter_ERROR(self) -> None:  # noqa: N802 - transitions' hook naming
        """Do nothing, as HookedSession's hook."""


def _transitions_world(
    model_class: type[TransitionsModel] = TransitionsModel,
) -> tuple[MakeSession, Fire]:
    machine = transitions_machine()
    add_model = machine.add_model

    def make(identifier: str, instrument: str, user: str) -> TransitionsModel:
        model = model_class(identifier, instrument=instrument, user=user)
        add_model(model)
        return model

    def fire(session: Any, event: str) -> object:
        return getattr(session, event)()

    return make, fire


# --- python-statemachine: a machine per session bound to a slotted model --------------


class StatemachineModel:
    """The domain model a python-statemachine machine is bound to (state in ``status``)."""

    __slots__ = ("ended_at", "instrument", "session_identifier", "status", "user")

    def __init__(
        self,
        session_identifier: str,
        *,
        instrument: str | None = None,
        user: str | None = None,
        ended_at: datetime | None = None,
    ) -> None:
        self.session_identifier = session_identifier
        self.status: RecordStatus | None = None
        self.instrument = instrument
        self.user = user
        self.ended_at = ended_at

    def file_delay_elapsed(self) -> bool:
        """Guard of ``find_no_files`` (not on the benchmarked path)."""
        return True


def statemachine_class() -> type[Any]:
    """Return a python-statemachine ``StateMachine`` subclass of the lifecycle."""
    from statemachine import StateMachine
    from statemachine.states import States

    # No final states: python-statemachine's final states have no way out, and
    # LIFECYCLE's final statuses (COMPLETED, NO_CONSENT) do (an operator's reprocess).
    states = States.from_enum(RecordStatus, initial=LIFECYCLE.initial)
    namespace: dict[str, Any] = {"_": states}
    for rule in LIFECYCLE.rules:
        dest = getattr(states, rule.dest.name)
        for source in rule.sources:
            move = getattr(states, source.name).to(dest, cond=rule.guard or None)
            namespace[rule.event] = (
                move if rule.event not in namespace else namespace[rule.event] | move
            )
    return type("LifecycleStateMachine", (StateMachine,), namespace)


def _statemachine_world() -> tuple[MakeSession, Fire]:
    machine_class = statemachine_class()

    def make(identifier: str, instrument: str, user: str) -> Any:
        model = StatemachineModel(identifier, instrument=instrument, user=user)
        return machine_class(model=model, state_field="status")

    def fire(session: Any, event: str) -> object:
        return getattr(session, event)()

    return make, fire


FLOOR = Contender("floor", "floor (__slots__)", _plain_world)
OURS = Contender("ours", "ours (Session)", _ours_world)
TRANSITIONS = Contender("transitions", "transitions + add_model", _transitions_world)
STATEMACHINE = Contender("statemachine", "python-statemachine", _statemachine_world)
OURS_HOOKED = Contender("ours_hooked", "ours (Session subclass, one hook)", _ours_hooked_world)
TRANSITIONS_HOOKED = Contender(
    "transitions_hooked",
    "transitions + add_model, one hook",
    lambda: _transitions_world(HookedTransitionsModel),
)
