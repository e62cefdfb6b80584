"""Legality queries, compiled from the machine."""

from __future__ import annotations

import pytest

from expected_table import ALL_PAIRS, EXPECTED
from nexuslims_lifecycle import legality
from nexuslims_lifecycle.enums import RecordStatus as S
from nexuslims_lifecycle.errors import IllegalTransition, UnknownEvent, UnknownStatus
from nexuslims_lifecycle.legality import (
    allowed_events,
    can,
    check,
    is_final,
    next_status,
    next_statuses,
    replay,
    shortest_path,
)
from nexuslims_lifecycle.rules import EVENTS

BAD_STATUSES = ["to_be_built", "Completed", None, 7, ["ERROR"], ""]
BAD_EVENTS = ["End", "finish", None, 3, ["end"]]


@pytest.mark.parametrize(("status", "event"), ALL_PAIRS)
def test_next_status_follows_the_table(status: S, event: str) -> None:
    if (status, event) in EXPECTED:
        assert next_status(status, event) is EXPECTED[status, event]
        assert next_status(status.value, event) is EXPECTED[status, event]
        check(status, event)
        return
    with pytest.raises(IllegalTransition, match=f"cannot '{event}' from {status.value}"):
        next_status(status, event)
    with pytest.raises(IllegalTransition) as caught:
        check(status.value, event)
    assert caught.value.status == status.value
    assert caught.value.allowed == allowed_events(status)


@pytest.mark.parametrize("source", list(S))
@pytest.mark.parametrize("dest", list(S))
def test_can_is_true_exactly_for_one_step_moves(source: S, dest: S) -> None:
    expected = any(s is source and d is dest for (s, _), d in EXPECTED.items())
    assert can(source, dest) is expected
    assert can(source.value, dest.value) is expected


@pytest.mark.parametrize("status", list(S))
def test_allowed_events_and_next_statuses(status: S) -> None:
    events = tuple(e for (s, e) in EXPECTED if s is status)
    assert allowed_events(status) == events
    assert allowed_events(status.value) == events
    assert next_statuses(status) == tuple(dict.fromkeys(EXPECTED[status, e] for e in events))


def test_next_statuses_from_to_be_built_in_table_order() -> None:
    assert next_statuses("TO_BE_BUILT") == (
        S.COMPLETED,
        S.BUILT_NOT_EXPORTED,
        S.ERROR,
        S.NO_FILES_FOUND,
        S.NO_CONSENT,
        S.NO_RESERVATION,
    )


@pytest.mark.parametrize("status", list(S))
def test_is_final_exactly_for_completed_and_no_consent(status: S) -> None:
    assert is_final(status) is (status in {S.COMPLETED, S.NO_CONSENT})
    assert is_final(status.value) is (status in {S.COMPLETED, S.NO_CONSENT})


@pytest.mark.parametrize("status", [S.COMPLETED, S.NO_CONSENT])
def test_only_reprocess_leaves_a_final_status(status: S) -> None:
    assert allowed_events(status) == ("reprocess",)
    assert next_statuses(status) == (S.TO_BE_BUILT,)


@pytest.mark.parametrize(
    ("source", "dest", "path"),
    [
        ("WAITING_FOR_END", "WAITING_FOR_END", []),
        ("WAITING_FOR_END", "COMPLETED", ["end", "complete"]),
        ("WAITING_FOR_END", "BUILT_NOT_EXPORTED", ["end", "fail_export"]),
        ("ERROR", "NO_CONSENT", ["retry", "deny_consent"]),
        ("NO_FILES_FOUND", "ERROR", ["retry", "fail"]),
        ("BUILT_NOT_EXPORTED", "COMPLETED", ["complete"]),
        ("COMPLETED", "TO_BE_BUILT", ["reprocess"]),
        ("NO_CONSENT", "COMPLETED", ["reprocess", "complete"]),
        ("COMPLETED", "WAITING_FOR_END", None),
        ("TO_BE_BUILT", "WAITING_FOR_END", None),
    ],
)
def test_shortest_path(source: str, dest: str, path: list[str] | None) -> None:
    assert shortest_path(source, dest) == path


@pytest.mark.parametrize("source", list(S))
@pytest.mark.parametrize("dest", list(S))
def test_shortest_path_replays_to_its_destination(source: S, dest: S) -> None:
    path = shortest_path(source, dest)
    if path is not None:
        assert replay(path, start=source) is dest


def test_replay_reaches_the_final_status() -> None:
    assert replay([]) is S.WAITING_FOR_END
    assert replay(["end", "fail", "retry", "fail_export", "complete"]) is S.COMPLETED
    assert replay(("retry", "complete"), start="NO_RESERVATION") is S.COMPLETED
    assert replay(iter(["complete"]), start=S.BUILT_NOT_EXPORTED) is S.COMPLETED
    assert replay(["reprocess", "deny_consent"], start=S.COMPLETED) is S.NO_CONSENT


def test_replay_names_the_first_illegal_step() -> None:
    with pytest.raises(
        IllegalTransition,
        match=r"^step 2: cannot 'retry' from COMPLETED: legal from there: "
        r"reprocess$",
    ) as caught:
        replay(["end", "complete", "retry", "end"])
    assert caught.value.index == 2
    assert (caught.value.status, caught.value.event) == ("COMPLETED", "retry")


def test_replay_rejects_unknown_event_and_start() -> None:
    with pytest.raises(UnknownEvent, match="'finish'"):
        replay(["end", "finish"])
    with pytest.raises(UnknownStatus, match="'waiting'"):
        replay(["end"], start="waiting")


@pytest.mark.parametrize("bad", BAD_STATUSES)
def test_every_query_rejects_unknown_statuses(bad: object) -> None:
    queries = [
        lambda: next_status(bad, "end"),  # type: ignore[arg-type]
        lambda: check(bad, "end"),  # type: ignore[arg-type]
        lambda: can(bad, "ERROR"),  # type: ignore[arg-type]
        lambda: can("ERROR", bad),  # type: ignore[arg-type]
        lambda: allowed_events(bad),  # type: ignore[arg-type]
        lambda: next_statuses(bad),  # type: ignore[arg-type]
        lambda: is_final(bad),  # type: ignore[arg-type]
        lambda: shortest_path(bad, "ERROR"),  # type: ignore[arg-type]
        lambda: shortest_path("ERROR", bad),  # type: ignore[arg-type]
    ]
    for query in queries:
        with pytest.raises(UnknownStatus, match="unknown record status"):
            query()


@pytest.mark.parametrize("bad", BAD_EVENTS)
def test_next_status_rejects_unknown_events(bad: object) -> None:
    with pytest.raises(UnknownEvent, match="unknown lifecycle event"):
        next_status("TO_BE_BUILT", bad)  # type: ignore[arg-type]


def test_tables_are_read_from_the_machine() -> None:
    """The compiled table equals what the transitions machine holds."""
    assert legality._compile() == EXPECTED
    assert set(EVENTS) == {event for (_, event) in legality._NEXT}
