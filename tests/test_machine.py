"""Session: the model code drives through the shared lifecycle machine."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest

from expected_table import ALL_PAIRS, EXPECTED
from nexuslims_lifecycle import machine as machine_module
from nexuslims_lifecycle.enums import RecordStatus as S
from nexuslims_lifecycle.errors import IllegalTransition, MissingEndTime, UnknownStatus
from nexuslims_lifecycle.machine import Session, add_listener, lifecycle_machine, remove_listener
from nexuslims_lifecycle.rules import EVENTS

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

    def before_fail(self) -> None:
        self._hook("before_fail")

    def on_exit_TO_BE_BUILT(self) -> None:  # noqa: N802 - transitions' hook naming
        self._hook("on_exit_TO_BE_BUILT")

    def on_enter_ERROR(self) -> None:  # noqa: N802 - transitions' hook naming
        self._hook("on_enter_ERROR")

    def after_fail(self) -> None:
        self._hook("after_fail")


@pytest.fixture
def listened() -> list[tuple[str, str, str, str]]:
    seen: list[tuple[str, str, str, str]] = []

    def listener(session: Session, event: str, source: S, dest: S) -> None:
        seen.append((session.session_identifier, event, source.value, dest.value))

    remove = add_listener(listener)
    yield seen
    remove()


def test_hooks_run_in_transitions_order_then_listeners(
    listened: list[tuple[str, str, str, str]],
) -> None:
    session = Recorder(SID, "TO_BE_BUILT")
    assert session.fail() is True
    assert session.log == [
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


def test_subclass_with_hooks_has_one_machine_shared_by_its_instances() -> None:
    assert Recorder._compiled is not Session._compiled
    assert Recorder(SID)._compiled is Recorder(SID)._compiled

    class Plain(Session):
        pass

    assert Plain._compiled is Session._compiled


@pytest.mark.parametrize("failing", ["before_fail", "on_exit_TO_BE_BUILT"])
def test_hook_raising_before_the_state_change_changes_nothing(
    failing: str, monkeypatch: pytest.MonkeyPatch, listened: list[tuple[str, str, str, str]]
) -> None:
    monkeypatch.setattr(Recorder, "fail_at", failing)
    session = Recorder(SID, "TO_BE_BUILT")
    with pytest.raises(RuntimeError, match=f"{failing} failed"):
        session.fail()
    assert session.status is S.TO_BE_BUILT
    assert listened == []


@pytest.mark.parametrize(
    ("failing", "ran"),
    [("on_enter_ERROR", 3), ("after_fail", 4)],
)
def test_hook_raising_after_the_state_change_leaves_the_move_standing(
    failing: str,
    ran: int,
    monkeypatch: pytest.MonkeyPatch,
    listened: list[tuple[str, str, str, str]],
) -> None:
    monkeypatch.setattr(Recorder, "fail_at", failing)
    session = Recorder(SID, "TO_BE_BUILT")
    with pytest.raises(RuntimeError, match=f"{failing} failed"):
        session.fail()
    assert session.status is S.ERROR
    assert len(session.log) == ran
    assert listened == [(SID, "fail", "TO_BE_BUILT", "ERROR")]


def test_end_hook_raising_before_the_change_restores_end_time() -> None:
    class Strict(Session):
        def before_end(self) -> None:
            msg = "not now"
            raise RuntimeError(msg)

    session = Strict(SID)
    with pytest.raises(RuntimeError, match="not now"):
        session.end(at=LONG_AGO)
    assert session.status is S.WAITING_FOR_END
    assert session.ended_at is None


def test_guard_refusal_runs_no_hook() -> None:
    class Watched(Session):
        calls: ClassVar[list[str]] = []

        def before_find_no_files(self) -> None:
            self.calls.append("before")

    session = Watched(SID, "TO_BE_BUILT", ended_at=datetime.now(UTC))
    assert session.find_no_files() is False
    assert Watched.calls == []


def test_a_hook_name_that_names_nothing_is_refused_at_class_creation() -> None:
    with pytest.raises(TypeError, match="'EROR' is not one of WAITING_FOR_END"):

        class Typo(Session):
            def on_enter_EROR(self) -> None:  # noqa: N802 - the typo under test
                pass

    with pytest.raises(TypeError, match="'finish' is not one of end, complete"):

        class BadEvent(Session):
            def after_finish(self) -> None:
                pass


def test_listener_removed_is_no_longer_told() -> None:
    seen: list[str] = []

    def listener(session: Session, event: str, source: S, dest: S) -> None:
        seen.append(event)

    add_listener(listener)
    Session(SID).end()
    remove_listener(listener)
    Session(SID).end()
    remove_listener(listener)  # removing twice is harmless
    assert seen == ["end"]
    assert machine_module._listeners == ()


def test_listener_not_told_of_refused_or_illegal_moves(
    listened: list[tuple[str, str, str, str]],
) -> None:
    with pytest.raises(IllegalTransition):
        Session(SID).complete()
    Session(SID, "TO_BE_BUILT", ended_at=datetime.now(UTC)).find_no_files()
    assert listened == []


def test_listener_error_propagates_and_the_move_stands() -> None:
    def broken(session: Session, event: str, source: S, dest: S) -> None:
        msg = "listener down"
        raise RuntimeError(msg)

    remove = add_listener(broken)
    try:
        session = Session(SID)
        with pytest.raises(RuntimeError, match="listener down"):
            session.end()
        assert session.status is S.TO_BE_BUILT
    finally:
        remove()


def test_transitions_logger_is_quiet_by_default() -> None:
    import logging

    assert logging.getLogger("transitions.core").getEffectiveLevel() >= logging.WARNING
