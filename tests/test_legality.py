"""Legality queries: answered from a Lifecycle's own tables, the default one or any other."""

from __future__ import annotations

import pytest

from design_table import MOVES, as_lifecycle
from expected_table import ALL_PAIRS, EXPECTED
from nexuslims_lifecycle import legality
from nexuslims_lifecycle.enums import RecordStatus as S
from nexuslims_lifecycle.errors import IllegalTransition, UnknownEvent, UnknownStatus
from nexuslims_lifecycle.legality import (
    allowed_events,
    can,
    is_final,
    next_status,
    next_statuses,
    replay,
    shortest_path,
)
from nexuslims_lifecycle.rules import Lifecycle

BAD_STATUSES = ["to_be_built", "Completed", None, 7, ["ERROR"], ""]
BAD_EVENTS = ["End", "finish", None, 3, ["end"]]


@pytest.mark.parametrize(("status", "event"), ALL_PAIRS)
def test_next_status_follows_the_table(status: S, event: str) -> None:
    if (status, event) in EXPECTED:
        assert next_status(status, event) is EXPECTED[status, event]
        assert next_status(status.value, event) is EXPECTED[status, event]
        return
    with pytest.raises(IllegalTransition, match=f"cannot '{event}' from {status.value}"):
        next_status(status, event)
    with pytest.raises(IllegalTransition) as caught:
        next_status(status.value, event)
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


def test_check_is_gone_next_status_is_the_one_check_of_a_move() -> None:
    assert not hasattr(legality, "check")
    assert "check" not in legality.__all__


# --- a lifecycle of its own ---------------------------------------------------------------

# The design table without retry from ERROR, with an exporter's complete out of ERROR,
# and starting at TO_BE_BUILT: every answer below differs from the default lifecycle's.
OWN = Lifecycle(
    (
        *as_lifecycle(tuple(m for m in MOVES if m[:2] != ("retry", "ERROR"))).rules,
        *as_lifecycle((("complete", "ERROR", "COMPLETED"),)).rules,
    ),
    S.TO_BE_BUILT,
    frozenset({S.COMPLETED}),
)


def test_every_query_answers_for_the_lifecycle_it_is_given() -> None:
    assert next_status("ERROR", "complete", lifecycle=OWN) is S.COMPLETED
    assert can("ERROR", "COMPLETED", lifecycle=OWN)
    assert not can("ERROR", "COMPLETED")
    assert not can("ERROR", "TO_BE_BUILT", lifecycle=OWN)
    assert allowed_events("ERROR", lifecycle=OWN) == ("complete",)
    assert next_statuses(S.ERROR, lifecycle=OWN) == (S.COMPLETED,)
    assert is_final("COMPLETED", lifecycle=OWN)
    assert not is_final("NO_CONSENT", lifecycle=OWN)
    assert shortest_path("TO_BE_BUILT", "COMPLETED", lifecycle=OWN) == ["complete"]
    assert shortest_path("ERROR", "NO_CONSENT", lifecycle=OWN) == [
        "complete",
        "reprocess",
        "deny_consent",
    ]
    assert shortest_path("ERROR", "NO_CONSENT") == ["retry", "deny_consent"]
    assert shortest_path("TO_BE_BUILT", "WAITING_FOR_END", lifecycle=OWN) is None
    assert replay(["fail", "complete"], lifecycle=OWN) is S.COMPLETED  # starts at its initial
    assert replay([], start=None, lifecycle=OWN) is S.TO_BE_BUILT
    assert replay([], start=None) is S.WAITING_FOR_END


def test_a_lifecycle_of_its_own_refuses_by_its_own_rules() -> None:
    with pytest.raises(
        IllegalTransition, match=r"cannot 'retry' from ERROR: legal from there: complete$"
    ):
        next_status("ERROR", "retry", lifecycle=OWN)
    with pytest.raises(IllegalTransition) as caught:
        replay(["fail", "retry"], lifecycle=OWN)
    assert (caught.value.index, caught.value.allowed) == (1, ("complete",))


def test_an_event_the_lifecycle_lacks_is_unknown_to_it() -> None:
    lacking = Lifecycle(
        tuple(rule for rule in OWN.rules if rule.event != "reprocess"), OWN.initial, OWN.final
    )
    with pytest.raises(UnknownEvent, match="'reprocess'") as caught:
        next_status("COMPLETED", "reprocess", lifecycle=lacking)
    assert "reprocess" not in caught.value.valid
    with pytest.raises(UnknownEvent):
        replay(["complete", "reprocess"], lifecycle=lacking)


@pytest.mark.parametrize("bad", BAD_STATUSES)
def test_a_lifecycle_of_its_own_rejects_unknown_statuses(bad: object) -> None:
    queries = [
        lambda: next_status(bad, "end", lifecycle=OWN),  # type: ignore[arg-type]
        lambda: can(bad, "ERROR", lifecycle=OWN),  # type: ignore[arg-type]
        lambda: allowed_events(bad, lifecycle=OWN),  # type: ignore[arg-type]
        lambda: next_statuses(bad, lifecycle=OWN),  # type: ignore[arg-type]
        lambda: is_final(bad, lifecycle=OWN),  # type: ignore[arg-type]
        lambda: shortest_path("ERROR", bad, lifecycle=OWN),  # type: ignore[arg-type]
    ]
    if bad is not None:  # start=None means the lifecycle's initial status
        queries.append(lambda: replay([], start=bad, lifecycle=OWN))  # type: ignore[arg-type]
    for query in queries:
        with pytest.raises(UnknownStatus, match="unknown record status"):
            query()


@pytest.mark.parametrize("bad", BAD_EVENTS)
def test_a_lifecycle_of_its_own_rejects_unknown_events(bad: object) -> None:
    with pytest.raises(UnknownEvent, match="unknown lifecycle event"):
        next_status("TO_BE_BUILT", bad, lifecycle=OWN)  # type: ignore[arg-type]
    with pytest.raises(UnknownEvent, match="unknown lifecycle event"):
        replay([bad], lifecycle=OWN)  # type: ignore[list-item]
