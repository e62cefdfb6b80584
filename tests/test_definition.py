"""A lifecycle checks itself: broken definitions raise InvalidDefinition naming the problem."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from nexuslims_lifecycle import InvalidDefinition, LifecycleError, RecordStatus, Session
from nexuslims_lifecycle.machine import build_machine
from nexuslims_lifecycle.rules import LIFECYCLE, Lifecycle, Rule, validate

S = RecordStatus


def edited(change: Callable[[Rule], Rule | None], *extra: Rule, **fields: Any) -> Lifecycle:
    """Return LIFECYCLE with each rule passed through ``change`` (None drops it), plus ``extra``."""
    rules = tuple(new for rule in LIFECYCLE.rules if (new := change(rule)) is not None)
    return dataclasses.replace(LIFECYCLE, rules=(*rules, *extra), **fields)


def without_sources(event: str, *gone: RecordStatus) -> Callable[[Rule], Rule | None]:
    """Return a change that removes ``gone`` from the sources of ``event`` (the rule if empty)."""

    def change(rule: Rule) -> Rule | None:
        if rule.event != event:
            return rule
        sources = tuple(source for source in rule.sources if source not in gone)
        return dataclasses.replace(rule, sources=sources) if sources else None

    return change


def keep(rule: Rule) -> Rule:
    return rule


def problems_of(lifecycle: Lifecycle, model: type | None = Session) -> tuple[str, ...]:
    with pytest.raises(InvalidDefinition) as caught:
        validate(lifecycle, model=model)
    return caught.value.problems


def test_the_nexuslims_lifecycle_is_a_valid_definition() -> None:
    validate(LIFECYCLE, model=Session)


def test_a_status_no_move_reaches_is_reported_unreachable() -> None:
    lifecycle = edited(without_sources("find_no_reservation", S.TO_BE_BUILT))
    assert problems_of(lifecycle) == (
        "NO_RESERVATION is unreachable from the initial status WAITING_FOR_END: "
        "add a move that leads to it",
    )


DEAD_END = (
    "ERROR is not final and no final status (COMPLETED, NO_CONSENT) can be reached from it: "
    "a session there could never finish; add a move out of it, or declare it final"
)


def test_a_dead_end_that_is_not_final_is_reported() -> None:
    lifecycle = edited(without_sources("retry", S.ERROR))
    assert problems_of(lifecycle) == (DEAD_END,)


def test_a_loop_with_no_exit_is_reported_like_a_dead_end() -> None:
    lifecycle = edited(
        without_sources("retry", S.ERROR),
        Rule("retry", (S.ERROR,), S.ERROR, "loops for ever", by="operator"),
    )
    assert problems_of(lifecycle) == (DEAD_END,)


def test_a_lifecycle_without_final_statuses_says_none_are_declared() -> None:
    problems = problems_of(dataclasses.replace(LIFECYCLE, final=frozenset()))
    assert len(problems) == len(RecordStatus)
    assert problems[0] == (
        "WAITING_FOR_END is not final and no final status (none declared) can be reached "
        "from it: a session there could never finish; add a move out of it, or declare it "
        "final"
    )


def test_a_builder_move_out_of_a_final_status_is_reported() -> None:
    lifecycle = edited(
        without_sources("reprocess", S.COMPLETED),
        Rule("fail", (S.COMPLETED,), S.ERROR, "rebuilt and broke", by="builder"),
    )
    assert problems_of(lifecycle) == (
        "COMPLETED is final but 'fail' (by the builder) leads out of it (to ERROR): only an "
        "operator moves a session on from a final status; make the move an operator's, or "
        "do not declare COMPLETED final",
    )


def test_two_events_for_one_status_change_are_reported() -> None:
    lifecycle = edited(keep, Rule("retry", (S.COMPLETED,), S.TO_BE_BUILT, "", by="operator"))
    assert problems_of(lifecycle) == (
        "COMPLETED -> TO_BE_BUILT is made by 2 events ('reprocess', 'retry'): keep one, so a "
        "status change read from the database names its event",
    )


def test_two_moves_for_one_status_and_event_are_reported() -> None:
    lifecycle = edited(
        keep, Rule("complete", (S.TO_BE_BUILT,), S.ERROR, "contradicts", by="builder")
    )
    assert problems_of(lifecycle) == (
        "TO_BE_BUILT has 2 moves for 'complete' (to COMPLETED, ERROR): "
        "keep one rule per status and event",
        "TO_BE_BUILT -> ERROR is made by 2 events ('fail', 'complete'): keep one, so a "
        "status change read from the database names its event",
    )


def test_a_source_listed_twice_in_one_rule_is_two_moves() -> None:
    lifecycle = edited(
        lambda rule: (
            dataclasses.replace(rule, sources=(*rule.sources, S.ERROR))
            if rule.event == "retry"
            else rule
        )
    )
    assert problems_of(lifecycle) == (
        "ERROR has 2 moves for 'retry' (to TO_BE_BUILT, TO_BE_BUILT): "
        "keep one rule per status and event",
        "ERROR -> TO_BE_BUILT is made by 2 events ('retry', 'retry'): keep one, so a "
        "status change read from the database names its event",
    )


def test_an_enum_member_no_rule_mentions_is_reported() -> None:
    lifecycle = edited(without_sources("retry", S.NO_RESERVATION))
    lifecycle = dataclasses.replace(
        lifecycle, rules=tuple(r for r in lifecycle.rules if r.event != "find_no_reservation")
    )
    assert problems_of(lifecycle) == (
        "no rule mentions NO_RESERVATION: every RecordStatus member needs a rule that leads to it",
    )


def test_a_guard_that_names_no_method_is_reported() -> None:
    lifecycle = edited(
        lambda rule: dataclasses.replace(rule, guard="files_delay_elapsed") if rule.guard else rule
    )
    assert problems_of(lifecycle) == (
        "the guard 'files_delay_elapsed' of 'find_no_files' does not resolve: Session has no "
        "method 'files_delay_elapsed'; name a method that returns whether the move may happen",
    )


def test_guards_are_not_resolved_without_a_model() -> None:
    lifecycle = edited(lambda rule: dataclasses.replace(rule, guard="nowhere"))
    validate(lifecycle, model=None)
    assert problems_of(lifecycle, model=Session)[0].startswith("the guard 'nowhere' of 'end'")


def test_every_problem_is_reported_at_once_in_documented_order() -> None:
    lifecycle = edited(
        lambda rule: without_sources("retry", S.ERROR)(
            rule if rule.event != "reprocess" else without_sources("reprocess", S.NO_CONSENT)(rule)
        ),
        Rule("complete", (S.TO_BE_BUILT,), S.ERROR, "contradicts", by="builder"),
        Rule("end", (S.NO_CONSENT,), S.TO_BE_BUILT, "reopened", by="harvester"),
    )
    lifecycle = dataclasses.replace(
        lifecycle, rules=tuple(r for r in lifecycle.rules if r.event != "find_no_reservation")
    )
    with pytest.raises(InvalidDefinition) as caught:
        validate(lifecycle, model=Session)
    starts = [problem.split(":")[0] for problem in caught.value.problems]
    assert starts == [
        "TO_BE_BUILT has 2 moves for 'complete' (to COMPLETED, ERROR)",
        "TO_BE_BUILT -> ERROR is made by 2 events ('fail', 'complete')",
        "NO_RESERVATION is unreachable from the initial status WAITING_FOR_END",
        "NO_CONSENT is final but 'end' (by the harvester) leads out of it (to TO_BE_BUILT)",
        "ERROR is not final and no final status (COMPLETED, NO_CONSENT) can be reached from it",
    ]
    assert str(caught.value) == "invalid lifecycle definition: " + "; ".join(caught.value.problems)


def test_invalid_definition_is_a_lifecycle_error_and_a_value_error() -> None:
    error = InvalidDefinition(["one", "two"])
    assert isinstance(error, LifecycleError)
    assert isinstance(error, ValueError)
    assert error.problems == ("one", "two")
    assert str(error) == "invalid lifecycle definition: one; two"


def test_build_machine_refuses_a_broken_lifecycle() -> None:
    lifecycle = edited(keep, Rule("fail", (S.COMPLETED,), S.ERROR, "", by="builder"))
    with pytest.raises(InvalidDefinition, match=r"COMPLETED is final but 'fail' \(by the builder"):
        build_machine(lifecycle)


def test_a_session_subclass_with_a_broken_lifecycle_raises_and_leaves_session_alone() -> None:
    lifecycle = edited(without_sources("retry", S.ERROR))
    with pytest.raises(InvalidDefinition, match=r"ERROR is not final"):
        type("Refused", (Session,), {"__slots__": ()}, lifecycle=lifecycle)
    session = Session("unchanged")
    assert session.end() is True
    assert session.fail() is True
    assert session.allowed_events() == ("retry",)


def test_a_guard_is_resolved_on_the_subclass_that_uses_it() -> None:
    lifecycle = edited(
        lambda rule: dataclasses.replace(rule, guard="is_ready") if rule.guard else rule
    )
    with pytest.raises(InvalidDefinition, match=r"Picky has no method 'is_ready'"):
        type("Picky", (Session,), {"__slots__": ()}, lifecycle=lifecycle)

    class Ready(Session, lifecycle=lifecycle):
        __slots__ = ()

        def is_ready(self, **_: object) -> bool:  # receives the event's now= and delay=
            return False

    session = Ready("guarded", status="TO_BE_BUILT")
    assert session.find_no_files() is False
    assert session.status is S.TO_BE_BUILT


def test_a_session_subclass_follows_its_own_valid_lifecycle() -> None:
    lifecycle = edited(without_sources("retry", S.BUILT_NOT_EXPORTED))

    class NoExportRetry(Session, lifecycle=lifecycle):
        __slots__ = ()

    class Hooked(NoExportRetry):
        __slots__ = ()

        def on_enter_COMPLETED(self) -> None:  # noqa: N802 - hook names carry the status
            pass

    for cls in (NoExportRetry, Hooked):
        session = cls("own rules", status="BUILT_NOT_EXPORTED")
        assert session.allowed_events() == ("complete",)
        assert session.may_retry() is False
        with pytest.raises(LifecycleError, match=r"cannot 'retry' from BUILT_NOT_EXPORTED"):
            session.retry()
        assert session.status is S.BUILT_NOT_EXPORTED
    assert Session("plain", status="BUILT_NOT_EXPORTED").allowed_events() == ("complete", "retry")
