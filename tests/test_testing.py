"""The public test kit: strategies draw what they promise, the stateful test passes and can fail."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import Phase, given, settings
from hypothesis import errors as hypothesis_errors
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from design_table import MOVES, as_lifecycle
from nexuslims_lifecycle import (
    EVENTS,
    IllegalTransition,
    LifecycleError,
    RecordStatus,
    Session,
    legality,
)
from nexuslims_lifecycle.enums import EventType
from nexuslims_lifecycle.machine import Listener
from nexuslims_lifecycle.rules import FILE_DELAY, LIFECYCLE
from nexuslims_lifecycle.testing import (
    InvalidStrategyArgument,
    LifecycleStateMachine,
    Step,
    event_sequences,
    events,
    illegal_moves,
    legal_event_sequences,
    session_logs,
    statuses,
)

S = RecordStatus
LEGAL = {(source, event) for event, source, _ in MOVES}
DOCS = Path(__file__).parent.parent / "docs" / "testing.md"
# Coverage and bug-finding checks run a fixed number of derandomized examples,
# whatever the profile, so they pass or fail the same way on every run.
FIXED = settings(max_examples=300, derandomize=True, database=None, deadline=None)
# Every planted bug shows within a few steps. Shrinking is skipped: it only makes the
# report shorter, and costs more than finding the bug (the messages below do not
# depend on it).
FINDS_BUGS = settings(
    FIXED, report_multiple_bugs=False, stateful_step_count=10, phases=[Phase.generate]
)


def collect(
    strategy: st.SearchStrategy[Any], observe: Callable[[Any], object], examples: int = 300
) -> None:
    """Run ``observe`` on the fixed set of examples of ``strategy``."""

    @settings(FIXED, max_examples=examples)
    @given(strategy)
    def run(value: Any) -> None:
        observe(value)

    run()


# --- the kit against the real Session --------------------------------------------------
# The one stateful run of the twelve moves for a plain Session (the path of a class
# with nothing to call), checked against the test's own copy of the lifecycle table;
# the second run drives a Session whose hooks fire events (transitions' trigger path).
# Each runs as many programs as the profile says (2,000 in CI).


class AgainstDesignTable(LifecycleStateMachine):
    """The kit's expected model taken from the tests' own copy of the design table."""

    lifecycle = as_lifecycle()


TestSessionFollowsTheDesignTable = AgainstDesignTable.TestCase


class Chained(Session):
    """Hooks that fire events: a record built but not exported is exported at once, and
    a failed build is requeued."""

    __slots__ = ()

    def on_enter_BUILT_NOT_EXPORTED(self) -> None:  # noqa: N802 - transitions' hook naming
        self.complete()

    def on_enter_ERROR(self) -> None:  # noqa: N802 - transitions' hook naming
        self.retry()


class ChainedAgainstDesignTable(AgainstDesignTable):
    """The kit follows the moves a session's hooks make."""

    session_class = Chained


TestHooksThatFireEventsFollowTheDesignTable = ChainedAgainstDesignTable.TestCase


# --- statuses, events, illegal moves -----------------------------------------------------


def test_statuses_draw_every_record_status_and_nothing_else() -> None:
    seen: set[object] = set()
    collect(statuses(), seen.add)
    assert seen == set(RecordStatus)


def test_events_draw_every_event_and_nothing_else() -> None:
    seen: set[object] = set()
    collect(events(), seen.add)
    assert seen == set(EVENTS)


def test_illegal_moves_draw_exactly_the_moves_the_lifecycle_forbids() -> None:
    seen: set[object] = set()
    collect(illegal_moves(), seen.add)
    forbidden = {(s, e) for s in RecordStatus for e in EVENTS if (s.value, e) not in LEGAL}
    assert seen == forbidden


@given(illegal_moves())
def test_an_illegal_move_raises_and_leaves_the_session_unchanged(move: tuple[S, str]) -> None:
    status, event = move
    session = Session("illegal", status=status, ended_at=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(IllegalTransition, match=rf"cannot '{event}' from {status.value}"):
        getattr(session, event)()
    assert session.status is status
    assert session.ended_at == datetime(2026, 1, 1, tzinfo=UTC)


# --- legal histories ----------------------------------------------------------------------


@given(legal_event_sequences(max_size=12))
def test_a_legal_history_is_a_chain_of_legal_calls_in_time_order(steps: list[Step]) -> None:
    status, at = S.WAITING_FOR_END, None
    for step in steps:
        assert step.source is status
        assert (step.source.value, step.event) in LEGAL
        assert step.dest is (legality.next_status(status, step.event) if step.moved else status)
        assert step.at.tzinfo is UTC
        assert at is None or step.at > at
        status, at = step.dest, step.at
    assert len(steps) <= 12


@given(legal_event_sequences(max_size=12))
def test_only_the_file_delay_holds_a_legal_call_back(steps: list[Step]) -> None:
    for step in steps:
        if step.event == "find_no_files":
            assert step.ended_at is not None
            assert step.moved is (step.at - step.ended_at >= FILE_DELAY)
        else:
            assert step.moved


@given(legal_event_sequences(max_size=12))
def test_a_session_driven_through_a_legal_history_does_what_each_step_says(
    steps: list[Step],
) -> None:
    session = Session("driven")
    for step in steps:
        assert step.fire(session) is step.moved
        assert session.status is step.dest
        assert session.ended_at == step.ended_at
    moves = [step.event for step in steps if step.moved]
    assert legality.replay(moves) is session.status


@given(st.data(), statuses())
def test_a_legal_history_may_start_from_any_status(data: st.DataObject, start: S) -> None:
    steps = data.draw(legal_event_sequences(start=start.value, max_size=5))
    if not steps:
        return
    session = Session("resumed", status=start, ended_at=steps[0].ended_at)
    assert steps[0].source is start
    for step in steps:
        assert step.fire(session) is step.moved
    assert session.status is steps[-1].dest


def test_legal_histories_from_a_final_status_begin_with_reprocess() -> None:
    seen: set[str] = set()
    collect(
        legal_event_sequences(start=S.COMPLETED),
        lambda steps: seen.update(steps[:1] and [steps[0].event]),
    )
    assert seen == {"reprocess"}


def test_legal_histories_cover_every_move_and_both_guard_outcomes() -> None:
    seen: set[tuple[str, str, bool]] = set()

    def observe(steps: list[Step]) -> None:
        seen.update((step.source.value, step.event, step.moved) for step in steps)

    collect(legal_event_sequences(), observe)
    expected = {(source, event, True) for event, source, _ in MOVES}
    assert seen == expected | {("TO_BE_BUILT", "find_no_files", False)}


# --- any sequences ------------------------------------------------------------------------


@given(event_sequences())
def test_replay_refuses_a_sequence_exactly_at_its_first_illegal_step(sequence: list[str]) -> None:
    status, refused_at = S.WAITING_FOR_END, None
    for index, event in enumerate(sequence):
        if (status.value, event) not in LEGAL:
            refused_at = index
            break
        status = legality.next_status(status, event)
    if refused_at is None:
        assert legality.replay(sequence) is status
        return
    with pytest.raises(IllegalTransition, match=rf"^step {refused_at}: cannot") as caught:
        legality.replay(sequence)
    assert caught.value.index == refused_at


def test_event_sequences_hold_legal_and_illegal_ones_refused_from_every_status() -> None:
    refused_from: set[str] = set()
    legal_lengths: set[int] = set()

    def observe(sequence: list[str]) -> None:
        try:
            legality.replay(sequence)
        except IllegalTransition as error:
            refused_from.add(error.status)
        else:
            legal_lengths.add(len(sequence))

    # Every status but WAITING_FOR_END now has a way out, so refusals spread over more
    # statuses: 1,000 examples give each status dozens of them, not a handful.
    collect(event_sequences(), observe, examples=1_000)
    assert refused_from == {status.value for status in RecordStatus}
    assert max(legal_lengths) >= 5


# --- session_log rows ---------------------------------------------------------------------


@given(session_logs())
def test_session_log_rows_are_what_nexuslims_writes_for_a_legal_history(
    rows: list[dict[str, Any]],
) -> None:
    assert [row["timestamp"] for row in rows] == sorted(row["timestamp"] for row in rows)
    sessions: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        assert row["timestamp"].tzinfo is UTC
        sessions.setdefault(row["session_identifier"], []).append(row)
    for log in sessions.values():
        kinds = [row["event_type"] for row in log]
        (status,) = {row["record_status"] for row in log}
        assert len({row["instrument"] for row in log}) == len({row["user"] for row in log}) == 1
        assert [row["timestamp"] for row in log] == sorted({row["timestamp"] for row in log})
        assert kinds[0] == EventType.START.value
        assert kinds.count(EventType.START.value) == 1
        ended = EventType.END.value in kinds
        assert kinds[1:2] == ([EventType.END.value] if ended else [])
        assert set(kinds[2:]) <= {EventType.RECORD_GENERATION.value}
        attempts = len(kinds[2:])
        assert ended is (status != S.WAITING_FOR_END.value)
        assert attempts > 0 or status in {S.WAITING_FOR_END.value, S.TO_BE_BUILT.value}


def test_session_logs_cover_every_status_and_several_sessions() -> None:
    statuses_seen: set[str] = set()
    sizes: set[int] = set()

    def observe(rows: list[dict[str, Any]]) -> None:
        statuses_seen.update(row["record_status"] for row in rows)
        sizes.add(len({row["session_identifier"] for row in rows}))

    collect(session_logs(), observe)
    assert statuses_seen == {status.value for status in RecordStatus}
    assert sizes == {1, 2, 3}


# --- bad arguments fail at once ------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: legal_event_sequences(start="DONE"),
            r"legal_event_sequences\(start='DONE'\) cannot draw anything: start must be a "
            r"RecordStatus \(one of WAITING_FOR_END, TO_BE_BUILT, .*NO_RESERVATION\)",
        ),
        (
            lambda: legal_event_sequences(start=None),  # type: ignore[arg-type]
            r"legal_event_sequences\(start=None\) cannot draw anything",
        ),
        (
            lambda: legal_event_sequences(max_size=-1),
            r"legal_event_sequences\(max_size=-1\) cannot draw anything: max_size must be an "
            r"int >= 0",
        ),
        (
            lambda: legal_event_sequences(max_size=True),
            r"legal_event_sequences\(max_size=True\) cannot draw anything",
        ),
        (
            lambda: event_sequences(max_size=2.5),  # type: ignore[arg-type]
            r"event_sequences\(max_size=2.5\) cannot draw anything: max_size must be an int >= 0",
        ),
        (
            lambda: session_logs(max_sessions=0),
            r"session_logs\(max_sessions=0\) cannot draw anything: max_sessions must be an "
            r"int >= 1",
        ),
        (
            lambda: session_logs(max_steps=-3),
            r"session_logs\(max_steps=-3\) cannot draw anything: max_steps must be an int >= 0",
        ),
    ],
)
def test_a_strategy_given_impossible_arguments_raises_at_once(
    make: Callable[[], object], message: str
) -> None:
    with pytest.raises(InvalidStrategyArgument, match=message) as caught:
        make()
    error = caught.value
    assert isinstance(error, LifecycleError)
    assert isinstance(error, ValueError)
    assert isinstance(error, hypothesis_errors.InvalidArgument)
    assert error.name in {"start", "max_size", "max_sessions", "max_steps"}


def test_a_bad_argument_error_keeps_what_was_wrong() -> None:
    with pytest.raises(InvalidStrategyArgument) as caught:
        session_logs(max_steps=-3)
    error = caught.value
    assert (error.strategy, error.name, error.value, error.expected) == (
        "session_logs",
        "max_steps",
        -3,
        "an int >= 0",
    )


# --- the stateful test can fail -----------------------------------------------------------

COMPLETES_AFTER_NO_CONSENT = as_lifecycle(
    (*MOVES, ("complete", "NO_CONSENT", "COMPLETED")), final=("COMPLETED",)
)
COMPLETED_FAILS = as_lifecycle((*MOVES, ("fail", "COMPLETED", "ERROR")), final=("NO_CONSENT",))


class CompletesAfterNoConsent(Session, lifecycle=COMPLETES_AFTER_NO_CONSENT):
    """Wrong lifecycle: the builder may complete a session whose user refused consent."""

    __slots__ = ()


class FailsCompletedQuietly(Session, lifecycle=COMPLETED_FAILS):
    """Wrong lifecycle: COMPLETED -> ERROR, while allowed_events() hides it."""

    __slots__ = ()

    def allowed_events(self) -> tuple[str, ...]:
        return legality.allowed_events(self.status)


class IgnoresTheFileDelayWhenAsked(Session):
    """Bug: may_find_no_files() says yes without asking the guard."""

    __slots__ = ()

    def may_find_no_files(
        self,
        now: datetime | None = None,  # noqa: ARG002 - the bug: the time is ignored
        delay: timedelta | None = None,  # noqa: ARG002 - and so is the delay
    ) -> bool:
        return "find_no_files" in self.allowed_events()


class WaitsOneTickTooLong(Session):
    """Bug: the file delay counts as passed only strictly after it."""

    __slots__ = ()

    def find_no_files(self, now: datetime | None = None, delay: timedelta | None = None) -> bool:
        tick = timedelta(microseconds=1)
        return super().find_no_files(now, (self.file_delay if delay is None else delay) + tick)

    def may_find_no_files(
        self, now: datetime | None = None, delay: timedelta | None = None
    ) -> bool:
        tick = timedelta(microseconds=1)
        return super().may_find_no_files(now, (self.file_delay if delay is None else delay) + tick)


class WritesTheEndTimeFirst(Session):
    """Bug: end() records the time before it knows the move is legal."""

    __slots__ = ()

    def end(self, at: datetime | None = None) -> bool:
        self.ended_at = at
        return super().end(at)


class ReportsStatusAsText(Session):
    """Bug: status is the plain string NexusLIMS stores, not the RecordStatus member."""

    __slots__ = ()

    @property
    def status(self) -> RecordStatus:
        return super().status.value  # type: ignore[return-value]


class RefusesRetrySilently(Session):
    """Bug: an illegal retry returns False instead of raising."""

    __slots__ = ()

    def retry(self) -> bool:
        return self.may_retry() and super().retry()


class BlamesAnotherEvent(Session):
    """Bug: a refused retry reports itself as a refused complete."""

    __slots__ = ()

    def retry(self) -> bool:
        try:
            return super().retry()
        except IllegalTransition as error:
            raise IllegalTransition(error.status, "complete", error.allowed) from None


class AlwaysMayRetry(Session):
    """Bug: may_retry() answers yes from anywhere."""

    __slots__ = ()

    def may_retry(self) -> bool:
        return True


class FailsIntoTheWrongStatus(Session):
    """Bug: a failed build is filed as a missing reservation."""

    __slots__ = ()

    def fail(self) -> bool:
        if self.status is S.TO_BE_BUILT:
            return self.find_no_reservation()
        return super().fail()


class IgnoresConsentRefusals(Session):
    """Bug: deny_consent() does nothing and says so."""

    __slots__ = ()

    def deny_consent(self) -> bool:
        return False


class RemembersTheLastLook(Session):
    """Bug: a find_no_files() held back by the delay moves the end time."""

    __slots__ = ()

    def find_no_files(self, now: datetime | None = None, delay: timedelta | None = None) -> bool:
        moved = super().find_no_files(now, delay)
        if not moved:
            self.ended_at = now
        return moved


class _ToldByHand(Chained):
    """Chained, telling its listeners itself around each event method, as ``report`` says."""

    __slots__ = ()
    heard: ClassVar[list[Listener]]
    depth: ClassVar[list[int]]

    @classmethod
    def add_listener(cls, listener: Listener) -> Callable[[], None]:
        cls.heard.append(listener)
        return lambda: cls.heard.remove(listener)

    def tell(self, event: str, source: S, dest: S) -> None:
        for listener in self.heard:
            listener(self, event, source, dest)  # type: ignore[arg-type]

    def report(self, event: str, source: S, depth: int, moved: bool) -> None:
        raise NotImplementedError


def _told_by_hand(event: str) -> Callable[..., bool]:
    def fire(self: _ToldByHand, *args: Any, **kwargs: Any) -> bool:
        source, moved = self.status, False
        self.depth[0] += 1
        try:
            moved = getattr(Session, event)(self, *args, **kwargs)
        finally:
            self.depth[0] -= 1
            self.report(event, source, self.depth[0], moved)
        return moved

    return fire


for _event in EVENTS:
    setattr(_ToldByHand, _event, _told_by_hand(_event))


class ToldAsBefore(_ToldByHand):
    """Bug (how Session told listeners before): each call tells one move, from where it
    started to where the session ended up, so a hook's move is folded into the call that
    set it off: ('fail_export', TO_BE_BUILT, COMPLETED), and a fail whose hook retried is
    not told at all."""

    __slots__ = ()
    heard: ClassVar[list[Listener]] = []
    depth: ClassVar[list[int]] = [0]

    def report(self, event: str, source: S, depth: int, moved: bool) -> None:  # noqa: ARG002
        if self.status is not source:
            self.tell(event, source, self.status)


class ToldOnlyTheOuterCall(_ToldByHand):
    """Bug: only the call made by the caller is told, from its source to where the
    session ended up: a move that does not exist."""

    __slots__ = ()
    heard: ClassVar[list[Listener]] = []
    depth: ClassVar[list[int]] = [0]

    def report(self, event: str, source: S, depth: int, moved: bool) -> None:  # noqa: ARG002
        if depth == 0 and self.status is not source:
            self.tell(event, source, self.status)


class HidesMovesMadeByHooks(_ToldByHand):
    """Bug: the call made by the caller is told as its own move; the hooks' moves are not."""

    __slots__ = ()
    heard: ClassVar[list[Listener]] = []
    depth: ClassVar[list[int]] = [0]

    def report(self, event: str, source: S, depth: int, moved: bool) -> None:
        rule = LIFECYCLE.rule(source, event)
        if depth == 0 and moved and rule is not None:
            self.tell(event, source, rule.dest)


class CompletesWithTheStatus(Session):
    """Bug: complete() returns the new status instead of True."""

    __slots__ = ()

    def complete(self) -> bool:
        super().complete()
        return self.status  # type: ignore[return-value]


BROKEN_SESSIONS = [
    (
        BlamesAnotherEvent,
        r"retry\(\) from (\w+) raised IllegalTransition for 'complete' from \1; it must name "
        r"the status and event of the refused move",
    ),
    (
        AlwaysMayRetry,
        r"may_retry\(\) returned True from \w+, where the lifecycle forbids 'retry'",
    ),
    (
        FailsIntoTheWrongStatus,
        r"fail\(\) from TO_BE_BUILT told the listeners \[find_no_reservation: TO_BE_BUILT -> "
        r"NO_RESERVATION\], but not 'fail: TO_BE_BUILT -> ERROR', the move it made",
    ),
    (
        IgnoresConsentRefusals,
        r"deny_consent\(\) from TO_BE_BUILT returned False, but the lifecycle allows it "
        r"without a guard: the move must happen",
    ),
    (
        RemembersTheLastLook,
        r"find_no_files\(now=.*\) from TO_BE_BUILT was held back by its guard but changed "
        r"the session from TO_BE_BUILT \(ended at .*\) to TO_BE_BUILT \(ended at .*\); a "
        r"move that does not happen must change nothing",
    ),
    (
        CompletesWithTheStatus,
        r"complete\(\) from \w+ returned <RecordStatus.COMPLETED: 'COMPLETED'>, not True or "
        r"False",
    ),
    (
        CompletesAfterNoConsent,
        r"session.allowed_events\(\) is \('reprocess', 'complete'\) at NO_CONSENT; the "
        r"lifecycle allows \('reprocess',\)",
    ),
    (
        FailsCompletedQuietly,
        r"fail\(\) from COMPLETED returned True and left the session ERROR, but "
        r"the lifecycle forbids 'fail' from COMPLETED: it must raise IllegalTransition",
    ),
    (
        IgnoresTheFileDelayWhenAsked,
        r"may_find_no_files\(\) said True from TO_BE_BUILT, but find_no_files\(now=.*\) "
        r"then returned False",
    ),
    (
        WaitsOneTickTooLong,
        r"find_no_files\(now=.*\) from TO_BE_BUILT returned False, but with the session "
        r"ended at .* its guard 'file_delay_elapsed' should have let it happen",
    ),
    (
        WritesTheEndTimeFirst,
        r"the refused end\(at=.*\) from \w+ changed the session from \w+ \(ended at .*\) to "
        r"\w+ \(ended at .*\); "
        r"an illegal move must change nothing",
    ),
    (
        ReportsStatusAsText,
        r"session.status is 'WAITING_FOR_END', a str: it must be a RecordStatus member",
    ),
    (
        ToldAsBefore,
        r"(fail_export|fail)\(\) from TO_BE_BUILT told the listeners \[(complete|retry): "
        r"(BUILT_NOT_EXPORTED|ERROR) -> .*\]: '.*' starts from \3, but the session was then "
        r"TO_BE_BUILT; each move must be told with its own source, in order",
    ),
    (
        ToldOnlyTheOuterCall,
        r"fail_export\(\) from TO_BE_BUILT told the listeners \[fail_export: TO_BE_BUILT -> "
        r"COMPLETED\]: 'fail_export: TO_BE_BUILT -> COMPLETED' is not a move of the lifecycle|"
        r"fail\(\) from TO_BE_BUILT told the listeners \[\], but not 'fail: TO_BE_BUILT -> "
        r"ERROR', the move it made; no move may be hidden",
    ),
    (
        HidesMovesMadeByHooks,
        r"(fail_export|fail)\(\) from TO_BE_BUILT told the listeners \[\1: TO_BE_BUILT -> "
        r"(BUILT_NOT_EXPORTED|ERROR)\], which end at \2, but the session is "
        r"(COMPLETED|TO_BE_BUILT)",
    ),
    (
        RefusesRetrySilently,
        r"retry\(\) from (\w+) returned False and left the session \1, but the lifecycle "
        r"forbids 'retry' from \1: it must raise IllegalTransition",
    ),
]


@pytest.mark.parametrize(
    ("session_class", "message"),
    BROKEN_SESSIONS,
    ids=[session_class.__name__ for session_class, _ in BROKEN_SESSIONS],
)
def test_the_stateful_test_catches_a_session_that_breaks_the_lifecycle(
    session_class: type[Session], message: str
) -> None:
    class Check(LifecycleStateMachine):
        lifecycle = as_lifecycle()

    Check.session_class = session_class
    with pytest.raises(AssertionError, match=message):
        run_state_machine_as_test(Check, settings=FINDS_BUGS)


def test_the_stateful_test_catches_a_wrong_expected_table_too() -> None:
    class Check(LifecycleStateMachine):
        lifecycle = COMPLETES_AFTER_NO_CONSENT

    expected = (
        r"complete\(\) from NO_CONSENT raised IllegalTransition|"
        r"allowed_events\(\) is \('reprocess',\)"
    )
    with pytest.raises(AssertionError, match=expected):
        run_state_machine_as_test(Check, settings=FINDS_BUGS)


def test_the_final_invariant_catches_a_builder_move_out_of_a_final_status() -> None:
    machine = LifecycleStateMachine()
    machine.only_an_operator_leaves_a_final_status()
    reprocess = next(rule for rule in LIFECYCLE.rules if rule.event == "reprocess")
    machine.last_move = (S.NO_CONSENT, reprocess)
    machine.only_an_operator_leaves_a_final_status()
    complete = next(rule for rule in COMPLETES_AFTER_NO_CONSENT.rules if rule.event == "complete")
    machine.last_move = (S.NO_CONSENT, complete)
    with pytest.raises(
        AssertionError,
        match=r"'complete' by the builder moved the session out of the final status NO_CONSENT "
        r"to COMPLETED; only an operator moves a session on from a final status",
    ):
        machine.only_an_operator_leaves_a_final_status()


def test_the_status_invariant_catches_a_session_that_is_not_where_the_lifecycle_says() -> None:
    class StartsLate(LifecycleStateMachine):
        def make_session(self) -> Session:
            return Session("late", status=S.TO_BE_BUILT)

    with pytest.raises(
        AssertionError,
        match=r"session.status is TO_BE_BUILT, but the lifecycle "
        r"says WAITING_FOR_END",
    ):
        run_state_machine_as_test(StartsLate, settings=FINDS_BUGS)


def test_the_legality_invariant_also_checks_the_legality_module_for_the_library_lifecycle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    machine = LifecycleStateMachine()
    assert machine.lifecycle is LIFECYCLE
    machine.allowed_events_agree_with_legality()
    monkeypatch.setattr(legality, "allowed_events", lambda _status: ())
    with pytest.raises(
        AssertionError,
        match=r"legality.allowed_events\(WAITING_FOR_END\) is \(\); the lifecycle allows "
        r"\('end',\)",
    ):
        machine.allowed_events_agree_with_legality()


# --- the docs page's example runs ---------------------------------------------------------


def test_the_docs_examples_run_and_pass() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    namespace: dict[str, Any] = {"__name__": "docs_testing_example"}
    exec(compile("\n".join(blocks), str(DOCS), "exec"), namespace)  # noqa: S102 - our own docs
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert len(tests) == 1
    for test in tests:
        test()
    machine = namespace["StatusMirrorMachine"]
    assert issubclass(machine, LifecycleStateMachine)
    run_state_machine_as_test(machine, settings=settings(FIXED, max_examples=100))


@pytest.mark.parametrize("max_size", [0, 1, 2])
def test_event_sequences_never_exceed_max_size(max_size: int) -> None:
    lengths: set[int] = set()
    collect(event_sequences(max_size=max_size), lambda sequence: lengths.add(len(sequence)))
    assert lengths == set(range(max_size + 1))


WAITS_FOR_A_FLAG = dataclasses.replace(
    as_lifecycle(),
    rules=tuple(
        dataclasses.replace(rule, guard="files_are_in") if rule.guard else rule
        for rule in as_lifecycle().rules
    ),
)


class WaitsForAFlag(Session, lifecycle=WAITS_FOR_A_FLAG):
    """A session whose find_no_files waits on a guard the kit knows nothing about."""

    __slots__ = ()

    def files_are_in(self, **_: object) -> bool:  # receives the event's now= and delay=
        return self.session_identifier.endswith("1")


@pytest.mark.parametrize("identifier", ["session-1", "session-2"])
def test_the_stateful_test_accepts_either_outcome_of_a_guard_it_cannot_evaluate(
    identifier: str,
) -> None:
    class Check(LifecycleStateMachine):
        session_class = WaitsForAFlag
        lifecycle = WAITS_FOR_A_FLAG

        def make_session(self) -> Session:
            return self.session_class(identifier)

    run_state_machine_as_test(Check, settings=settings(FIXED, max_examples=100))
