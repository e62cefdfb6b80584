"""Random event sequences fired at a Session, checked against the design table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from design_table import FINAL as FINAL_NAMES
from expected_table import EXPECTED
from nexuslims_lifecycle.enums import RecordStatus as S
from nexuslims_lifecycle.errors import IllegalTransition
from nexuslims_lifecycle.machine import Session
from nexuslims_lifecycle.rules import EVENTS, FILE_DELAY

ENDED = datetime(2026, 11, 1, tzinfo=UTC)
FINAL = {S(name) for name in FINAL_NAMES}


class SessionAgainstTable(RuleBasedStateMachine):
    """Fire any event; the session must do exactly what the table says."""

    def __init__(self) -> None:
        super().__init__()
        self.session = Session("https://nemo.example.org/api/usage_events/?id=1", ended_at=ENDED)
        self.expected = S.WAITING_FOR_END
        self.moves = 0

    @rule(event=st.sampled_from([e for e in EVENTS if e not in {"end", "find_no_files"}]))
    def fire(self, event: str) -> None:
        self.check_move(event, getattr(self.session, event))

    @rule()
    def end(self) -> None:
        self.check_move("end", lambda: self.session.end(at=ENDED))

    @rule(elapsed=st.timedeltas(min_value=timedelta(0), max_value=2 * FILE_DELAY))
    def find_no_files(self, elapsed: timedelta) -> None:
        passes = elapsed >= FILE_DELAY
        legal = (self.expected, "find_no_files") in EXPECTED
        assert self.session.may_find_no_files(now=ENDED + elapsed) is (legal and passes)
        if legal and not passes:
            assert self.session.find_no_files(now=ENDED + elapsed) is False
            assert self.session.status is self.expected
            return
        self.check_move("find_no_files", lambda: self.session.find_no_files(now=ENDED + elapsed))

    def check_move(self, event: str, trigger: object) -> None:
        before = self.expected
        if (before, event) in EXPECTED:
            assert trigger() is True  # type: ignore[operator]
            self.expected = EXPECTED[before, event]
            self.moves += 1
        else:
            with pytest.raises(IllegalTransition) as caught:
                trigger()  # type: ignore[operator]
            assert (caught.value.status, caught.value.event) == (before.value, event)
        assert self.session.status is self.expected

    @precondition(lambda self: self.expected in FINAL)
    @rule(event=st.sampled_from(EVENTS))
    def only_reprocess_leaves_a_final_status(self, event: str) -> None:
        assert getattr(self.session, f"may_{event}")() is (event == "reprocess")

    @invariant()
    def status_is_a_record_status(self) -> None:
        assert isinstance(self.session.status, S)
        assert self.session.status is self.expected

    @invariant()
    def allowed_events_match_the_table(self) -> None:
        expected = tuple(e for (s, e) in EXPECTED if s is self.expected)
        assert self.session.allowed_events() == expected


TestSessionAgainstTable = SessionAgainstTable.TestCase
