"""Session: the model code drives through the shared lifecycle machine."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest
from transitions import EventData

from design_table import MOVES, as_lifecycle
from expected_table import ALL_PAIRS, EXPECTED
from nexuslims_lifecycle.enums import RecordStatus as S
from nexuslims_lifecycle.errors import (
    IllegalTransition,
    InvalidArgument,
    MissingEndTime,
    UnknownStatus,
)
from nexuslims_lifecycle.machine import Session, lifecycle_machine
from nexuslims_lifecycle.rules import EVENTS, FILE_DELAY_GUARD

SID = "https://nemo.example.org/api/usage_events/?id=4711"
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def fire(session: Session, event: str) -> bool:
    """Fire ``event`` with arguments that make any guard pass."""
    result: bool = getattr(session, event)()
    return result


@pytest.mark.parametrize(("status", "event"), ALL_PAIRS)
def test_every_status_event_pair_follows_the_table(status: S, event: str) -> None:
    """Legal pairs reach the table's destination; illegal ones raise and change nothing."""
    session = Session(SID, status, ended_at=LONG_AGO)
    if (status, event) in EXPECTED:
        assert fire(session, event) is True
        assert session.status is EXPECTED[status, event]
        return
    with pytest.raises(IllegalTransition, match=f"cannot '{event}' from {status.value}") as caught:
        fire(session, event)
    assert session.status is status
    assert session.ended_at == LONG_AGO
    error = caught.value
    assert (error.status, error.event, error.index) == (status.value, event, None)
    assert error.allowed == tuple(e for (s, e) in EXPECTED if s is status)


@pytest.mark.parametrize("status", [S.COMPLETED, S.NO_CONSENT])
def test_a_final_status_is_left_only_by_reprocess(status: S) -> None:
    session = Session(SID, status)
    with pytest.raises(IllegalTransition, match=r"legal from there: reprocess$"):
        session.retry()
    assert session.status is status
    assert session.may_reprocess() is True
    assert session.reprocess() is True
    assert session.status is S.TO_BE_BUILT
    assert session.may_reprocess() is False


def test_illegal_message_lists_legal_moves() -> None:
    with pytest.raises(IllegalTransition, match=r"legal from there: complete, retry$"):
        Session(SID, "BUILT_NOT_EXPORTED").fail()


def test_new_session_waits_for_end_with_no_end_time() -> None:
    session = Session(SID, instrument="FEI-Titan-TEM", user="ada")
    assert session.status is S.WAITING_FOR_END
    assert (session.instrument, session.user, session.ended_at) == ("FEI-Titan-TEM", "ada", None)
    assert repr(session) == f"Session({SID!r}, status=WAITING_FOR_END)"


@pytest.mark.parametrize("status", list(S))
def test_status_given_as_exact_string_becomes_the_member(status: S) -> None:
    assert Session(SID, status.value).status is status


@pytest.mark.parametrize("bad", ["to_be_built", "DONE", None, 1, ""])
def test_status_given_as_anything_else_is_refused(bad: object) -> None:
    with pytest.raises(UnknownStatus, match="expected one of WAITING_FOR_END"):
        Session(SID, bad)  # type: ignore[arg-type]


def test_status_cannot_be_assigned() -> None:
    session = Session(SID)
    with pytest.raises(AttributeError):
        session.status = S.COMPLETED  # type: ignore[misc]
    assert session.status is S.WAITING_FOR_END


def test_sessions_carry_no_per_session_machine_bindings() -> None:
    """No __dict__, no bound triggers: a session is its slots."""
    session = Session(SID)
    session.end()
    session.fail()
    assert not hasattr(session, "__dict__")
    assert lifecycle_machine().models == []


def test_no_to_status_shortcut_exists() -> None:
    machine = lifecycle_machine()
    assert not [name for name in machine.events if name.startswith("to_")]
    assert not [name for name in dir(Session) if name.startswith("to_")]
    assert set(machine.events) == set(EVENTS)


def test_end_records_the_end_time() -> None:
    session = Session(SID)
    at = datetime(2026, 11, 27, 17, 30, tzinfo=UTC)
    assert session.end(at=at)
    assert session.ended_at == at


def test_end_defaults_to_now() -> None:
    before = datetime.now(UTC)
    session = Session(SID)
    session.end()
    assert session.ended_at is not None
    assert before <= session.ended_at <= datetime.now(UTC)


def test_illegal_end_leaves_end_time_alone() -> None:
    session = Session(SID, "TO_BE_BUILT", ended_at=LONG_AGO)
    with pytest.raises(IllegalTransition):
        session.end(at=datetime(2026, 1, 1, tzinfo=UTC))
    assert session.ended_at == LONG_AGO


NAIVE = datetime(2026, 1, 1)  # noqa: DTZ001 - naive on purpose


@pytest.mark.parametrize(
    "call",
    [
        lambda _: Session(SID, ended_at=NAIVE),
        lambda _: Session(SID).end(at=NAIVE),
        lambda session: session.find_no_files(now=NAIVE),
        lambda session: session.may_find_no_files(now=NAIVE),
    ],
    ids=["init", "end", "find_no_files", "may_find_no_files"],
)
def test_naive_datetimes_are_refused(call: Callable[[Session], object]) -> None:
    session = Session(SID, "TO_BE_BUILT", ended_at=LONG_AGO)
    with pytest.raises(ValueError, match="must be timezone-aware"):
        call(session)
    assert session.status is S.TO_BE_BUILT


class TestFileDelayGuard:
    """find_no_files moves only once the file delay has passed since the end."""

    ENDED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

    def session(self) -> Session:
        return Session(SID, "TO_BE_BUILT", ended_at=self.ENDED)

    def test_refuses_before_the_default_two_days(self) -> None:
        session = self.session()
        now = self.ENDED + timedelta(days=2) - timedelta(seconds=1)
        assert session.may_find_no_files(now=now) is False
        assert session.find_no_files(now=now) is False
        assert session.status is S.TO_BE_BUILT

    def test_moves_once_two_days_have_passed(self) -> None:
        session = self.session()
        now = self.ENDED + timedelta(days=2)
        assert session.may_find_no_files(now=now) is True
        assert session.find_no_files(now=now) is True
        assert session.status is S.NO_FILES_FOUND

    def test_delay_can_be_set_per_call(self) -> None:
        session = self.session()
        now = self.ENDED + timedelta(hours=2)
        assert session.find_no_files(now=now, delay=timedelta(hours=3)) is False
        assert session.find_no_files(now=now, delay=timedelta(hours=1)) is True

    def test_delay_can_be_set_per_class(self) -> None:
        class QuickSession(Session):
            file_delay = timedelta(minutes=5)

        session = QuickSession(SID, "TO_BE_BUILT", ended_at=self.ENDED)
        assert session.find_no_files(now=self.ENDED + timedelta(minutes=5)) is True

    def test_defaults_to_the_current_time(self) -> None:
        recent = Session(SID, "TO_BE_BUILT", ended_at=datetime.now(UTC))
        assert recent.find_no_files() is False
        assert Session(SID, "TO_BE_BUILT", ended_at=LONG_AGO).find_no_files() is True

    def test_call_arguments_do_not_leak_into_the_next_call(self) -> None:
        session = self.session()
        assert session.find_no_files(now=self.ENDED, delay=timedelta(0)) is True
        later = Session(SID, "TO_BE_BUILT", ended_at=datetime.now(UTC))
        assert later.find_no_files() is False

    def test_unknown_end_time_is_a_clear_error(self) -> None:
        session = Session(SID, "TO_BE_BUILT")
        with pytest.raises(MissingEndTime, match="end time is unknown; pass ended_at=") as caught:
            session.find_no_files()
        assert (caught.value.session_identifier, caught.value.event) == (SID, "find_no_files")
        assert session.status is S.TO_BE_BUILT
        with pytest.raises(MissingEndTime):
            session.may_find_no_files()

    def test_end_through_the_library_supplies_the_end_time(self) -> None:
        session = Session(SID)
        session.end(at=self.ENDED)
        assert session.find_no_files(now=self.ENDED + timedelta(days=3)) is True

    def test_illegal_before_guard(self) -> None:
        """From a status other than TO_BE_BUILT it is illegal, whatever the delay."""
        with pytest.raises(IllegalTransition):
            Session(SID, "ERROR", ended_at=LONG_AGO).find_no_files()
        assert Session(SID, "ERROR", ended_at=LONG_AGO).may_find_no_files() is False


@pytest.mark.parametrize(("status", "event"), ALL_PAIRS)
def test_may_agrees_with_the_table(status: S, event: str) -> None:
    session = Session(SID, status, ended_at=LONG_AGO)
    assert getattr(session, f"may_{event}")() is ((status, event) in EXPECTED)
    assert session.status is status


@pytest.mark.parametrize("status", list(S))
def test_allowed_events_lists_the_legal_events_in_table_order(status: S) -> None:
    assert Session(SID, status).allowed_events() == tuple(e for (s, e) in EXPECTED if s is status)


class Recorder(Session):
    """A subclass whose hooks log what ran, in order."""

    __slots__ = ("log",)
    fail_at: ClassVar[str | None] = None

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.log: list[str] = []

    def _hook(self, name: str) -> None:
        self.log.append(f"{name}:{self.status.value}")
        if name == self.fail_at:
            msg = f"{name} failed"
            raise RuntimeError(msg)

    def prepare_fail(self) -> None:
        self._hook("prepare_fail")

    def before_fail(self) -> None:
        self._hook("before_fail")

    def on_exit_TO_BE_BUILT(self) -> None:  # noqa: N802 - transitions' hook naming
        self._hook("on_exit_TO_BE_BUILT")

    def on_enter_ERROR(self) -> None:  # noqa: N802 - transitions' hook naming
        self._hook("on_enter_ERROR")

    def after_fail(self) -> None:
        self._hook("after_fail")


Move = tuple[str, str, str, str]


@pytest.fixture
def listened() -> Iterator[list[Move]]:
    seen: list[Move] = []

    def listener(session: Session, event: str, source: S, dest: S) -> None:
        seen.append((session.session_identifier, event, source.value, dest.value))

    remove = Session.add_listener(listener)
    yield seen
    remove()


def test_hooks_run_in_transitions_order_then_listeners(listened: list[Move]) -> None:
    session = Recorder(SID, "TO_BE_BUILT")
    assert session.fail() is True
    assert session.log == [
        "prepare_fail:TO_BE_BUILT",
        "before_fail:TO_BE_BUILT",
        "on_exit_TO_BE_BUILT:TO_BE_BUILT",
        "on_enter_ERROR:ERROR",
        "after_fail:ERROR",
    ]
    assert listened == [(SID, "fail", "TO_BE_BUILT", "ERROR")]


def test_hooks_do_not_run_for_other_events() -> None:
    session = Recorder(SID, "TO_BE_BUILT")
    session.complete()
    assert session.log == ["on_exit_TO_BE_BUILT:TO_BE_BUILT"]


def test_a_subclass_hook_does_not_run_for_the_parent_or_a_plain_subclass() -> None:
    class Plain(Session):
        pass

    for session in (Session(SID, "TO_BE_BUILT"), Plain(SID, "TO_BE_BUILT")):
        assert session.fail() is True
        assert session.status is S.ERROR


@pytest.mark.parametrize("failing", ["prepare_fail", "before_fail", "on_exit_TO_BE_BUILT"])
def test_hook_raising_before_the_state_change_changes_nothing(
    failing: str, monkeypatch: pytest.MonkeyPatch, listened: list[Move]
) -> None:
    monkeypatch.setattr(Recorder, "fail_at", failing)
    session = Recorder(SID, "TO_BE_BUILT")
    with pytest.raises(RuntimeError, match=f"{failing} failed"):
        session.fail()
    assert session.status is S.TO_BE_BUILT
    assert listened == []


@pytest.mark.parametrize(
    ("failing", "ran"),
    [("on_enter_ERROR", 4), ("after_fail", 5)],
)
def test_hook_raising_after_the_state_change_leaves_the_move_standing(
    failing: str,
    ran: int,
    monkeypatch: pytest.MonkeyPatch,
    listened: list[Move],
) -> None:
    monkeypatch.setattr(Recorder, "fail_at", failing)
    session = Recorder(SID, "TO_BE_BUILT")
    with pytest.raises(RuntimeError, match=f"{failing} failed"):
        session.fail()
    assert session.status is S.ERROR
    assert len(session.log) == ran
    assert listened == [(SID, "fail", "TO_BE_BUILT", "ERROR")]


def test_end_hooks_receive_the_end_time_and_a_refusal_restores_it() -> None:
    seen: list[datetime] = []

    class Strict(Session):
        def before_end(self, at: datetime) -> None:
            seen.append(at)
            msg = "not now"
            raise RuntimeError(msg)

    session = Strict(SID)
    with pytest.raises(RuntimeError, match="not now"):
        session.end(at=LONG_AGO)
    assert seen == [LONG_AGO]
    assert session.status is S.WAITING_FOR_END
    assert session.ended_at is None


def test_end_held_back_by_a_condition_restores_the_end_time() -> None:
    class Holds(Session, conditions={"end": "harvested"}):
        def harvested(self, at: datetime) -> bool:
            return at > LONG_AGO

    session = Holds(SID)
    assert session.end(at=LONG_AGO) is False
    assert (session.status, session.ended_at) == (S.WAITING_FOR_END, None)
    later = datetime(2026, 1, 1, tzinfo=UTC)
    assert session.end(at=later) is True
    assert (session.status, session.ended_at) == (S.TO_BE_BUILT, later)


def test_the_guard_gets_now_and_delay_as_event_arguments() -> None:
    calls: list[dict[str, object]] = []

    class Watched(Session):
        def file_delay_elapsed(self, **arguments: object) -> bool:
            calls.append(arguments)
            return False

        def prepare_find_no_files(self, now: datetime, delay: timedelta) -> None:
            calls.append({"prepare": (now, delay)})

    session = Watched(SID, "TO_BE_BUILT", ended_at=LONG_AGO)
    now, delay = datetime(2026, 1, 1, tzinfo=UTC), timedelta(hours=1)
    assert session.find_no_files(now=now, delay=delay) is False
    assert calls == [{"prepare": (now, delay)}, {"now": now, "delay": delay}]


def test_the_file_delay_guard_is_the_method_named_by_the_rules() -> None:
    assert Session.file_delay_elapsed.__name__ == FILE_DELAY_GUARD
    session = Session(SID, "TO_BE_BUILT", ended_at=LONG_AGO)
    now = LONG_AGO + timedelta(hours=1)
    assert session.file_delay_elapsed(now=now, delay=timedelta(hours=1)) is True
    assert session.file_delay_elapsed(now=now, delay=timedelta(hours=2)) is False
    with pytest.raises(MissingEndTime, match="cannot decide 'find_no_files'"):
        Session(SID, "TO_BE_BUILT").file_delay_elapsed()


def test_guard_refusal_runs_prepare_but_no_other_hook() -> None:
    calls: list[str] = []

    class Watched(Session):
        def prepare_find_no_files(self, **_: object) -> None:
            calls.append("prepare")

        def before_find_no_files(self, **_: object) -> None:
            calls.append("before")

    session = Watched(SID, "TO_BE_BUILT", ended_at=datetime.now(UTC))
    assert session.find_no_files() is False
    assert calls == ["prepare"]


def test_a_hook_name_that_names_nothing_is_refused_at_class_creation() -> None:
    with pytest.raises(TypeError, match="'EROR' is not one of WAITING_FOR_END"):

        class Typo(Session):
            def on_enter_EROR(self) -> None:  # noqa: N802 - the typo under test
                pass

    with pytest.raises(TypeError, match="'finish' is not one of end, complete"):

        class BadEvent(Session):
            def after_finish(self) -> None:
                pass

    with pytest.raises(TypeError, match="'finish' is not one of end, complete"):

        class BadPrepare(Session):
            def prepare_finish(self) -> None:
                pass


def test_machine_callback_names_are_not_mistaken_for_hooks() -> None:
    class Logged(Session, prepare_event="prepare_event", after_state_change="after_state_change"):
        log: ClassVar[list[str]] = []

        def prepare_event(self) -> None:
            self.log.append("prepare_event")

        def after_state_change(self) -> None:
            self.log.append("after_state_change")

    assert Logged(SID, "TO_BE_BUILT").fail() is True
    assert Logged.log == ["prepare_event", "after_state_change"]


def test_a_hook_for_an_event_the_class_lifecycle_lacks_is_refused() -> None:
    # No fail; another way into ERROR keeps the lifecycle valid.
    moves = (*MOVES, ("find_no_reservation", "BUILT_NOT_EXPORTED", "ERROR"))
    without_fail = as_lifecycle(tuple(move for move in moves if move[0] != "fail"))
    with pytest.raises(TypeError, match=r"Bad.before_fail .* 'fail' is not one of end, complete"):

        class Bad(Session, lifecycle=without_fail):
            def before_fail(self) -> None:
                pass


def test_machine_options_reach_the_machine() -> None:
    class Sent(Session, send_event=True, finalize_event="finalized"):
        seen: ClassVar[list[tuple[str, str, bool | None]]] = []

        def finalized(self, data: EventData) -> None:
            self.seen.append((data.event.name, data.state.name, data.result))

    session = Sent(SID, "TO_BE_BUILT", ended_at=datetime.now(UTC))
    assert session.find_no_files() is False  # the rule's guard still gets now= and delay=
    assert session.fail() is True
    assert Sent.seen == [("find_no_files", "TO_BE_BUILT", False), ("fail", "ERROR", True)]


def test_on_exception_receives_a_hook_error_and_the_call_returns_false() -> None:
    class Caught(Session, on_exception="caught"):
        errors: ClassVar[list[str]] = []

        def before_fail(self) -> None:
            msg = "builder down"
            raise RuntimeError(msg)

        def caught(self) -> None:
            self.errors.append("caught")

    session = Caught(SID, "TO_BE_BUILT")
    assert session.fail() is False
    assert session.status is S.TO_BE_BUILT
    assert Caught.errors == ["caught"]
    with pytest.raises(IllegalTransition):  # an illegal event is still refused loudly
        session.reprocess()


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"conditions": {"finish": "ok"}}, r"conditions= names the event 'finish'"),
        ({"unless": {"fail": "missing"}}, r"unless= for 'fail' names 'missing', which is not"),
    ],
)
def test_conditions_naming_nothing_are_refused_at_class_creation(
    keywords: dict[str, object], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        type("Bad", (Session,), {"ok": lambda _self: True}, **keywords)


def test_conditions_and_unless_hold_a_move_back() -> None:
    class Careful(Session, conditions={"fail": "ready"}, unless={"complete": ["busy"]}):
        def ready(self) -> bool:
            return self.user == "ready"

        def busy(self) -> bool:
            return self.user == "busy"

    held = Careful(SID, "TO_BE_BUILT", user="busy")
    assert (held.may_fail(), held.fail(), held.may_complete(), held.complete()) == (
        False,
        False,
        False,
        False,
    )
    assert held.status is S.TO_BE_BUILT
    ready = Careful(SID, "TO_BE_BUILT", user="ready")
    assert ready.may_fail() is True
    assert ready.fail() is True


def test_options_are_inherited_and_extended_by_subclasses() -> None:
    class Base(Session, conditions={"fail": "ready"}):
        def ready(self) -> bool:
            return False

    class Child(Base):
        def on_enter_ERROR(self) -> None:  # noqa: N802 - transitions' hook naming
            pass

    assert Child(SID, "TO_BE_BUILT").fail() is False


def test_a_hook_firing_another_event_tells_each_move_in_order(listened: list[Move]) -> None:
    class Chained(Session):
        def on_enter_BUILT_NOT_EXPORTED(self) -> None:  # noqa: N802 - transitions' hook naming
            self.complete()

        def on_enter_ERROR(self) -> None:  # noqa: N802 - transitions' hook naming
            self.retry()

    session = Chained(SID, "TO_BE_BUILT")
    assert session.fail_export() is True
    assert session.status is S.COMPLETED
    assert session.reprocess() is True
    assert session.fail() is True
    assert session.status is S.TO_BE_BUILT
    assert listened == [
        (SID, "fail_export", "TO_BE_BUILT", "BUILT_NOT_EXPORTED"),
        (SID, "complete", "BUILT_NOT_EXPORTED", "COMPLETED"),
        (SID, "reprocess", "COMPLETED", "TO_BE_BUILT"),
        (SID, "fail", "TO_BE_BUILT", "ERROR"),
        (SID, "retry", "ERROR", "TO_BE_BUILT"),
    ]


def test_listeners_are_told_after_every_hook_of_the_call() -> None:
    order: list[str] = []

    class Chained(Session, queued=True):
        def on_enter_ERROR(self) -> None:  # noqa: N802 - transitions' hook naming
            order.append("on_enter_ERROR")
            self.retry()

        def after_retry(self) -> None:
            order.append("after_retry")

    remove = Chained.add_listener(lambda _s, event, _a, _b: order.append(f"told {event}"))
    try:
        assert Chained(SID, "TO_BE_BUILT").fail() is True
    finally:
        remove()
    assert order == ["on_enter_ERROR", "after_retry", "told fail", "told retry"]


def test_listeners_belong_to_a_class_and_its_subclasses() -> None:
    class Parent(Session):
        pass

    class Child(Parent):
        pass

    heard: dict[str, list[str]] = {"session": [], "parent": [], "child": []}

    def hears(name: str) -> Callable[[Session, str, S, S], None]:
        return lambda session, _e, _s, _d: heard[name].append(type(session).__name__)

    removers = [
        Session.add_listener(hears("session")),
        Child.add_listener(hears("child")),
        Parent.add_listener(hears("parent")),  # added after Child exists: Child hears it
    ]
    try:
        for cls in (Session, Parent, Child):
            cls(SID).end()
    finally:
        for remove in removers:
            remove()
    assert heard == {
        "session": ["Session", "Parent", "Child"],
        "parent": ["Parent", "Child"],
        "child": ["Child"],
    }


def test_listener_removed_is_no_longer_told_and_removing_twice_is_harmless() -> None:
    seen: list[str] = []

    def listener(session: Session, event: str, source: S, dest: S) -> None:
        seen.append(event)

    first = Session.add_listener(listener)
    second = Session.add_listener(listener)  # added twice: told twice
    Session(SID).end()
    first()
    first()
    Session(SID, "TO_BE_BUILT").fail()
    second()
    Session(SID, "ERROR").retry()
    assert seen == ["end", "end", "fail"]


def test_a_listener_must_be_callable() -> None:
    with pytest.raises(InvalidArgument, match="invalid listener 'log': expected a callable"):
        Session.add_listener("log")  # type: ignore[arg-type]
    Session(SID).end()  # nothing half-added


def test_listener_not_told_of_refused_or_illegal_moves(listened: list[Move]) -> None:
    with pytest.raises(IllegalTransition):
        Session(SID).complete()
    Session(SID, "TO_BE_BUILT", ended_at=datetime.now(UTC)).find_no_files()
    assert listened == []


def test_listener_error_propagates_and_the_move_stands() -> None:
    def broken(session: Session, event: str, source: S, dest: S) -> None:
        msg = "listener down"
        raise RuntimeError(msg)

    remove = Session.add_listener(broken)
    try:
        for session in (Session(SID), Recorder(SID)):
            with pytest.raises(RuntimeError, match="listener down"):
                session.end()
            assert session.status is S.TO_BE_BUILT
    finally:
        remove()


def test_the_package_leaves_the_transitions_logger_alone() -> None:
    """Quieting transitions is the application's choice, not the library's."""
    code = (
        "import logging; import nexuslims_lifecycle.machine; "
        "print(logging.getLogger('transitions.core').level)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == str(logging.NOTSET)
