"""The audit: each finding code planted and found, clean data clean, bad databases refused."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nexuslims_lifecycle.audit import CODES, AuditReport, audit, count_rows
from nexuslims_lifecycle.audit import _checks as checks
from nexuslims_lifecycle.audit import _history as own_tables
from nexuslims_lifecycle.enums import EventType, RecordStatus
from nexuslims_lifecycle.errors import InvalidArgument, InvalidConfiguration, UnusableDatabase
from nexuslims_lifecycle.legality import next_status
from nexuslims_lifecycle.rules import FILE_DELAY
from nexuslims_lifecycle.testing.fixtures import DEFECTS, LEGACY_ONLY, build_database

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


def our_database(
    path: Path,
    rows: Sequence[tuple[str, str, str, str]],
    history: Sequence[tuple[str, int, str | None, str, str, str]] = (),
    claims: Sequence[tuple[str, str, str, str]] = (),
) -> Path:
    """Write the current schema with these rows, history entries and build claims.

    rows: (sid, timestamp, event_type, record_status); history: (sid, seq, from, to,
    event, at); claims: (sid, worker, claimed_at, expires_at).
    """
    build_database(path, sessions=0, now=NOW)
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO session_log (session_identifier, instrument, timestamp, event_type,"
            " record_status, user) VALUES (?, 'FEI-Titan-TEM', ?, ?, ?, 'ada')",
            rows,
        )
        conn.executemany(
            "INSERT INTO status_history (session_identifier, seq, from_status, to_status, event,"
            " at) VALUES (?, ?, ?, ?, ?, ?)",
            history,
        )
        conn.executemany(
            "INSERT INTO build_claim (session_identifier, worker, claimed_at, expires_at)"
            " VALUES (?, ?, ?, ?)",
            claims,
        )
    return path


def harvested(sid: str, status: str = "TO_BE_BUILT") -> list[tuple[str, str, str, str]]:
    """START and END rows as NEMO's harvester writes them (END at 2026-11-01T12:00Z)."""
    return [
        (sid, "2026-11-01T04:00:00-07:00", "START", status),
        (sid, "2026-11-01T05:00:00.000001-07:00", "END", status),
    ]


def entries(sid: str, *moves: tuple[str, str]) -> list[tuple[str, int, str | None, str, str, str]]:
    """A history: harvested at 12:05Z, then each (event, at) move, replayed legally."""
    result = [
        (sid, 1, None, "WAITING_FOR_END", "start", "2026-11-01T12:05:00+00:00"),
        (sid, 2, "WAITING_FOR_END", "TO_BE_BUILT", "end", "2026-11-01T12:05:00+00:00"),
    ]
    status = RecordStatus.TO_BE_BUILT
    for event, at in moves:
        after = next_status(status, event)
        result.append((sid, len(result) + 1, status.value, after.value, event, at))
        status = after
    return result


class TestSessionsBeingBuilt:
    """A build row in progress beside TO_BE_BUILT rows: being built, reported only when stale."""

    def test_fresh_is_clean_stale_is_stalled(self, tmp_path: Path) -> None:
        rows = [*harvested("s"), ("s", "2026-11-28T03:00:00.5-07:00", "RECORD_GENERATION", _W)]
        path = our_database(tmp_path / "b.db", rows, entries("s"))
        assert audit(path, now=NOW).clean  # 2 hours old
        report = audit(path, now=NOW, stalled_after=timedelta(hours=1))
        assert report.counts == {"stalled-build": 1}
        (finding,) = report.findings
        assert finding.row_ids == (3,)
        assert finding.message == (
            "build row in progress since 2026-11-28T03:00:00.500000-07:00: 2.0 hours old, over "
            "the 1.0 hours limit; NexusLIMS's next build-records run builds the session again"
        )
        assert audit(path, now=NOW + timedelta(days=2)).counts == {"stalled-build": 1}

    def test_the_newest_build_row_in_progress_judges(self, tmp_path: Path) -> None:
        """A crashed attempt's old row beside a fresh attempt's: a build is running."""
        rows = [
            *harvested("s"),
            ("s", "2026-11-02T09:00:00-07:00", "RECORD_GENERATION", _W),
            ("s", "2026-11-28T04:30:00-07:00", "RECORD_GENERATION", _W),
        ]
        path = our_database(tmp_path / "b.db", rows, entries("s"))
        assert audit(path, now=NOW).clean
        report = audit(path, now=NOW + timedelta(days=3))
        assert report.counts == {"stalled-build": 1}
        assert report.findings[0].row_ids == (3, 4)

    @pytest.mark.usefixtures("denver_local_time")
    def test_a_naive_timestamp_is_read_as_local_time(self, tmp_path: Path) -> None:
        """The one rule for offset-less (legacy) timestamps: local time, as the store reads them.

        02:00 in Denver (-07:00) is 09:00 UTC, three hours before NOW (read as UTC it
        would be ten).
        """
        rows = [*harvested("s"), ("s", "2026-11-28T02:00:00", "RECORD_GENERATION", _W)]
        path = our_database(tmp_path / "b.db", rows, entries("s"))
        assert audit(path, now=NOW, stalled_after=timedelta(hours=3, minutes=1)).clean
        report = audit(path, now=NOW, stalled_after=timedelta(hours=2, minutes=59))
        assert report.counts == {"stalled-build": 1}
        assert "since 2026-11-28T02:00:00-07:00: 3.0 hours old" in report.findings[0].message

    @pytest.mark.parametrize(
        ("others", "code"),
        [("COMPLETED", "mixed-status"), ("WAITING_FOR_END", "end-while-waiting")],
    )
    def test_a_build_row_in_progress_beside_other_statuses(
        self, others: str, code: str, tmp_path: Path
    ) -> None:
        rows = [
            *harvested("s", others),
            ("s", "2026-11-28T04:00:00-07:00", "RECORD_GENERATION", _W),
        ]
        path = our_database(tmp_path / "b.db", rows)
        assert audit(path, now=NOW).counts == {code: 1}

    def test_a_build_row_before_the_end(self, tmp_path: Path) -> None:
        rows = [
            ("s", "2026-11-28T04:00:00-07:00", "START", _W),
            ("s", "2026-11-28T04:30:00-07:00", "RECORD_GENERATION", _W),
        ]
        path = our_database(tmp_path / "b.db", rows)
        report = audit(path, now=NOW)
        assert report.counts == {"build-before-end": 1}
        assert report.findings[0].row_ids == (2,)
        assert report.findings[0].message == "RECORD_GENERATION row(s) but no END row yet"


_W = "WAITING_FOR_END"


class TestEarlyNoFiles:
    """find_no_files before END + the file delay: the history judges, else the build row."""

    AFTER = "2026-11-03T12:00:00.000001+00:00"  # END + 2 days, to the microsecond
    EARLY = "2026-11-03T12:00:00+00:00"

    def no_files(self, path: Path, built: str, decided: str) -> Path:
        rows = [
            *harvested("s", "NO_FILES_FOUND"),
            ("s", built, "RECORD_GENERATION", "NO_FILES_FOUND"),
        ]
        return our_database(path, rows, entries("s", ("find_no_files", decided)))

    def test_the_delay_is_measured_from_the_end(self, tmp_path: Path) -> None:
        assert audit(self.no_files(tmp_path / "a.db", self.AFTER, self.AFTER), now=NOW).clean
        report = audit(self.no_files(tmp_path / "b.db", self.EARLY, self.EARLY), now=NOW)
        assert report.counts == {"early-no-files": 1}
        (finding,) = report.findings
        assert finding.row_ids == (3,)  # the history entry
        assert finding.message.startswith(
            "entry 3: no files found at 2026-11-03T12:00:00+00:00, 2.0 days after the "
            "END at 2026-11-01T05:00:00.000001-07:00"
        )

    def test_the_history_judges_over_the_build_row(self, tmp_path: Path) -> None:
        """A claimed build's row dates from the claim; the decision's own time counts."""
        claimed_early = self.no_files(tmp_path / "a.db", "2026-11-02T00:00:00Z", self.AFTER)
        assert audit(claimed_early, now=NOW).clean
        decided_early = self.no_files(tmp_path / "b.db", self.AFTER, "2026-11-01T13:00:00Z")
        assert audit(decided_early, now=NOW).counts == {"early-no-files": 1}

    def test_without_history_the_newest_build_row_judges(self, tmp_path: Path) -> None:
        rows = [
            *harvested("s", "NO_FILES_FOUND"),
            ("s", "2026-11-01T13:00:00Z", "RECORD_GENERATION", "NO_FILES_FOUND"),
            ("s", self.AFTER, "RECORD_GENERATION", "NO_FILES_FOUND"),
        ]
        assert audit(our_database(tmp_path / "a.db", rows), now=NOW).clean
        rows[2], rows[3] = rows[3], rows[2]
        report = audit(our_database(tmp_path / "b.db", rows), now=NOW)
        assert report.counts == {"early-no-files": 1}
        assert report.findings[0].row_ids == (2, 4)

    def test_an_early_decision_retried_since_is_not_reported(self, tmp_path: Path) -> None:
        rows = [
            *harvested("s", "COMPLETED"),
            ("s", "2026-11-01T13:00:00Z", "RECORD_GENERATION", "COMPLETED"),
        ]
        history = entries(
            "s",
            ("find_no_files", "2026-11-01T13:00:00Z"),
            ("retry", "2026-11-02T00:00:00Z"),
            ("complete", "2026-11-04T00:00:00Z"),
        )
        assert audit(our_database(tmp_path / "a.db", rows, history), now=NOW).clean

    def test_the_file_delay_comes_from_nexuslims_configuration(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = self.no_files(tmp_path / "a.db", "2026-11-02T12:00:01Z", "2026-11-02T12:00:01Z")
        assert audit(path, now=NOW).counts == {"early-no-files": 1}  # a day after: too early
        assert audit(path, now=NOW, file_delay=timedelta(hours=24)).clean
        monkeypatch.setenv("NX_FILE_DELAY_DAYS", "0.75")
        assert audit(path, now=NOW).clean
        monkeypatch.setenv("NX_FILE_DELAY_DAYS", "1.5")
        report = audit(path, now=NOW)
        assert "the file delay of 1.5 days ran until" in report.findings[0].message
        monkeypatch.setenv("NX_FILE_DELAY_DAYS", "0")
        with pytest.raises(InvalidConfiguration, match="NX_FILE_DELAY_DAYS='0'"):
            audit(path, now=NOW)
        assert audit(path, now=NOW, file_delay=timedelta(hours=1)).clean  # an argument wins


class TestBuildClaims:
    """A build_claim row no worker can be building under is a stale claim."""

    LIVE = ("builder-1", "2026-11-28T11:00:00+00:00", "2026-11-28T13:00:00+00:00")
    EXPIRED = ("builder-2", "2026-11-28T09:00:00+00:00", "2026-11-28T12:00:00+00:00")

    def test_a_live_claim_on_a_session_being_built_is_clean(self, tmp_path: Path) -> None:
        rows = [*harvested("s"), ("s", "2026-11-28T11:00:00Z", "RECORD_GENERATION", _W)]
        path = our_database(tmp_path / "c.db", rows, entries("s"), [("s", *self.LIVE)])
        assert audit(path, now=NOW).clean

    def test_an_expired_lease(self, tmp_path: Path) -> None:
        path = our_database(tmp_path / "c.db", harvested("s"), entries("s"), [("s", *self.EXPIRED)])
        report = audit(path, now=NOW)  # expires_at == now: expired, as the store reads it
        assert report.counts == {"stale-claim": 1}
        assert report.findings[0].row_ids == ()
        assert report.findings[0].message == (
            "build claim of worker 'builder-2': its lease expired at 2026-11-28T12:00:00+00:00"
        )
        assert audit(path, now=NOW - timedelta(microseconds=1)).clean

    def test_a_session_no_longer_to_be_built(self, tmp_path: Path) -> None:
        rows = [
            *harvested("s", "ERROR"),
            ("s", "2026-11-02T00:00:00Z", "RECORD_GENERATION", "ERROR"),
        ]
        history = entries("s", ("fail", "2026-11-02T00:00:00Z"))
        path = our_database(tmp_path / "c.db", rows, history, [("s", *self.LIVE)])
        (finding,) = audit(path, now=NOW).findings
        assert finding.message == (
            "build claim of worker 'builder-1': the session is ERROR, no longer TO_BE_BUILT"
        )

    def test_claims_of_sessions_without_rows_in_session_order(self, tmp_path: Path) -> None:
        claims = [("a-gone", *self.LIVE), ("m", *self.EXPIRED), ("z-gone", "w", "x", "soon")]
        path = our_database(tmp_path / "c.db", harvested("m"), entries("m"), claims)
        report = audit(path, now=NOW)
        assert [(f.code, f.session_identifier) for f in report.findings] == [
            ("stale-claim", "a-gone"),
            ("stale-claim", "m"),
            ("stale-claim", "z-gone"),
        ]
        assert report.findings[0].message.endswith("the session has no session_log rows")
        assert report.findings[2].message == (
            "build claim of worker 'w': its expires_at 'soon' is not ISO-8601; "
            "the session has no session_log rows"
        )

    def test_claims_of_sessions_whose_rows_disagree_are_judged_by_lease(
        self, tmp_path: Path
    ) -> None:
        rows = [
            ("s", "2026-11-01T04:00:00Z", "START", "TO_BE_BUILT"),
            ("s", "2026-11-01T05:00:00Z", "END", "ERROR"),
        ]
        path = our_database(tmp_path / "c.db", rows, claims=[("s", *self.LIVE)])
        assert audit(path, now=NOW).counts == {"mixed-status": 1}

    def test_a_claim_table_without_its_columns_is_unusable(self, tmp_path: Path) -> None:
        path = tmp_path / "claims.db"
        build_database(path, sessions=1, schema="legacy", now=NOW)
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE build_claim (session_identifier TEXT, worker TEXT)")
        with pytest.raises(
            UnusableDatabase, match=r"build_claim lacks column\(s\) claimed_at, expires_at"
        ):
            audit(path, now=NOW)


def test_reprocessing_a_final_status_is_legal_history(tmp_path: Path) -> None:
    rows = [
        *harvested("s", "COMPLETED"),
        ("s", "2026-11-02T00:00:00Z", "RECORD_GENERATION", "COMPLETED"),
    ]
    history = entries(
        "s",
        ("deny_consent", "2026-11-02T00:00:00Z"),
        ("reprocess", "2026-11-10T00:00:00Z"),
        ("complete", "2026-11-11T00:00:00Z"),
        ("reprocess", "2026-11-20T00:00:00Z"),
        ("complete", "2026-11-21T00:00:00Z"),
    )
    assert audit(our_database(tmp_path / "r.db", rows, history), now=NOW).clean


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stuck_after": timedelta(days=-1)}, "invalid stuck_after .*: expected a timedelta >= 0"),
        ({"stalled_after": 3600}, "invalid stalled_after 3600: expected a timedelta >= 0"),
        ({"file_delay": timedelta(0)}, "invalid file_delay .*: expected a timedelta > 0"),
        ({"now": NOW.replace(tzinfo=None)}, "invalid now .*: expected a timezone-aware datetime"),
    ],
)
def test_unusable_limits_are_refused_before_reading(
    kwargs: dict[str, object], message: str, tmp_path: Path
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        audit(tmp_path / "absent.db", **kwargs)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_limits_at_zero_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "zero.db"
    build_database(path, sessions=0, defects={"stalled-build": 1}, now=NOW)
    report = audit(path, now=NOW, stuck_after=timedelta(0), stalled_after=timedelta(0))
    assert report.counts == {"stalled-build": 1}


def test_unreadable_times_are_not_judged_for_the_file_delay() -> None:
    """A history entry without a readable time, or a build row's garbage: no early-no-files."""
    ended = datetime(2026, 11, 1, 12, tzinfo=UTC)
    entries = [
        own_tables.HistoryEntry("s", 1, 1, None, "WAITING_FOR_END", "start"),
        own_tables.HistoryEntry("s", 2, 2, "WAITING_FOR_END", "TO_BE_BUILT", "end"),
        own_tables.HistoryEntry("s", 3, 3, "TO_BE_BUILT", "NO_FILES_FOUND", "find_no_files"),
    ]
    assert own_tables.check_history("s", entries, "NO_FILES_FOUND", ended) == []
    rows = rows_of(
        "s",
        [
            ("2026-11-01T09:00:00+00:00", "START", "NO_FILES_FOUND"),
            ("2026-11-01T12:00:00+00:00", "END", "NO_FILES_FOUND"),
            ("soon after", "RECORD_GENERATION", "NO_FILES_FOUND"),
        ],
    )
    verdict = checks.check_session("s", rows, LIMITS)
    assert [f.code for f in verdict.findings] == ["invalid-timestamp"]
    assert verdict.early_no_files is None
