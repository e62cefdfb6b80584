"""Session and legality agree with a plain transitions.Machine built from the design table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from transitions import Machine, MachineError

from design_table import GUARDS, INITIAL, MOVES, STATUSES
from nexuslims_lifecycle import IllegalTransition, Session, legality
from nexuslims_lifecycle.rules import FILE_DELAY
from nexuslims_lifecycle.testing import event_sequences

ENDED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
REFUSED = "refused"
# Exactly at the file delay, just before it, or anywhere from the end to twice the delay.
SINCE_END = st.sampled_from([FILE_DELAY, FILE_DELAY - timedelta(microseconds=1)]) | (
    st.timedeltas(timedelta(0), 2 * FILE_DELAY)
)


class PlainSession:
    """A bare model for the reference machine, with the file-delay guard written out."""

    state: str

    def __init__(self) -> None:
        self.now = ENDED
        self.delay = FILE_DELAY

    def file_delay_elapsed(self) -> bool:
        return self.now - ENDED >= self.delay


def reference(guarded: bool) -> tuple[Machine, PlainSession]:
    """Build a plain machine from the test's own table (with or without the guard)."""
    model = PlainSession()
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


def plain_step(model: PlainSession, event: str) -> object:
    """Fire ``event`` on the reference model: its result, or REFUSED."""
    try:
        return getattr(model, event)()
    except MachineError:
        return REFUSED


def test_the_reference_machine_refuses_what_the_table_does_not_hold() -> None:
    _, model = reference(guarded=True)
    assert plain_step(model, "retry") == REFUSED
    assert model.state == INITIAL


@given(event_sequences(max_size=15))
def test_legality_accepts_and_refuses_the_same_steps_as_the_plain_machine(
    events: list[str],
) -> None:
    machine, model = reference(guarded=False)
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
    _, model = reference(guarded=False)
    outcomes = [plain_step(model, event) for event in events]
    if REFUSED not in outcomes:
        assert legality.replay(events).value == model.state
        return
    first = outcomes.index(REFUSED)
    with pytest.raises(IllegalTransition) as caught:
        legality.replay(events)
    assert caught.value.index == first


@given(event_sequences(max_size=15), st.data())
def test_a_session_takes_the_same_steps_as_the_plain_machine(
    events: list[str], data: st.DataObject
) -> None:
    _, model = reference(guarded=True)
    session = Session("https://nemo.example.org/api/usage_events/?id=1")
    for event in events:
        arguments: dict[str, object] = {}
        if event == "end":
            arguments = {"at": ENDED}
        elif event == "find_no_files":
            model.now = ENDED + data.draw(SINCE_END, label="time since the end")
            arguments = {"now": model.now, "delay": FILE_DELAY}
        may = getattr(model, f"may_{event}")()
        expected = plain_step(model, event)
        assert (
            getattr(session, f"may_{event}")(**{k: v for k, v in arguments.items() if k != "at"})
            is may
        )
        try:
            outcome: object = getattr(session, event)(**arguments)
        except IllegalTransition:
            outcome = REFUSED
        assert outcome == expected
        assert session.status.value == model.state
