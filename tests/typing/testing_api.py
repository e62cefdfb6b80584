"""The test kit's public API, as docs/testing.md uses it, checked by mypy --strict."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import invariant

from nexuslims_lifecycle import RecordStatus, Session, legality
from nexuslims_lifecycle.rules import LIFECYCLE, Lifecycle
from nexuslims_lifecycle.testing import (
    LifecycleStateMachine,
    SessionLogRow,
    Step,
    event_sequences,
    events,
    illegal_moves,
    legal_event_sequences,
    session_logs,
    statuses,
)

status_strategy: st.SearchStrategy[RecordStatus] = statuses()
event_strategy: st.SearchStrategy[str] = events()
moves: st.SearchStrategy[tuple[RecordStatus, str]] = illegal_moves()
sequences: st.SearchStrategy[list[str]] = event_sequences(max_size=5)
rows: st.SearchStrategy[list[SessionLogRow]] = session_logs(max_sessions=2, max_steps=4)


@given(legal_event_sequences(start=RecordStatus.TO_BE_BUILT, max_size=4))
def check_history(steps: list[Step]) -> None:
    """Drive a session through a drawn history."""
    first: datetime | None = steps[0].ended_at if steps else None
    session = Session("typed", status=RecordStatus.TO_BE_BUILT, ended_at=first)
    moved: list[bool] = [step.fire(session) for step in steps]
    final: RecordStatus = legality.replay(
        [step.event for step, ok in zip(steps, moved, strict=True) if ok], start="TO_BE_BUILT"
    )
    assert session.status is final


class Audited(Session):
    """A session class of the user's."""

    __slots__ = ()


class AuditedMachine(LifecycleStateMachine):
    """The kit, pointed at the user's class and table."""

    session_class = Audited
    lifecycle: ClassVar[Lifecycle] = LIFECYCLE

    @invariant()
    def status_is_a_member(self) -> None:
        """Check something of the user's own."""
        assert self.session.status in RecordStatus


TestAudited = AuditedMachine.TestCase
