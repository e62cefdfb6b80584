"""The audit of our own tables beside session_log, on SQLite and a real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from nexuslims_lifecycle.audit import audit
from nexuslims_lifecycle.store._schema import BUILD_CLAIM, METADATA, SESSION_LOG, STATUS_HISTORY

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TBB, WAITING = "TO_BE_BUILT", "WAITING_FOR_END"


def harvested(sid: str, status: str) -> list[dict[str, str]]:
    return [
        {"session_identifier": sid, "timestamp": "2026-11-01T04:00:00-07:00", "event_type": "START"}
        | {"record_status": status},
        {"session_identifier": sid, "timestamp": "2026-11-01T05:00:00-07:00", "event_type": "END"}
        | {"record_status": status},
    ]


def build_row(sid: str, at: str, status: str) -> dict[str, str]:
    return {
        "session_identifier": sid,
        "timestamp": at,
        "event_type": "RECORD_GENERATION",
        "record_status": status,
    }


def history(sid: str, *moves: tuple[str | None, str, str, str]) -> list[dict[str, object]]:
    return [
        {
            "session_identifier": sid,
            "seq": seq,
            "from_status": before,
            "to_status": after,
            "event": event,
            "at": at,
        }
        for seq, (before, after, event, at) in enumerate(moves, start=1)
    ]


HARVEST = (
    (None, WAITING, "start", "2026-11-01T12:05:00+00:00"),
    (WAITING, TBB, "end", "2026-11-01T12:05:00+00:00"),
)


def test_our_tables_are_read_beside_session_log(db_url: str) -> None:
    """Being built, stalled, early, stale claims and orphans, in session order on both backends."""
    url = db_url if "://" in db_url else f"sqlite:///{db_url}"
    engine = sa.create_engine(url)
    METADATA.create_all(engine)
    rows = [
        *harvested("a-building", TBB),
        build_row("a-building", "2026-11-28T04:00:00.123456-07:00", WAITING),
        *harvested("B-stalled", TBB),
        build_row("B-stalled", "2026-11-02T04:00:00-07:00", WAITING),
        *harvested("c-early", "NO_FILES_FOUND"),
        build_row("c-early", "2026-11-01T13:00:00Z", "NO_FILES_FOUND"),
        *harvested("é-done", "COMPLETED"),
        build_row("é-done", "2026-11-03T13:00:00Z", "COMPLETED"),
    ]
    entries = [
        *history("a-building", *HARVEST),
        *history("B-stalled", *HARVEST),
        *history(
            "c-early", *HARVEST, (TBB, "NO_FILES_FOUND", "find_no_files", "2026-11-01T13:00:00Z")
        ),
        *history("é-done", *HARVEST, (TBB, "COMPLETED", "complete", "2026-11-03T13:00:00Z")),
        *history("Zz-orphan", HARVEST[0]),
    ]
    live = {"claimed_at": "2026-11-28T11:00:00+00:00", "expires_at": "2026-11-28T13:00:00+00:00"}
    claims = [
        {"session_identifier": "a-building", "worker": "w1"} | live,
        {"session_identifier": "é-done", "worker": "w2"} | live,
        {"session_identifier": "ö-gone", "worker": "w3"} | live,
    ]
    with engine.begin() as conn:
        conn.execute(SESSION_LOG.insert(), [row | {"instrument": "FEI-Titan-TEM"} for row in rows])
        conn.execute(STATUS_HISTORY.insert(), entries)
        conn.execute(BUILD_CLAIM.insert(), claims)
    engine.dispose()
    report = audit(url, now=NOW)
    assert [(f.code, f.session_identifier) for f in report.findings] == [
        ("stalled-build", "B-stalled"),
        ("history-mismatch", "Zz-orphan"),
        ("early-no-files", "c-early"),
        ("stale-claim", "é-done"),
        ("stale-claim", "ö-gone"),
    ]
    assert report.history_entries == len(entries)
    assert (report.rows, report.sessions) == (len(rows), 4)
