"""The audit: each finding code planted and found, clean data clean, bad databases refused."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nexuslims_lifecycle import _audit_checks as checks
from nexuslims_lifecycle import _audit_history as own_tables
from nexuslims_lifecycle.audit import CODES, AuditReport, audit, count_rows
from nexuslims_lifecycle.enums import EventType, RecordStatus
from nexuslims_lifecycle.errors import UnusableDatabase
from nexuslims_lifecycle.fixtures import DEFECTS, LEGACY_ONLY, build_database
from nexuslims_lifecycle.rules import FILE_DELAY

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LIMITS = checks.Limits(NOW, timedelta(days=7), timedelta(days=1), FILE_DELAY)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_code_can_be_planted() -> None:
    assert set(DEFECTS) == set(CODES)


@pytest.mark.parametrize("code", sorted(DEFECTS))
def test_a_planted_defect_is_found_exactly(code: str, tmp_path: Path) -> None:
    """Plant two sessions with the defect among clean ones: exactly those two are reported."""
    schema = "legacy" if code in LEGACY_ONLY else "current"
    path = tmp_path / "planted.db"
    info = build_database(path, sessions=60, schema=schema, defects={code: 2}, seed=11, now=NOW)
    report = audit(path, now=NOW)
    assert report.counts == {code: 2}
    assert sorted(f.session_identifier for f in report.findings) == sorted(info.sessions[code])
    assert {f.severity for f in report.findings} == {CODES[code].severity}
    assert all(f.message for f in report.findings)
    assert (report.rows, report.sessions) == (info.total_rows, info.total_sessions)


def test_several_defects_at_once(tmp_path: Path) -> None:
    defects = {
        "duplicate-end": 3,
        "stuck-waiting": 1,
        "history-gap": 2,
        "stalled-build": 1,
        "early-no-files": 2,
        "stale-claim": 1,
        "build-before-end": 1,
    }
    path = tmp_path / "many.db"
    build_database(path, sessions=100, defects=defects, seed=5, now=NOW)
    assert audit(path, now=NOW).counts == defects


def test_a_large_clean_database_has_no_findings(tmp_path: Path) -> None:
    """100k generated sessions, every one a legal history: nothing to report."""
    path = tmp_path / "clean.db"
    info = build_database(path, sessions=100_000, seed=2026, now=NOW)
    report = audit(path, now=NOW)
    assert report.clean
    assert report.findings == ()
    assert report.sessions == 100_000
    assert report.rows == info.total_rows
    assert report.history_entries > report.sessions


def test_a_clean_legacy_database_has_no_findings(tmp_path: Path) -> None:
    path = tmp_path / "legacy.db"
    build_database(path, sessions=2_000, schema="legacy", seed=3, now=NOW)
    report = audit(path, now=NOW)
    assert report.clean
    assert report.history_entries == 0


def test_stuck_after_moves_the_threshold(tmp_path: Path) -> None:
    path = tmp_path / "stuck.db"
    build_database(path, sessions=0, defects={"stuck-waiting": 1}, seed=1, now=NOW)
    assert audit(path, now=NOW).counts == {"stuck-waiting": 1}
    assert audit(path, now=NOW, stuck_after=timedelta(days=31)).clean
    message = audit(path, now=NOW).findings[0].message
    assert "30.0 days, over the 7.0 days limit" in message


def test_audit_never_writes(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    build_database(path, sessions=50, defects={"mixed-status": 1}, seed=1, now=NOW)
    before = digest(path)
    path.chmod(0o444)
    try:
        assert audit(path, now=NOW).counts == {"mixed-status": 1}
    finally:
        path.chmod(0o644)
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ro.db"]


def test_sqlite_urls_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "url.db"
    build_database(path, sessions=10, defects={"duplicate-start": 1}, seed=1, now=NOW)
    assert audit(f"sqlite:///{path}", now=NOW).counts == {"duplicate-start": 1}
    assert count_rows(f"sqlite:///{path}") == audit(path, now=NOW).rows


def test_progress_is_told_every_row(tmp_path: Path) -> None:
    path = tmp_path / "progress.db"
    info = build_database(path, sessions=9_000, seed=1, now=NOW)
    told: list[int] = []
    audit(path, now=NOW, progress=told.append)
    assert told[0] == 0
    assert sum(told) == info.total_rows == count_rows(path)
    assert len(told) > 2


def test_report_json_shape_and_thresholds(tmp_path: Path) -> None:
    path = tmp_path / "json.db"
    build_database(path, sessions=5, defects={"duplicate-end": 1, "stuck-waiting": 2}, now=NOW)
    report = audit(path, now=NOW)
    shape = report.as_json()
    assert list(shape) == ["version", "rows", "sessions", "history_entries", "summary", "findings"]
    assert shape["version"] == 1
    assert shape["summary"] == {
        "error": 1,
        "warning": 2,
        "by_code": {"duplicate-end": 1, "stuck-waiting": 2},
    }
    first = shape["findings"][0]
    assert list(first) == ["code", "severity", "session_identifier", "row_ids", "message"]
    assert report.reaches("error")
    assert report.reaches("warning")
    warnings_only = AuditReport(
        tuple(f for f in report.findings if f.severity == "warning"), 1, 1, 0
    )
    assert warnings_only.reaches("warning")
    assert not warnings_only.reaches("error")
    assert not AuditReport((), 0, 0, 0).reaches("warning")


class TestUnusableDatabases:
    """Anything that is not a usable session_log database is refused with a clear reason."""

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(UnusableDatabase, match="no such file") as caught:
            audit(tmp_path / "absent.db")
        assert caught.value.url == str(tmp_path / "absent.db")
        assert not (tmp_path / "absent.db").exists()

    def test_not_a_database(self, tmp_path: Path) -> None:
        path = tmp_path / "notes.db"
        path.write_text("these are not the rows you are looking for")
        with pytest.raises(UnusableDatabase, match="file is not a database"):
            audit(path)
        assert path.read_text() == "these are not the rows you are looking for"

    def test_no_session_log(self, tmp_path: Path) -> None:
        path = tmp_path / "other.db"
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE instruments (instrument_pid TEXT)")
        with pytest.raises(UnusableDatabase, match="no session_log table"):
            audit(path)

    def test_missing_columns(self, tmp_path: Path) -> None:
        path = tmp_path / "narrow.db"
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE session_log (id_session_log INTEGER, session_identifier)")
        with pytest.raises(
            UnusableDatabase,
            match=r"session_log lacks column\(s\) timestamp, event_type, record_status",
        ):
            audit(path)

    def test_history_missing_columns(self, tmp_path: Path) -> None:
        path = tmp_path / "history.db"
        build_database(path, sessions=1, schema="legacy", now=NOW)
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE status_history (id INTEGER, session_identifier TEXT)")
        with pytest.raises(UnusableDatabase, match=r"status_history lacks column\(s\) seq"):
            audit(path)

    @pytest.mark.parametrize(
        ("url", "reason"),
        [
            ("sqlite://", "in-memory"),
            ("sqlite:///:memory:", "in-memory"),
            ("nosuchdialect://x/y", "Can't load plugin"),
        ],
    )
    def test_bad_urls(self, url: str, reason: str) -> None:
        with pytest.raises(UnusableDatabase, match=re.escape(reason)):
            audit(url)

    def test_unreachable_server_hides_the_password(self) -> None:
        url = "postgresql+psycopg://lims:s3cret@127.0.0.1:1/nexuslims"
        with pytest.raises(
            UnusableDatabase, match=r"Connection refused|connection failed"
        ) as caught:
            audit(url)
        assert "s3cret" not in str(caught.value)
        assert "***" in str(caught.value)


def rows_of(sid: str, spec: list[tuple[str | None, str | None, str | None]]) -> list[checks.RawRow]:
    return [checks.LogRow(sid, i + 1, *row) for i, row in enumerate(spec)]


STAMPS = st.sampled_from(
    [
        "2026-11-01T09:00:00+00:00",
        "2026-11-01T12:00:00-05:00",
        "2026-11-03T02:00:00.250000-07:00",
        "2026-11-20T08:00:00",
        "2026-11-28T10:30:00.123456-07:00",
        "2026-11-28T05:00:00-07:00",
        "garbage",
    ]
)
EVENTS = st.sampled_from([*[e.value for e in EventType], "NOTE", None])
STATUSES = st.sampled_from([*[s.value for s in RecordStatus], "BUILDING", None])


@given(st.lists(st.tuples(STAMPS, EVENTS, STATUSES), min_size=1, max_size=6))
def test_the_fast_path_agrees_with_the_full_check(
    spec: list[tuple[str | None, str | None, str | None]],
) -> None:
    rows = rows_of("s", spec)
    fast = checks.check_session("s", rows, LIMITS)
    full = checks._full_session_check("s", rows, LIMITS)
    assert fast == full


HISTORY_EVENTS = st.sampled_from(
    ["start", "end", "complete", "fail", "retry", "reprocess", "find_no_files", "frobnicate", None]
)
ENDED = st.sampled_from([None, datetime(2026, 11, 1, 9, tzinfo=UTC)])


@given(
    st.lists(st.tuples(st.integers(1, 5), STATUSES, STATUSES, HISTORY_EVENTS, STAMPS), max_size=5),
    STATUSES,
    ENDED,
)
def test_the_fast_history_path_agrees_with_the_full_check(
    spec: list[tuple[int, str | None, str | None, str | None, str]],
    status: str | None,
    ended: datetime | None,
) -> None:
    entries = [own_tables.HistoryEntry("s", i, *entry) for i, entry in enumerate(spec)]
    entries.sort(key=lambda entry: entry.seq)
    fast = own_tables.check_history("s", entries, status, ended=ended)
    assert fast == own_tables._full_history_check("s", entries, status, ended, FILE_DELAY)


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        ([(1, None, "WAITING_FOR_END", "start"), (2, None, "WAITING_FOR_END", "start")], "first"),
        ([(1, None, "TO_BE_BUILT", "start")], "starts in WAITING_FOR_END, not TO_BE_BUILT"),
        ([(1, "TO_BE_BUILT", "COMPLETED", "frobnicate")], "unknown lifecycle event"),
        ([(1, "COMPLETED", "TO_BE_BUILT", "retry")], "cannot 'retry' from COMPLETED"),
        (
            [(1, "WAITING_FOR_END", "TO_BE_BUILT", "end"), (2, "ERROR", "TO_BE_BUILT", "retry")],
            "starts from ERROR but entry 1 ended in TO_BE_BUILT",
        ),
    ],
)
def test_illegal_history_says_why(
    entries: list[tuple[int, str | None, str, str]], why: str
) -> None:
    records = [own_tables.HistoryEntry("s", i, *entry) for i, entry in enumerate(entries)]
    findings = own_tables.check_history("s", records, None)
    assert [f.code for f in findings] == ["illegal-history"]
    assert why in findings[0].message


def test_history_of_a_session_without_rows_is_a_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "orphan.db"
    build_database(path, sessions=3, now=NOW, seed=4)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO status_history (session_identifier, seq, from_status, to_status, event,"
            " at) VALUES ('zzz-gone', 1, NULL, 'WAITING_FOR_END', 'start', '2026-11-01T00:00:00Z')"
        )
        conn.execute(
            "INSERT INTO status_history (session_identifier, seq, from_status, to_status, event,"
            " at) VALUES ('', 1, NULL, 'WAITING_FOR_END', 'start', '2026-11-01T00:00:00Z')"
        )
    report = audit(path, now=NOW)
    assert report.counts == {"history-mismatch": 2}
    assert {f.session_identifier for f in report.findings} == {"zzz-gone", ""}
    assert "session_log has no rows" in report.findings[0].message


def test_identifiers_full_of_quotes_are_read_as_data(tmp_path: Path) -> None:
    path = tmp_path / "quotes.db"
    build_database(path, sessions=2, now=NOW, schema="legacy")
    evil = "x'); DROP TABLE session_log; --"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO session_log (session_identifier, instrument, timestamp, event_type,"
            " record_status) VALUES (?, 'i', '2026-11-27T00:00:00+00:00', 'START',"
            " 'WAITING_FOR_END')",
            (evil,),
        )
    report = audit(path, now=NOW)
    assert report.clean
    assert report.sessions == 3


def test_values_outside_the_enums_are_named_with_what_was_expected() -> None:
    rows = rows_of(
        "s",
        [
            ("2026-11-01T09:00:00+00:00", "START", "BUILDING"),
            ("2026-11-01T10:00:00+00:00", "NOTE", "COMPLETED"),
        ],
    )
    findings = checks._full_session_check("s", rows, LIMITS).findings
    by_code = {f.code: f for f in findings}
    assert by_code["invalid-status"].row_ids == (1,)
    assert by_code["invalid-status"].message == (
        "record_status 'BUILDING' is not one of BUILT_NOT_EXPORTED, COMPLETED, ERROR, "
        "NO_CONSENT, NO_FILES_FOUND, NO_RESERVATION, TO_BE_BUILT, WAITING_FOR_END"
    )
    assert by_code["invalid-event-type"].row_ids == (2,)
    assert by_code["invalid-event-type"].message == (
        "event_type 'NOTE' is not one of END, RECORD_GENERATION, START"
    )
