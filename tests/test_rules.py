"""The lifecycle table as data, and the parsing of statuses and events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from design_table import EVENTS as DESIGN_EVENTS
from design_table import FINAL, GUARDS, INITIAL, MOVES, by
from expected_table import EXPECTED
from nexuslims_lifecycle.enums import RecordStatus as S
from nexuslims_lifecycle.errors import UnknownEvent, UnknownStatus
from nexuslims_lifecycle.rules import (
    EVENTS,
    FILE_DELAY,
    FILE_DELAY_GUARD,
    LIFECYCLE,
    Lifecycle,
    file_delay_elapsed,
    parse_event,
    parse_status,
)


def test_table_matches_design() -> None:
    """Every row of the design's lifecycle table, with who makes it, and nothing else."""
    rows = {
        (rule.event, src.value, rule.dest.value, rule.by)
        for rule in LIFECYCLE.rules
        for src in rule.sources
    }
    assert rows == {(event, src, dest, by(event, src)) for event, src, dest in MOVES}


def test_initial_final_and_guard() -> None:
    assert LIFECYCLE.initial.value == INITIAL
    assert {status.value for status in LIFECYCLE.final} == set(FINAL)
    guards = {rule.event: rule.guard for rule in LIFECYCLE.rules if rule.guard}
    assert guards == GUARDS
    assert timedelta(days=2) == FILE_DELAY


def test_events_in_table_order_without_repeats() -> None:
    assert EVENTS == DESIGN_EVENTS


def test_every_rule_has_a_meaning() -> None:
    assert all(rule.meaning for rule in LIFECYCLE.rules)


@pytest.mark.parametrize("status", list(S))
def test_parse_status_accepts_members_and_exact_values(status: S) -> None:
    assert parse_status(status) is status
    assert parse_status(status.value) is status


@pytest.mark.parametrize(
    "bad", ["to_be_built", "TO_BE_BUILD", "", None, 3, 1.5, ["ERROR"], b"ERROR"]
)
def test_parse_status_rejects_anything_else(bad: object) -> None:
    with pytest.raises(UnknownStatus, match="unknown record status") as caught:
        parse_status(bad)
    assert caught.value.value == bad
    assert caught.value.valid == tuple(s.value for s in S)
    assert "WAITING_FOR_END, TO_BE_BUILT" in str(caught.value)


@pytest.mark.parametrize(("typo", "meant"), [("to_be_built", "TO_BE_BUILT"), ("EROR", "ERROR")])
def test_unknown_status_suggests_the_near_miss(typo: str, meant: str) -> None:
    with pytest.raises(UnknownStatus, match=f"did you mean '{meant}'"):
        parse_status(typo)


def test_unknown_status_suggests_nothing_for_a_far_miss() -> None:
    with pytest.raises(UnknownStatus) as caught:
        parse_status("banana")
    assert "did you mean" not in str(caught.value)


@pytest.mark.parametrize("event", EVENTS)
def test_parse_event_accepts_every_event(event: str) -> None:
    assert parse_event(event) == event


@pytest.mark.parametrize("bad", ["End", "finish", "", None, 0, ("end",)])
def test_parse_event_rejects_anything_else(bad: object) -> None:
    with pytest.raises(UnknownEvent, match="unknown lifecycle event") as caught:
        parse_event(bad)
    assert caught.value.value == bad
    assert caught.value.valid == EVENTS


def test_unknown_event_suggests_the_near_miss() -> None:
    with pytest.raises(UnknownEvent, match="did you mean 'retry'"):
        parse_event("retyr")


def test_the_lifecycle_answers_each_move_from_its_own_rules() -> None:
    for status in S:
        for event in EVENTS:
            rule = LIFECYCLE.rule(status, event)
            expected = EXPECTED.get((status, event))
            assert (None if rule is None else rule.dest) == expected, (status, event)
        assert LIFECYCLE.allowed(status) == tuple(e for e in EVENTS if (status, e) in EXPECTED)
        assert set(LIFECYCLE.next_statuses(status)) == {
            dest for (source, _), dest in EXPECTED.items() if source is status
        }


def test_the_event_between_two_statuses_is_the_one_that_moves_there() -> None:
    pairs = {(source, dest): event for (source, event), dest in EXPECTED.items()}
    for source in S:
        for dest in S:
            assert LIFECYCLE.event_between(source, dest) == pairs.get((source, dest))


def test_shortest_paths_walk_legal_moves_and_stop_where_asked() -> None:
    assert LIFECYCLE.shortest_path(S.ERROR, S.NO_CONSENT) == ("retry", "deny_consent")
    assert LIFECYCLE.shortest_path(S.ERROR, S.ERROR) == ()
    assert LIFECYCLE.shortest_path(S.TO_BE_BUILT, S.WAITING_FOR_END) is None


def test_the_lookup_tables_hold_exactly_the_design_table() -> None:
    assert LIFECYCLE.dest_of == EXPECTED
    assert LIFECYCLE.events_from == {
        status: tuple(e for e in DESIGN_EVENTS if (status, e) in EXPECTED) for status in S
    }
    assert LIFECYCLE.one_step == {
        (source, dest): any(s is source and d is dest for (s, _), d in EXPECTED.items())
        for source in S
        for dest in S
    }


def test_the_lookup_tables_answer_for_value_strings_too() -> None:
    assert LIFECYCLE.dest_of["TO_BE_BUILT", "fail"] is S.ERROR  # type: ignore[index]
    assert LIFECYCLE.events_from["ERROR"] == ("retry",)  # type: ignore[index]
    assert LIFECYCLE.one_step["ERROR", "TO_BE_BUILT"]  # type: ignore[index]


def test_a_lifecycle_of_its_own_answers_for_its_own_rules() -> None:
    shorter = Lifecycle(
        tuple(rule for rule in LIFECYCLE.rules if rule.event != "retry"),
        LIFECYCLE.initial,
        LIFECYCLE.final,
    )
    assert shorter.allowed(S.ERROR) == ()
    assert shorter.rule(S.ERROR, "retry") is None
    assert (S.ERROR, "retry") not in shorter.dest_of
    assert shorter.events_from[S.ERROR] == ()
    assert shorter.one_step[S.ERROR, S.TO_BE_BUILT] is False
    with pytest.raises(UnknownEvent, match="'retry'") as caught:
        parse_event("retry", lifecycle=shorter)
    assert caught.value.valid == shorter.events
    assert parse_event("retry") == "retry"
    assert LIFECYCLE.allowed(S.ERROR) == ("retry",)
    assert shorter == Lifecycle(shorter.rules, shorter.initial, shorter.final)


def test_only_find_no_files_waits_for_the_file_delay() -> None:
    assert LIFECYCLE.guarded_by(FILE_DELAY_GUARD) == {"find_no_files"}
    assert LIFECYCLE.guarded_by("no_such_guard") == frozenset()


def test_the_file_delay_has_passed_from_the_exact_instant() -> None:
    end = datetime(2026, 1, 1, tzinfo=UTC)
    assert file_delay_elapsed(end, end + FILE_DELAY, FILE_DELAY)
    assert not file_delay_elapsed(end, end + FILE_DELAY - timedelta(microseconds=1), FILE_DELAY)
