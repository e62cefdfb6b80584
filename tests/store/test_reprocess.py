"""Operator reprocessing: whole sessions, chosen by START time in their own offset.

The databases are written with plain sqlite3 in the shapes NexusLIMS 2.8 writes
(see ``_nexuslims_rows``), sessions being built and rows that disagree included.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from _nexuslims_rows import being_built, built, create, harvested, rows, split, started
from _snapshot import dump

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import (
    EmptySelection,
    InvalidArgument,
    StoreError,
    UnknownSession,
    UnknownStatus,
)
from nexuslims_lifecycle.store import (
    REPROCESS_SKIP_REASONS,
    ReprocessMove,
    ReprocessReport,
    ReprocessSkip,
    SessionLogStore,
    reprocess,
)

MDT = timezone(timedelta(hours=-7))
CET = timezone(timedelta(hours=1))
S = RecordStatus


# Five finished sessions around January 2024, each near a day boundary in its own offset.
A = datetime(2023, 12, 31, 23, 30, tzinfo=MDT)  # 2024-01-01T06:30Z: December, locally
B = datetime(2024, 1, 1, 0, 30, tzinfo=CET)  # 2023-12-31T23:30Z: January 1st, locally
C = datetime(2024, 1, 15, 10, 0, tzinfo=MDT)
D = datetime(2024, 1, 31, 22, 30, tzinfo=MDT)  # 2024-02-01T05:30Z: January 31st, locally
E = datetime(2024, 2, 1, 0, 30, tzinfo=CET)  # 2024-01-31T23:30Z: February 1st, locally
JANUARY = {"a": A, "b": B, "c": C, "d": D, "e": E}


@pytest.fixture
def january(tmp_path: Path) -> str:
    """A NexusLIMS file with sessions a..e, all COMPLETED."""
    return create(
        tmp_path / "nexuslims.db", *(built(s, t, "COMPLETED") for s, t in JANUARY.items())
    )


@pytest.fixture
def store(january: str) -> Iterator[SessionLogStore]:
    with SessionLogStore(january) as opened:
        yield opened


def moved_ids(report: ReprocessReport) -> list[str]:
    return [item.session_identifier for item in report.moved]


def skips(report: ReprocessReport) -> list[tuple[str, str]]:
    return [(item.session_identifier, item.reason) for item in report.skipped]


# -- selection by START time ---------------------------------------------------------


def test_dates_compare_with_the_start_wall_clock_date_in_its_own_offset(store):
    """b starts January 1st in +01:00 (still 2023 in UTC); d and e straddle midnight."""
    report = store.reprocess(started_from="2024-01-01", started_to="2024-01-31")
    assert moved_ids(report) == ["b", "c", "d"]
    assert report.skipped == ()
    assert {sid: store.status(sid) for sid in JANUARY} == {
        "a": S.COMPLETED,
        "b": S.TO_BE_BUILT,
        "c": S.TO_BE_BUILT,
        "d": S.TO_BE_BUILT,
        "e": S.COMPLETED,
    }


def test_a_to_date_takes_in_that_whole_day(store):
    """d starts at 22:30 on January 31st: text comparison with '2024-01-31' drops it."""
    assert moved_ids(store.reprocess(started_to="2024-01-31", dry_run=True)) == ["a", "b", "c", "d"]
    assert moved_ids(store.reprocess(started_to=date(2024, 1, 30), dry_run=True)) == ["a", "b", "c"]


def test_one_day_is_a_range_of_its_own(store):
    assert moved_ids(store.reprocess(started_from="2024-01-31", started_to="2024-01-31")) == ["d"]


def test_bounds_with_an_offset_compare_as_instants(store):
    """In UTC, a and e are in January and b and d are not."""
    report = store.reprocess(
        started_from="2024-01-01T00:00:00+00:00",
        started_to=datetime(2024, 1, 31, 23, 59, 59, tzinfo=UTC),
        dry_run=True,
    )
    assert moved_ids(report) == ["a", "c", "e"]


def test_an_instant_bound_is_inclusive_and_any_offset_names_the_same_instant(store):
    same_as_d = "2024-02-01T06:30:00+01:00"  # D, written in another offset
    assert moved_ids(store.reprocess(started_from=same_as_d, dry_run=True)) == ["d"]
    assert moved_ids(store.reprocess(started_to=same_as_d, dry_run=True)) == list(JANUARY)
    just_before_d = "2024-02-01T05:29:59.999999+00:00"
    assert moved_ids(store.reprocess(started_to=just_before_d, dry_run=True)) == [
        "a",
        "b",
        "c",
        "e",
    ]


def test_a_local_date_and_time_compares_with_the_start_wall_clock_both_ends_included(store):
    report = store.reprocess(
        started_from="2024-01-15T10:00", started_to=D.replace(tzinfo=None), dry_run=True
    )
    assert moved_ids(report) == ["c", "d"]


def test_no_criteria_select_every_session(store):
    assert moved_ids(store.reprocess(dry_run=True)) == list(JANUARY)


def test_the_widest_dates_take_in_everything(store):
    widest = store.reprocess(started_from=date.min, started_to=date.max, dry_run=True)
    assert moved_ids(widest) == list(JANUARY)


# -- the move each status allows -------------------------------------------------------

OPERATOR_MOVES = [
    ("ERROR", "retry"),
    ("NO_FILES_FOUND", "retry"),
    ("NO_RESERVATION", "retry"),
    ("BUILT_NOT_EXPORTED", "retry"),
    ("COMPLETED", "reprocess"),
    ("NO_CONSENT", "reprocess"),
]


@pytest.mark.parametrize(("status", "event"), OPERATOR_MOVES)
def test_each_status_moves_by_its_operator_move_and_every_row_follows(tmp_path, status, event):
    path = create(tmp_path / "n.db", built("s", C, status, attempts=2))
    with SessionLogStore(path) as store:
        report = store.reprocess(sessions=["s"], actor="maintainer")
        assert report.moved == (ReprocessMove("s", C, S(status), event, S.TO_BE_BUILT),)
        assert rows(path, "s") == [
            ("START", "TO_BE_BUILT"),
            ("END", "TO_BE_BUILT"),
            ("RECORD_GENERATION", "TO_BE_BUILT"),
            ("RECORD_GENERATION", "TO_BE_BUILT"),
        ]
        (entry,) = store.history("s")
        assert (entry.from_status, entry.to_status, entry.event, entry.actor) == (
            S(status),
            S.TO_BE_BUILT,
            event,
            "maintainer",
        )


def test_the_actor_is_operator_unless_named(store):
    store.reprocess(sessions=["c"])
    assert [entry.actor for entry in store.history("c")] == ["operator"]


def test_statuses_filter_by_current_status_and_combine_with_the_range(tmp_path):
    path = create(
        tmp_path / "n.db",
        built("err-jan", C, "ERROR"),
        built("err-feb", E, "ERROR"),
        built("done-jan", C + timedelta(days=1), "COMPLETED"),
        built("nf-jan", C + timedelta(days=2), "NO_FILES_FOUND"),
    )
    with SessionLogStore(path) as store:
        report = store.reprocess(
            started_to="2024-01-31", statuses=["ERROR", S.NO_FILES_FOUND], dry_run=True
        )
        assert moved_ids(report) == ["err-jan", "nf-jan"]
        assert moved_ids(store.reprocess(statuses="ERROR", dry_run=True)) == ["err-jan", "err-feb"]


def test_named_sessions_combine_with_the_other_criteria(store):
    report = store.reprocess(sessions=["a", "c", "e", "c"], started_from="2024-01-01", dry_run=True)
    assert moved_ids(report) == ["c", "e"]
    assert moved_ids(store.reprocess(sessions="a", dry_run=True)) == ["a"]


def test_the_function_and_the_method_are_one(january):
    with SessionLogStore(january) as store:
        assert reprocess(store, started_to="2024-01-01", dry_run=True) == store.reprocess(
            started_to="2024-01-01", dry_run=True
        )


# -- whole sessions, where NexusLIMS's documented recipe splits them --------------------

RECIPE = (
    "UPDATE session_log SET record_status = 'TO_BE_BUILT' "
    "WHERE timestamp >= '2024-01-01' AND timestamp <= '2024-01-31'"
)


def late_builds(tmp_path: Path, name: str, *, init: bool = True) -> str:
    """x was built days after it ran (its build row lies in February); y ran on the 31st."""
    x = datetime(2024, 1, 30, 10, 0, tzinfo=MDT)
    y = datetime(2024, 1, 31, 9, 0, tzinfo=MDT)
    return create(
        tmp_path / name,
        [
            *harvested("x", x, "COMPLETED"),
            ("x", "2024-02-03T08:00:00-07:00", "RECORD_GENERATION", "COMPLETED", "nexuslims"),
        ],
        built("y", y, "ERROR"),
        init=init,
    )


def test_the_documented_recipe_splits_a_session_and_drops_the_last_day(tmp_path):
    """The facts reprocess is built against: text comparison on ISO timestamps."""
    path = late_builds(tmp_path, "recipe.db", init=False)  # NexusLIMS's file, unguarded
    with sqlite3.connect(path) as conn:
        conn.execute(RECIPE)
    conn.close()
    assert rows(path, "x") == [
        ("START", "TO_BE_BUILT"),
        ("END", "TO_BE_BUILT"),
        ("RECORD_GENERATION", "COMPLETED"),
    ]
    assert {status for _, status in rows(path, "y")} == {"ERROR"}


def test_under_the_guard_the_recipe_moves_whole_sessions_but_still_drops_the_last_day(tmp_path):
    """The guard applies a row's move to its session; the text comparison stays the recipe's."""
    path = late_builds(tmp_path, "guarded.db")
    with sqlite3.connect(path) as conn:
        conn.execute(RECIPE)
    conn.close()
    assert {status for _, status in rows(path, "x")} == {"TO_BE_BUILT"}
    assert {status for _, status in rows(path, "y")} == {"ERROR"}
    with SessionLogStore(path) as store:
        assert [(e.event, e.actor) for e in store.history("x")] == [("reprocess", None)]


def test_reprocess_moves_whole_sessions_over_the_same_range(tmp_path):
    path = late_builds(tmp_path, "ours.db")
    with SessionLogStore(path) as store:
        report = store.reprocess(started_from="2024-01-01", started_to="2024-01-31")
    assert [(m.session_identifier, m.event) for m in report.moved] == [
        ("x", "reprocess"),
        ("y", "retry"),
    ]
    for sid in ("x", "y"):
        assert {status for _, status in rows(path, sid)} == {"TO_BE_BUILT"}


# -- what is skipped, and why ----------------------------------------------------------


def test_a_session_not_ended_is_skipped(tmp_path):
    path = create(tmp_path / "n.db", started("open", C), built("done", C, "COMPLETED"))
    with SessionLogStore(path) as store:
        before = dump(path)
        report = store.reprocess(sessions=["open"])
    assert report.moved == ()
    assert report.skipped == (
        ReprocessSkip(
            "open",
            C,
            S.WAITING_FOR_END,
            "not-ended",
            REPROCESS_SKIP_REASONS["not-ended"],
        ),
    )
    assert report.skipped[0].message.startswith("not ended yet")
    assert dump(path) == before


def test_a_queued_session_is_skipped_as_already_queued(tmp_path):
    path = create(tmp_path / "n.db", harvested("queued", C), built("done", C, "ERROR"))
    with SessionLogStore(path) as store:
        report = store.reprocess(started_from="2024-01-01")
        again = store.reprocess(started_from="2024-01-01")
    assert moved_ids(report) == ["done"]
    assert skips(report) == [("queued", "already-queued")]
    assert report.skipped[0].status is S.TO_BE_BUILT
    assert report.skipped[0].message.startswith("already queued")
    assert again.moved == ()
    assert skips(again) == [("queued", "already-queued"), ("done", "already-queued")]


def test_a_session_being_built_is_skipped_and_left_untouched(tmp_path):
    """NexusLIMS's build row in progress (or a crashed build's) holds WAITING_FOR_END."""
    path = create(tmp_path / "n.db", being_built("busy", C), built("done", C, "COMPLETED"))
    with SessionLogStore(path) as store:
        report = store.reprocess(started_to="2024-01-31")
    assert moved_ids(report) == ["done"]
    assert skips(report) == [("busy", "being-built")]
    assert report.skipped[0].status is S.TO_BE_BUILT
    assert report.skipped[0].message.startswith(
        "being built: NexusLIMS is building it now, or a build crashed; wait for the run to finish"
    )
    assert rows(path, "busy") == [
        ("START", "TO_BE_BUILT"),
        ("END", "TO_BE_BUILT"),
        ("RECORD_GENERATION", "WAITING_FOR_END"),
    ]


def test_a_session_whose_rows_disagree_is_skipped_and_left_untouched(tmp_path):
    path = create(tmp_path / "n.db", split("torn", C), built("done", C, "COMPLETED"))
    with SessionLogStore(path) as store:
        before = rows(path, "torn")
        report = store.reprocess(started_to="2024-01-31")
    assert moved_ids(report) == ["done"]
    assert skips(report) == [("torn", "rows-disagree")]
    assert report.skipped[0].status is None
    assert rows(path, "torn") == before


def test_a_status_filter_does_not_choose_a_session_whose_rows_disagree(tmp_path):
    path = create(tmp_path / "n.db", split("torn", C), built("done", C, "COMPLETED"))
    with SessionLogStore(path) as store:
        assert moved_ids(store.reprocess(statuses=["COMPLETED"])) == ["done"]


@pytest.mark.usefixtures("denver_local_time")
def test_a_start_without_offset_is_local_time_and_an_unreadable_one_is_skipped(tmp_path):
    """A legacy START (no offset) is Denver wall-clock time; a garbled one is never guessed."""
    legacy = [
        ("naive", "2024-01-15T10:00:00", "START", "ERROR", "ada"),  # 17:00 UTC
        ("naive", "2024-01-15T11:00:00", "END", "ERROR", "ada"),
    ]
    garbled = [("garbled", "15/01/2024 10:00", "START", "ERROR", "ada")]
    path = create(tmp_path / "n.db", legacy, garbled, built("c", C, "ERROR"))
    with SessionLogStore(path) as store:
        by_instant = store.reprocess(started_from="2024-01-15T17:00+00:00", dry_run=True)
        assert moved_ids(by_instant) == ["naive", "c"]  # c: 10:00-07:00, the same instant
        assert by_instant.moved[0].started_at == datetime(2024, 1, 15, 17, tzinfo=UTC)
        assert skips(by_instant) == [("garbled", "start-time-unknown")]
        later = store.reprocess(started_from="2024-01-15T17:01+00:00", dry_run=True)
        assert moved_ids(later) == []
        by_date = store.reprocess(started_from="2024-01-15", dry_run=True)
        assert moved_ids(by_date) == ["naive", "c"]
        assert skips(by_date) == [("garbled", "start-time-unknown")]
        assert by_date.skipped[0].started_at is None
        assert moved_ids(store.reprocess(sessions=["garbled"], dry_run=True)) == ["garbled"]


def test_a_session_another_writer_moved_first_is_a_conflict_skip(january):
    """An operator retries c with raw SQL while reprocess is deciding."""

    class Racing(SessionLogStore):
        def sessions(self, status=None):
            yield from super().sessions(status)
            with sqlite3.connect(january) as conn:  # the listing is read: now a writer moves c
                conn.execute(
                    "UPDATE session_log SET record_status = 'TO_BE_BUILT' "
                    "WHERE session_identifier = 'c'"
                )
            conn.close()

    with Racing(january) as store:
        report = store.reprocess(started_to="2024-01-15")
    assert moved_ids(report) == ["a", "b"]
    ((sid, status, reason, message),) = [
        (s.session_identifier, s.status, s.reason, s.message) for s in report.skipped
    ]
    assert (sid, status, reason) == ("c", S.TO_BE_BUILT, "conflict")
    assert "expected COMPLETED, but another writer moved it to TO_BE_BUILT" in message
    with SessionLogStore(january) as store:  # the guard recorded the raw write, once
        assert [(e.event, e.actor) for e in store.history("c")] == [("reprocess", None)]


# -- dry runs and bad input write nothing ---------------------------------------------


def test_a_dry_run_reports_the_moves_and_writes_nothing(store, january):
    before = dump(january)
    report = store.reprocess(started_from="2024-01-01", started_to="2024-01-31", dry_run=True)
    assert report.dry_run is True
    assert report.moved == tuple(
        ReprocessMove(sid, JANUARY[sid], S.COMPLETED, "reprocess", S.TO_BE_BUILT)
        for sid in ("b", "c", "d")
    )
    assert dump(january) == before


@pytest.mark.parametrize(
    ("criteria", "error", "match"),
    [
        (
            {"started_from": "2025-01-01"},
            EmptySelection,
            r"no session matches the selection \(started from 2025-01-01\): nothing was moved",
        ),
        (
            {"started_to": "2024-01-31", "statuses": ["ERROR"]},
            EmptySelection,
            r"\(started up to 2024-01-31, status ERROR\)",
        ),
        (
            {"sessions": ["a"], "statuses": ["ERROR"]},
            EmptySelection,
            r"\(status ERROR, session a\)",
        ),
        ({"statuses": ["DONE"]}, UnknownStatus, r"unknown record status 'DONE'"),
        ({"statuses": ["completed"]}, UnknownStatus, r"did you mean 'COMPLETED'\?"),
        ({"sessions": ["c", "zz"]}, UnknownSession, r"unknown session 'zz'"),
        (
            {"started_from": "31/01/2024"},
            InvalidArgument,
            r"invalid started_from '31/01/2024': expected an ISO 8601 date",
        ),
        ({"started_to": "2024-02-30"}, InvalidArgument, r"invalid started_to '2024-02-30'"),
        ({"started_to": 20240131}, InvalidArgument, r"invalid started_to 20240131"),
        (
            {"started_from": "2024-02-01", "started_to": "2024-01-31"},
            InvalidArgument,
            r"invalid started_to '2024-01-31': expected a time not before the range's start "
            r"'2024-02-01'",
        ),
        (
            {"started_from": "2024-01-31T12:00+00:00", "started_to": "2024-01-31T11:00+00:00"},
            InvalidArgument,
            r"not before the range's start '2024-01-31T12:00:00\+00:00'",
        ),
        ({"actor": " "}, InvalidArgument, r"invalid actor ' '"),
        ({"sessions": [""]}, InvalidArgument, r"invalid session_identifier ''"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(store, january, criteria, error, match):
    before = dump(january)
    with pytest.raises(error, match=match):
        store.reprocess(**criteria)
    assert dump(january) == before


def test_one_day_from_and_to_the_same_date_is_not_an_empty_range(store):
    """Only a start after the end is refused; the same local time at both ends is fine."""
    assert moved_ids(
        store.reprocess(
            started_from=C.replace(tzinfo=None), started_to=C.replace(tzinfo=None), dry_run=True
        )
    ) == ["c"]


def test_a_file_without_our_tables_is_refused_before_any_row_changes(tmp_path):
    """A NexusLIMS file that `init` never saw: the first move fails, nothing is half-done."""
    path = create(tmp_path / "n.db", built("c", C, "ERROR"), built("d", D, "ERROR"), init=False)
    before = rows(path, "c") + rows(path, "d")
    with SessionLogStore(path) as store, pytest.raises(StoreError, match=r"run `init` on it first"):
        store.reprocess(statuses=["ERROR"])
    assert rows(path, "c") + rows(path, "d") == before


def test_the_report_as_json_has_the_documented_shape(tmp_path):
    path = create(tmp_path / "n.db", built("c", C, "ERROR"), started("open", D))
    with SessionLogStore(path) as store:
        report = store.reprocess(dry_run=True)
    assert report.as_json() == {
        "dry_run": True,
        "moved": [
            {
                "session_identifier": "c",
                "started_at": "2024-01-15T10:00:00-07:00",
                "from": "ERROR",
                "event": "retry",
                "to": "TO_BE_BUILT",
            }
        ],
        "skipped": [
            {
                "session_identifier": "open",
                "started_at": "2024-01-31T22:30:00-07:00",
                "status": "WAITING_FOR_END",
                "reason": "not-ended",
                "message": REPROCESS_SKIP_REASONS["not-ended"],
            }
        ],
    }


def test_reprocess_works_the_same_on_postgresql(postgres_url):
    """The store is the only writer here: start, end and fail, then retry by date."""
    with SessionLogStore(postgres_url) as store:
        store.init()
        for sid, moment in JANUARY.items():
            store.start(sid, instrument="FEI-Titan-TEM-635816", user="ada", at=moment)
            store.advance(sid, "end", at=moment + timedelta(hours=1))
            store.advance(sid, "fail", at=moment + timedelta(hours=2))
        report = store.reprocess(started_from="2024-01-01", started_to="2024-01-31")
        assert [(m.session_identifier, m.event) for m in report.moved] == [
            ("b", "retry"),
            ("c", "retry"),
            ("d", "retry"),
        ]
        assert [store.status(sid) for sid in JANUARY] == [
            S.ERROR,
            S.TO_BE_BUILT,
            S.TO_BE_BUILT,
            S.TO_BE_BUILT,
            S.ERROR,
        ]
