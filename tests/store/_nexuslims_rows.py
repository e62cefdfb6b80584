"""``session_log`` files written the way NexusLIMS 2.8 writes them, with plain sqlite3.

The shapes (rows per session, their statuses, users and local-offset timestamps) are
those observed from NexusLIMS 2.8's own harvester and record builder: the harvester
writes START and END together, both TO_BE_BUILT; a build adds a RECORD_GENERATION
row (user ``nexuslims``, WAITING_FOR_END) and its outcome sets every row of the
session. Then ``SessionLogStore.init`` adds our tables, as an operator would.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from nexuslims_lifecycle.enums import EventType, RecordStatus
from nexuslims_lifecycle.store import SessionLogStore

Row = tuple[str, str, str, str, str | None]  # sid, timestamp, event_type, status, user
TEM = "FEI-Titan-TEM-635816"

_STATUSES = ", ".join(f"'{status.value}'" for status in RecordStatus)
_EVENT_TYPES = ", ".join(f"'{kind.value}'" for kind in EventType)
DDL = f"""
CREATE TABLE session_log (
    id_session_log INTEGER NOT NULL PRIMARY KEY,
    session_identifier VARCHAR(36) NOT NULL,
    instrument VARCHAR(100) NOT NULL,
    timestamp VARCHAR NOT NULL,
    event_type VARCHAR(17) NOT NULL
        CONSTRAINT check_event_type CHECK (event_type IN ({_EVENT_TYPES})),
    record_status VARCHAR(18) NOT NULL
        CONSTRAINT check_record_status CHECK (record_status IN ({_STATUSES})),
    user VARCHAR(50)
);
CREATE INDEX ix_session_log_session_identifier ON session_log (session_identifier);
"""


def create(path: Path, *sessions: Iterable[Row], init: bool = True) -> str:
    """Create a NexusLIMS ``session_log`` file holding ``sessions``; return its path."""
    with sqlite3.connect(path) as conn:
        conn.executescript(DDL)
    add(path, *sessions)
    if init:
        with SessionLogStore(path) as store:
            store.init()
    return str(path)


def add(path: Path | str, *sessions: Iterable[Row]) -> None:
    """Insert the rows of ``sessions``, in order, each in NexusLIMS's own transaction."""
    with sqlite3.connect(path) as conn:
        for rows in sessions:
            conn.executemany(
                "INSERT INTO session_log (session_identifier, instrument, timestamp, "
                "event_type, record_status, user) VALUES (?, ?, ?, ?, ?, ?)",
                [(sid, TEM, stamp, kind, status, user) for sid, stamp, kind, status, user in rows],
            )
    conn.close()


def harvested(sid: str, start: datetime, status: str = "TO_BE_BUILT") -> list[Row]:
    """START and END rows as the NEMO harvester writes them (END an hour after START)."""
    end = start + timedelta(hours=1)
    return [
        (sid, start.isoformat(), "START", status, "ada"),
        (sid, end.isoformat(), "END", status, "ada"),
    ]


def build_row(sid: str, start: datetime, status: str, *, attempt: int = 1) -> Row:
    """A RECORD_GENERATION row, written ``attempt`` days after the session started."""
    return (
        sid,
        (start + timedelta(days=attempt)).isoformat(),
        "RECORD_GENERATION",
        status,
        "nexuslims",
    )


def built(sid: str, start: datetime, status: str, *, attempts: int = 1) -> list[Row]:
    """A session after the builder's outcome ``status``: every row holds it."""
    return [
        *harvested(sid, start, status),
        *(build_row(sid, start, status, attempt=n) for n in range(1, attempts + 1)),
    ]


def being_built(sid: str, start: datetime) -> list[Row]:
    """A session NexusLIMS is building now (or whose build crashed)."""
    return [*harvested(sid, start), build_row(sid, start, "WAITING_FOR_END")]


def started(sid: str, start: datetime) -> list[Row]:
    """A session our ``start()`` opened: a START row, WAITING_FOR_END."""
    return [(sid, start.isoformat(), "START", "WAITING_FOR_END", "ada")]


def split(sid: str, start: datetime) -> list[Row]:
    """What NexusLIMS's documented date-range UPDATE leaves: START/END requeued, the rest not."""
    return [*harvested(sid, start), build_row(sid, start, "COMPLETED")]


def rows(path: Path | str, sid: str) -> list[tuple[str, str]]:
    """Return a session's (event_type, record_status) rows, oldest first."""
    with sqlite3.connect(path) as conn:
        found = conn.execute(
            "SELECT event_type, record_status FROM session_log WHERE session_identifier = ? "
            "ORDER BY id_session_log",
            (sid,),
        ).fetchall()
    conn.close()
    return [(kind, status) for kind, status in found]
