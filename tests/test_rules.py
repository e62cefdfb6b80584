"""The lifecycle table as data, and the parsing of statuses and events."""

from __future__ import annotations

from datetime import timedelta

import pytest

from nexuslims_lifecycle.enums import RecordStatus as S
from nexuslims_lifecycle.errors import UnknownEvent, UnknownStatus
from nexuslims_lifecycle.rules import EVENTS, FILE_DELAY, LIFECYCLE, parse_event, parse_status


def test_table_matches_design() -> None:
    """Every row of DESIGN.md's lifecycle table, and nothing else."""
    rows = {(rule.event, src, rule.dest) for rule in LIFECYCLE.rules for src in rule.sources}
    assert rows == {
        ("end", S.WAITING_FOR_END, S.TO_BE_BUILT),
        ("complete", S.TO_BE_BUILT, S.COMPLETED),
        ("complete", S.BUILT_NOT_EXPORTED, S.COMPLETED),
        ("fail_export", S.TO_BE_BUILT, S.BUILT_NOT_EXPORTED),
        ("fail", S.TO_BE_BUILT, S.ERROR),
        ("find_no_files", S.TO_BE_BUILT, S.NO_FILES_FOUND),
        ("deny_consent", S.TO_BE_BUILT, S.NO_CONSENT),
        ("find_no_reservation", S.TO_BE_BUILT, S.NO_RESERVATION),
        ("retry", S.ERROR, S.TO_BE_BUILT),
        ("retry", S.NO_FILES_FOUND, S.TO_BE_BUILT),
        ("retry", S.NO_RESERVATION, S.TO_BE_BUILT),
        ("retry", S.BUILT_NOT_EXPORTED, S.TO_BE_BUILT),
    }


def test_initial_terminal_and_guard() -> None:
    assert LIFECYCLE.initial is S.WAITING_FOR_END
    assert LIFECYCLE.terminal == {S.COMPLETED, S.NO_CONSENT}
    guards = {rule.event: rule.guard for rule in LIFECYCLE.rules if rule.guard}
    assert guards == {"find_no_files": "file_delay_elapsed"}
    assert timedelta(days=2) == FILE_DELAY


def test_events_in_table_order_without_repeats() -> None:
    assert EVENTS == (
        "end",
        "complete",
        "fail_export",
        "fail",
        "find_no_files",
        "deny_consent",
        "find_no_reservation",
        "retry",
    )


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
