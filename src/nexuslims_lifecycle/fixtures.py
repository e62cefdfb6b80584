"""Generate NexusLIMS-shaped ``session_log`` databases, clean or with planted defects.

For testing tools that read NexusLIMS databases (our own audit first): realistic
sessions with NEMO usage-event identifiers, several instruments, timestamps with
UTC offsets, build attempts with retries, and our ``status_history`` — every one a
legal history of the lifecycle — plus, on request, sessions with one chosen defect
each, named by the audit code that should find it.

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "session_log.db"
>>> info = build_database(path, sessions=20, defects={"stuck-waiting": 2}, seed=7)
>>> info.total_sessions, len(info.sessions["stuck-waiting"])
(22, 2)
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Final, Literal

from nexuslims_lifecycle.enums import EventType, RecordStatus
from nexuslims_lifecycle.legality import next_status
from nexuslims_lifecycle.rules import LIFECYCLE, START_EVENT

__all__ = ["DEFECTS", "LEGACY_ONLY", "FixtureInfo", "Planter", "Schema", "build_database"]

Schema = Literal["current", "legacy"]
"""Which NexusLIMS schema to write: ``current`` (CHECK constraints, history) or ``legacy``."""

_S = RecordStatus
_INSTRUMENTS: Final = (
    "FEI-Titan-TEM-635816",
    "FEI-Titan-STEM-630901",
    "JEOL-JEM3010-TEM-565989",
    "FEI-Quanta200-ESEM-633137",
    "Hitachi-S4700-SEM-606559",
)
_USERS: Final = ("ada", "grace", "rosalind", "marie", "dorothy", "chien-shiung")
_ZONES: Final = (
    UTC,
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=-7)),
    timezone(timedelta(hours=1)),
)
# Weighted: most builds complete.
_OUTCOME_EVENTS: Final = (
    *("complete",) * 3,
    "fail_export",
    "fail",
    "find_no_files",
    "deny_consent",
    "find_no_reservation",
)
_BY: Final = {(source, rule.event): rule.by for rule in LIFECYCLE.rules for source in rule.sources}
_OPERATOR_MOVE: Final = {
    source: rule.event
    for rule in LIFECYCLE.rules
    if rule.by == "operator"
    for source in rule.sources
}
_BATCH: Final = 5_000

# NexusLIMS's schema before CHECK constraints covered every status: none at all here.
_LEGACY_DDL: Final = """
CREATE TABLE "session_log" (
    "id_session_log" INTEGER NOT NULL,
    "session_identifier" VARCHAR(36) NOT NULL,
    "instrument" VARCHAR(100) NOT NULL,
    "timestamp" DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now', 'localtime')),
    "event_type" TEXT NOT NULL,
    "record_status" TEXT NOT NULL DEFAULT 'WAITING_FOR_END',
    "user" VARCHAR(50),
    CONSTRAINT "id_session_log_UNIQUE" UNIQUE("id_session_log"),
    PRIMARY KEY("id_session_log" AUTOINCREMENT)
);
CREATE INDEX "session_log_session_identifier" ON "session_log" ("session_identifier");
"""


@dataclass
class _Session:
    """One generated session: its rows and history before they are written."""

    sid: str
    instrument: str
    user: str
    status: RecordStatus
    rows: list[list[object]] = field(default_factory=list)  # [timestamp, event_type, status]
    history: list[list[object]] = field(default_factory=list)  # [seq, from, to, event, at]
    times: list[datetime] = field(default_factory=list)


@dataclass(frozen=True)
class FixtureInfo:
    """What :func:`build_database` wrote.

    Parameters
    ----------
    path
        The SQLite file.
    total_sessions
        Sessions written, clean and defective.
    total_rows
        ``session_log`` rows written.
    sessions
        For each planted defect code, the identifiers of the sessions that carry it.
    """

    path: Path
    total_sessions: int
    total_rows: int
    sessions: dict[str, list[str]]


def _stamp(moment: datetime, zone: timezone) -> str:
    return moment.astimezone(zone).isoformat(timespec="seconds")


def _walk(session: _Session, rng: random.Random, now: datetime) -> None:
    """Give ``session`` a random legal history ending before ``now``."""
    ended = rng.random() > 0.1
    start = now - (
        timedelta(days=rng.uniform(3, 365)) if ended else timedelta(hours=rng.uniform(1, 48))
    )
    _move(session, START_EVENT, start)
    if not ended:
        return
    moment = start + timedelta(hours=rng.uniform(0.5, 8))
    _move(session, "end", moment)
    for _attempt in range(rng.choice((0, 1, 1, 1, 2, 3))):
        if session.status is not _S.TO_BE_BUILT:
            requeue = _OPERATOR_MOVE.get(session.status)
            if requeue is None:
                break
            moment += timedelta(hours=rng.uniform(1, 24))
            _move(session, requeue, moment)
        moment += timedelta(hours=rng.uniform(0.1, 24), seconds=rng.randrange(60))
        _move(session, rng.choice(_OUTCOME_EVENTS), moment)


def _move(session: _Session, event: str, moment: datetime) -> None:
    """Apply ``event`` (or the session's START) as NexusLIMS and our store would log it."""
    before = None if event == START_EVENT else session.status
    session.status = _S.WAITING_FOR_END if before is None else next_status(before, event)
    if event == START_EVENT:
        kind: EventType | None = EventType.START
    elif event == "end":
        kind = EventType.END
    else:
        by = None if before is None else _BY[before, event]
        kind = None if by == "operator" else EventType.RECORD_GENERATION
    if kind is not None:
        session.rows.append([moment, kind.value, None])
    seq = len(session.history) + 1
    session.history.append([seq, before and before.value, session.status.value, event, moment])


def _clean_session(number: int, rng: random.Random, now: datetime) -> _Session:
    session = _Session(
        f"https://nemo.example.org/api/usage_events/?id={100_000 + number}",
        rng.choice(_INSTRUMENTS),
        rng.choice(_USERS),
        _S.WAITING_FOR_END,
    )
    _walk(session, rng, now)
    return session


def _shaped(
    number: int, rng: random.Random, now: datetime, events: tuple[str, ...], age: timedelta
) -> _Session:
    """Make a session with exactly ``events`` after its START, ``age`` before ``now``."""
    session = _Session(
        f"https://nemo.example.org/api/usage_events/?id={900_000 + number}",
        rng.choice(_INSTRUMENTS),
        rng.choice(_USERS),
        _S.WAITING_FOR_END,
    )
    moment = now - age
    _move(session, START_EVENT, moment)
    for event in events:
        moment += timedelta(hours=2)
        _move(session, event, moment)
    return session


Planter = Callable[[_Session], None]
"""A change to a generated session that plants one defect."""


def _set_row(index: int, column: int, value: object) -> Planter:
    def plant(session: _Session) -> None:
        session.rows[index][column] = value

    return plant


def _append_row(event_type: str, status: str | None, shift: timedelta) -> Planter:
    def plant(session: _Session) -> None:
        moment = session.rows[-1][0]
        assert isinstance(moment, datetime)  # noqa: S101 - our own rows
        session.rows.append([moment + shift, event_type, status])

    return plant


def _drop_rows(event_type: str) -> Planter:
    def plant(session: _Session) -> None:
        session.rows = [row for row in session.rows if row[1] != event_type]

    return plant


def _drop_history(seq: int) -> Planter:
    def plant(session: _Session) -> None:
        session.history = [entry for entry in session.history if entry[0] != seq]

    return plant


def _set_history(seq: int, column: int, value: object) -> Planter:
    def plant(session: _Session) -> None:
        session.history[seq - 1][column] = value

    return plant


def _all_rows_status(value: str) -> Planter:
    def plant(session: _Session) -> None:
        for row in session.rows:
            row[2] = value

    return plant


_DONE: Final = ("end", "complete")
_DAY: Final = timedelta(days=1)
# code -> (events after START, age at START, the change that plants the defect)
DEFECTS: Final[dict[str, tuple[tuple[str, ...], timedelta, Planter]]] = {
    "invalid-status": (_DONE, 30 * _DAY, _set_row(1, 2, "BUILDING")),
    "invalid-event-type": (_DONE, 30 * _DAY, _append_row("NOTE", None, timedelta(minutes=5))),
    "invalid-timestamp": (_DONE, 30 * _DAY, _set_row(0, 0, "last tuesday")),
    "mixed-status": (_DONE, 30 * _DAY, _set_row(0, 2, "TO_BE_BUILT")),
    "stalled-build": (_DONE, 30 * _DAY, _append_row("RECORD_GENERATION", "WAITING_FOR_END", _DAY)),
    "missing-start": (_DONE, 30 * _DAY, _drop_rows("START")),
    "duplicate-start": (_DONE, 30 * _DAY, _append_row("START", None, timedelta(minutes=1))),
    "duplicate-end": (_DONE, 30 * _DAY, _append_row("END", None, timedelta(hours=1))),
    "end-before-start": (_DONE, 30 * _DAY, _set_row(1, 0, datetime(2000, 1, 1, tzinfo=UTC))),
    "status-without-end": (("end",), 30 * _DAY, _drop_rows("END")),
    "end-while-waiting": ((), timedelta(hours=3), _append_row("END", None, timedelta(hours=1))),
    "outcome-without-build": (_DONE, 30 * _DAY, _drop_rows("RECORD_GENERATION")),
    "stuck-waiting": ((), 30 * _DAY, lambda _: None),  # its age alone is the defect
    "illegal-history": (_DONE, 30 * _DAY, _set_history(3, 3, "fail_export")),
    "history-gap": (_DONE, 30 * _DAY, _drop_history(2)),
    "history-mismatch": (_DONE, 30 * _DAY, _all_rows_status("ERROR")),
}
"""Every defect :func:`build_database` can plant, by the audit code that finds it."""

LEGACY_ONLY: Final = frozenset({"invalid-status", "invalid-event-type"})
"""Defects the current schema's CHECK constraints forbid: plant them in ``schema="legacy"``."""
_HISTORY_ONLY: Final = frozenset({"illegal-history", "history-gap", "history-mismatch"})


def _check_arguments(sessions: int, schema: str, defects: dict[str, int]) -> None:
    if sessions < 0:
        msg = f"sessions must be >= 0, got {sessions}"
        raise ValueError(msg)
    if schema not in ("current", "legacy"):
        msg = f"schema must be 'current' or 'legacy', got {schema!r}"
        raise ValueError(msg)
    for code, count in defects.items():
        if code not in DEFECTS:
            msg = f"unknown defect {code!r}: expected one of {', '.join(DEFECTS)}"
            raise ValueError(msg)
        if count < 0:
            msg = f"defect {code!r}: count must be >= 0, got {count}"
            raise ValueError(msg)
        if code in LEGACY_ONLY and schema == "current":
            msg = (
                f"defect {code!r} breaks a CHECK constraint of the current schema: "
                "use schema='legacy'"
            )
            raise ValueError(msg)
        if code in _HISTORY_ONLY and schema == "legacy":
            msg = f"defect {code!r} needs status_history, which the legacy schema lacks"
            raise ValueError(msg)


def build_database(
    path: str | Path,
    *,
    sessions: int,
    schema: Schema = "current",
    defects: dict[str, int] | None = None,
    seed: int = 0,
    now: datetime | None = None,
) -> FixtureInfo:
    """Write a new NexusLIMS-shaped SQLite database of random legal sessions.

    Parameters
    ----------
    path
        Where to write it; the file must not exist yet.
    sessions
        How many clean sessions to generate.
    schema
        ``"current"``: CHECK constraints and our ``status_history``; ``"legacy"``: an
        older NexusLIMS schema with no CHECK constraints and no history.
    defects
        How many extra sessions to plant per defect code (see :data:`DEFECTS`).
    seed
        Seed of the random generator: the same arguments write the same database.
    now
        The generated clock (timezone-aware); the current time by default.

    Returns
    -------
    FixtureInfo
        What was written, and which sessions carry which defect.

    Raises
    ------
    ValueError
        For a negative count, an unknown schema or defect, a defect the schema
        cannot hold, or an existing file.
    """
    defects = dict(defects or {})
    _check_arguments(sessions, schema, defects)
    target = Path(path)
    if target.exists():
        msg = f"{target} already exists: build_database writes a new file"
        raise ValueError(msg)
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    now = datetime.now(UTC) if now is None else now
    planted: dict[str, list[str]] = {code: [] for code in defects}
    generated = _generate(sessions, defects, planted, rng, now)
    rows = _write(target, schema, generated)
    total = sessions + sum(defects.values())
    return FixtureInfo(target, total, rows, planted)


def _generate(
    count: int,
    defects: dict[str, int],
    planted: dict[str, list[str]],
    rng: random.Random,
    now: datetime,
) -> Iterator[_Session]:
    for number in range(count):
        yield _clean_session(number, rng, now)
    number = 0
    for code, how_many in defects.items():
        events, age, plant = DEFECTS[code]
        for _ in range(how_many):
            session = _shaped(number, rng, now, events, age)
            plant(session)
            planted[code].append(session.sid)
            number += 1
            yield session


def _create_tables(path: Path, schema: Schema) -> None:
    """Create the tables: the store's own schema (one source of truth), or legacy DDL."""
    if schema == "legacy":
        with sqlite3.connect(path) as conn:
            conn.executescript(_LEGACY_DDL)
        return
    # Importing the store first raises MissingExtra (naming the 'sql' extra) without it.
    from nexuslims_lifecycle.store import _schema  # noqa: PLC0415 - needs the sql extra

    tables = _schema.METADATA
    import sqlalchemy as sa  # noqa: PLC0415 - present once the store imported

    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        tables.create_all(engine)
    finally:
        engine.dispose()


def _write(path: Path, schema: Schema, generated: Iterator[_Session]) -> int:
    _create_tables(path, schema)
    written = 0
    with sqlite3.connect(path) as conn:
        batch: list[_Session] = []
        for session in generated:
            batch.append(session)
            if len(batch) == _BATCH:
                written += _insert(conn, batch, history=schema == "current")
                batch = []
        written += _insert(conn, batch, history=schema == "current")
    return written


def _insert(conn: sqlite3.Connection, batch: list[_Session], *, history: bool) -> int:
    rows = []
    for session in batch:
        # Each instrument logs in its own zone (an index, not hash(): that varies per run).
        zone = _ZONES[_INSTRUMENTS.index(session.instrument) % len(_ZONES)]
        for row in session.rows:
            moment, event_type = row[0], row[1]
            status = session.status.value if row[2] is None else row[2]
            stamp = _stamp(moment, zone) if isinstance(moment, datetime) else moment
            rows.append((session.sid, session.instrument, stamp, event_type, status, session.user))
    conn.executemany(
        "INSERT INTO session_log (session_identifier, instrument, timestamp, event_type,"
        " record_status, user) VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    if history:
        entries = [
            (session.sid, seq, before, after, event, "fixtures", _stamp(moment, UTC))  # type: ignore[arg-type]
            for session in batch
            for seq, before, after, event, moment in session.history
        ]
        conn.executemany(
            "INSERT INTO status_history (session_identifier, seq, from_status, to_status,"
            " event, actor, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            entries,
        )
    return len(rows)
