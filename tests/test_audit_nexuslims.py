"""The audit on rows written the way NexusLIMS 2.8 writes them: normal, so no finding.

The writes below follow what NexusLIMS 2.8.0's harvester, record builder and documented
operator commands do to ``session_log`` (its schema, one transaction per write, local
offsets, the builder's user ``nexuslims``), step by step; the audit runs after every
step with the clock at that moment.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from nexuslims_lifecycle.audit import CODES, audit
from nexuslims_lifecycle.enums import RecordStatus

DENVER = timezone(timedelta(hours=-7))  # NexusLIMS's local offset in the interop run
T0 = datetime(2026, 11, 2, 9, 15, 30, 250000, tzinfo=DENVER)
STATUSES = ", ".join(f"'{status.value}'" for status in RecordStatus)
NEXUSLIMS_DDL = f"""
CREATE TABLE instruments (instrument_pid VARCHAR(100) NOT NULL PRIMARY KEY, api_url VARCHAR);
CREATE TABLE session_log (
    id_session_log INTEGER NOT NULL PRIMARY KEY,
    session_identifier VARCHAR(36) NOT NULL,
    instrument VARCHAR(100) NOT NULL REFERENCES instruments (instrument_pid),
    timestamp VARCHAR NOT NULL,
    event_type VARCHAR(17) NOT NULL
        CHECK (event_type IN ('START', 'END', 'RECORD_GENERATION')),
    record_status VARCHAR(18) NOT NULL CHECK (record_status IN ({STATUSES})),
    user VARCHAR(50)
);
CREATE INDEX ix_session_log_session_identifier ON session_log (session_identifier);
INSERT INTO instruments VALUES ('FEI-Titan-TEM', 'https://nemo.example.org/api/tools/?id=1');
"""


class NexusLIMS:
    """Writes ``session_log`` as NexusLIMS 2.8's harvester, builder and operators do."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self.connect() as conn:
            conn.executescript(NEXUSLIMS_DDL)

    def connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path)

    def harvest(self, number: int, start: datetime, end: datetime, user: str = "ada") -> str:
        """An ended NEMO usage event: START then END, each its own transaction, TO_BE_BUILT."""
        sid = f"https://nemo.example.org/api/usage_events/?id={number}"
        for kind, moment in (("START", start), ("END", end)):
            with self.connect() as conn:
                conn.execute(
                    "INSERT INTO session_log (session_identifier, instrument, timestamp,"
                    " event_type, record_status, user) VALUES (?, 'FEI-Titan-TEM', ?, ?,"
                    " 'TO_BE_BUILT', ?)",
                    (sid, moment.isoformat(), kind, user),
                )
        return sid

    def revise(self, sid: str, kind: str, moment: datetime, user: str) -> None:
        """Re-harvesting a revised usage event updates its row while WAITING/TO_BE_BUILT."""
        with self.connect() as conn:
            conn.execute(
                "UPDATE session_log SET timestamp = ?, user = ? WHERE session_identifier = ?"
                " AND event_type = ? AND record_status IN ('WAITING_FOR_END', 'TO_BE_BUILT')",
                (moment.isoformat(), user, sid, kind),
            )

    def begin_build(self, sid: str, now: datetime) -> int:
        """``insert_record_generation_event``: a build row WAITING_FOR_END by nexuslims."""
        with self.connect() as conn:
            cursor = conn.execute(
                "INSERT INTO session_log (session_identifier, instrument, timestamp,"
                " event_type, record_status, user) VALUES (?, 'FEI-Titan-TEM', ?,"
                " 'RECORD_GENERATION', 'WAITING_FOR_END', 'nexuslims')",
                (sid, now.isoformat()),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def no_files_yet(self, build_row: int) -> None:
        """No files before the file delay: the attempt's build row is deleted again."""
        with self.connect() as conn:
            conn.execute("DELETE FROM session_log WHERE id_session_log = ?", (build_row,))

    def outcome(self, sid: str, status: str) -> None:
        """``update_session_status``: every row of the session, old build rows included."""
        with self.connect() as conn:
            ids = conn.execute(
                "SELECT id_session_log FROM session_log WHERE session_identifier = ?", (sid,)
            ).fetchall()
            conn.executemany(
                "UPDATE session_log SET record_status = ? WHERE id_session_log = ?",
                [(status, row_id) for (row_id,) in ids],
            )

    def requeue(self, sid: str) -> None:
        """The operators' retry or reprocess: ``UPDATE ... SET record_status='TO_BE_BUILT'``."""
        with self.connect() as conn:
            conn.execute(
                "UPDATE session_log SET record_status = 'TO_BE_BUILT' WHERE session_identifier = ?",
                (sid,),
            )

    def rows(self) -> list[tuple[str, str, str]]:
        with self.connect() as conn:
            return conn.execute(
                "SELECT event_type, record_status, user FROM session_log ORDER BY id_session_log"
            ).fetchall()


@pytest.fixture
def nexuslims(tmp_path: Path) -> NexusLIMS:
    return NexusLIMS(tmp_path / "nexuslims_db.sqlite")


def clean_at(nx: NexusLIMS, now: datetime) -> bool:
    report = audit(nx.path, now=now)
    assert report.findings == (), report.counts
    return report.clean


def built(nx: NexusLIMS, sid: str, now: datetime, status: str) -> Iterator[datetime]:
    """One build attempt: audit while it runs, then set the outcome; yield each moment."""
    nx.begin_build(sid, now)
    yield now
    nx.outcome(sid, status)
    yield now + timedelta(minutes=3)


OUTCOMES = [s.value for s in RecordStatus if s.value not in ("WAITING_FOR_END", "TO_BE_BUILT")]


@pytest.mark.parametrize("status", OUTCOMES)
def test_every_outcome_as_nexuslims_writes_it_is_clean(nexuslims: NexusLIMS, status: str) -> None:
    """Harvested, being built, then the outcome on every row: clean at every moment."""
    end = T0 + timedelta(hours=3, microseconds=517)
    sid = nexuslims.harvest(1, T0, end)
    assert clean_at(nexuslims, end + timedelta(minutes=5))
    start = end + (timedelta(days=3) if status == "NO_FILES_FOUND" else timedelta(minutes=20))
    for moment in built(nexuslims, sid, start, status):
        assert clean_at(nexuslims, moment)
    assert nexuslims.rows() == [
        ("START", status, "ada"),
        ("END", status, "ada"),
        ("RECORD_GENERATION", status, "nexuslims"),
    ]
    assert clean_at(nexuslims, start + timedelta(days=400))


def test_no_files_before_the_delay_leaves_no_trace_then_after_it(nexuslims: NexusLIMS) -> None:
    end = T0 + timedelta(hours=2)
    sid = nexuslims.harvest(2, T0, end)
    for hours in (1, 13, 25, 37):  # builder runs that find no files yet
        moment = end + timedelta(hours=hours)
        row = nexuslims.begin_build(sid, moment)
        assert clean_at(nexuslims, moment)
        nexuslims.no_files_yet(row)
        assert clean_at(nexuslims, moment + timedelta(seconds=30))
    assert [row[:2] for row in nexuslims.rows()] == [
        ("START", "TO_BE_BUILT"),
        ("END", "TO_BE_BUILT"),
    ]
    after = end + timedelta(days=2, minutes=1)
    for moment in built(nexuslims, sid, after, "NO_FILES_FOUND"):
        assert clean_at(nexuslims, moment)


def test_a_whole_build_run_keeps_its_sessions_being_built_until_export(
    nexuslims: NexusLIMS,
) -> None:
    """Built records wait TO_BE_BUILT + build row until every session of the run is built."""
    sids = [nexuslims.harvest(10 + n, T0, T0 + timedelta(hours=1 + n)) for n in range(4)]
    run = T0 + timedelta(hours=8)
    for number, sid in enumerate(sids):
        nexuslims.begin_build(sid, run + timedelta(minutes=40 * number))
        assert clean_at(nexuslims, run + timedelta(minutes=40 * number + 1))
    nexuslims.outcome(sids[0], "ERROR")
    assert clean_at(nexuslims, run + timedelta(hours=3))
    for sid in sids[1:]:
        nexuslims.outcome(sid, "COMPLETED")
    assert clean_at(nexuslims, run + timedelta(hours=3, minutes=5))


def test_a_revised_usage_event_is_normal(nexuslims: NexusLIMS) -> None:
    end = T0 + timedelta(hours=2)
    sid = nexuslims.harvest(3, T0, end, user="ada")
    revised = end + timedelta(minutes=47, microseconds=1)
    nexuslims.revise(sid, "START", T0 - timedelta(minutes=5), "grace")
    nexuslims.revise(sid, "END", revised, "grace")
    assert clean_at(nexuslims, revised + timedelta(minutes=1))
    for moment in built(nexuslims, sid, revised + timedelta(hours=1), "COMPLETED"):
        assert clean_at(nexuslims, moment)
    assert {user for kind, _, user in nexuslims.rows() if kind != "RECORD_GENERATION"} == {"grace"}


def test_retry_and_reprocess_leave_several_build_rows(nexuslims: NexusLIMS) -> None:
    end = T0 + timedelta(hours=1)
    sid = nexuslims.harvest(4, T0, end)
    moment = end + timedelta(hours=1)
    for status in ("ERROR", "COMPLETED", "COMPLETED"):  # fail, retry, reprocess
        for step in built(nexuslims, sid, moment, status):
            assert clean_at(nexuslims, step)
        moment += timedelta(days=10)
        nexuslims.requeue(sid)
        assert clean_at(nexuslims, moment - timedelta(hours=1))
    kinds = [(kind, status) for kind, status, _ in nexuslims.rows()]
    assert kinds.count(("RECORD_GENERATION", "TO_BE_BUILT")) == 3


def test_a_crashed_build_is_normal_until_it_grows_stale(nexuslims: NexusLIMS) -> None:
    """Fresh, a crashed build looks like one in progress; old, it is a stalled build."""
    end = T0 + timedelta(hours=1)
    sid = nexuslims.harvest(5, T0, end)
    crashed = end + timedelta(hours=1)
    nexuslims.begin_build(sid, crashed)  # and the process died
    assert clean_at(nexuslims, crashed + timedelta(hours=20))
    report = audit(nexuslims.path, now=crashed + timedelta(days=2))
    assert report.counts == {"stalled-build": 1}
    assert report.findings[0].severity == "warning"
    assert "next build-records run builds the session again" in report.findings[0].message
    assert "retry" not in CODES["stalled-build"].repair
    assert "nexuslims build-records" in CODES["stalled-build"].repair
    # NexusLIMS's next run builds it again: its outcome overwrites the stale row.
    rerun = crashed + timedelta(days=2, hours=1)
    nexuslims.begin_build(sid, rerun)
    assert clean_at(nexuslims, rerun + timedelta(minutes=1))
    nexuslims.outcome(sid, "COMPLETED")
    assert clean_at(nexuslims, rerun + timedelta(days=30))


def test_a_builder_that_did_not_wait_for_files_is_caught(nexuslims: NexusLIMS) -> None:
    """NO_FILES_FOUND decided an hour after the END: early by the newest build row."""
    end = T0 + timedelta(hours=1)
    sid = nexuslims.harvest(6, T0, end)
    for _ in built(nexuslims, sid, end + timedelta(hours=1), "NO_FILES_FOUND"):
        pass
    report = audit(nexuslims.path, now=end + timedelta(days=5))
    assert report.counts == {"early-no-files": 1}
    finding = report.findings[0]
    assert finding.row_ids == (2, 3)
    assert finding.message == (
        "no files found at 2026-11-02T11:15:30.250000-07:00, 1.0 hours after the END at "
        "2026-11-02T10:15:30.250000-07:00: the file delay of 2.0 days ran until "
        "2026-11-04T10:15:30.250000-07:00"
    )
    # The same decision is in time for a file delay of 30 minutes.
    assert audit(
        nexuslims.path, now=end + timedelta(days=5), file_delay=timedelta(minutes=30)
    ).clean
