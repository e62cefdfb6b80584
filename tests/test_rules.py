"""The lifecycle table as data, and the parsing of statuses and events."""

from __future__ import annotations

from datetime import timedelta

import pytest

from design_table import MOVES, by
from nexuslims_lifecycle.enums import RecordStatus as S
from nexuslims_lifecycle.errors import UnknownEvent, UnknownStatus
from nexuslims_lifecycle.rules import EVENTS, FILE_DELAY, LIFECYCLE, parse_event, parse_status


def test_table_matches_design() -> None:
    """Every row of DESIGN.md's lifecycle table, with who makes it, and nothing else."""
    rows = {
        (rule.event, src.value, rule.dest.value, rule.by)
        for rule in LIFECYCLE.rules
        for src in rule.sources
    }
    assert rows == {(event, src, dest, by(event, src)) for event, src, dest in MOVES}


def test_who_moves() -> None:
    """The harvester ends, the exporter completes a built record, operators requeue."""
    who = {(rule.event, rule.by) for rule in LIFECYCLE.rules}
    assert who == {
        ("end", "harvester"),
        ("complete", "builder"),
        ("complete", "exporter"),
        ("fail_export", "builder"),
        ("fail", "builder"),
        ("find_no_files", "builder"),
        ("deny_consent", "builder"),
        ("find_no_reservation", "builder"),
        ("retry", "operator"),
        ("reprocess", "operator"),
    }


def test_initial_final_and_guard() -> None:
    assert LIFECYCLE.initial is S.WAITING_FOR_END
    assert LIFECYCLE.final == {S.COMPLETED, S.NO_CONSENT}
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
        "reprocess",
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
