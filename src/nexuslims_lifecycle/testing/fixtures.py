"""Generate NexusLIMS-shaped ``session_log`` databases, clean or with planted defects.

For testing tools that read NexusLIMS databases (our own audit first): realistic
sessions with NEMO usage-event identifiers, several instruments, and every row shape
NexusLIMS 2.8 writes, each session a legal history of the lifecycle:

- most sessions enter as NEMO's harvester writes them, START and END together as
  TO_BE_BUILT once the usage event has ended (a few were revised in NEMO after the
  harvest: their END moved later); others were opened by our store's ``start()`` and
  ended by ``end()``, and a few are still running (WAITING_FOR_END);
- the builder's attempts leave a RECORD_GENERATION row each (user ``nexuslims``, the
  builder's local time with microseconds); an attempt that finds no files before the
  file delay has passed leaves none (NexusLIMS deletes it), so a move the file-delay
  guard holds (``find_no_files``) only ever comes after END + the file delay, in
  clean and planted sessions alike (``early-no-files`` moves it early on purpose); a
  crashed attempt's row waits for the next attempt's outcome; operators retry and
  reprocess; the exporter completes records built but not exported;
- some sessions are being built right now (a recent RECORD_GENERATION row still
  WAITING_FOR_END, sometimes under a live claim of our store's build queue);
- START and END timestamps carry the instrument's UTC offset, with microseconds for
  some sessions.

With the current schema our ``status_history`` (as our store writes it: a harvested
session gets its ``start`` and ``end`` entries together) and ``build_claim`` are
written too. On request, sessions with one chosen defect each are added, named by the
audit code that should find it.

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

from nexuslims_lifecycle import config
from nexuslims_lifecycle.enums import EventType, RecordStatus
from nexuslims_lifecycle.legality import next_status
from nexuslims_lifecycle.rules import (
    FILE_DELAY_GUARD,
    LIFECYCLE,
    START_EVENT,
    file_delay_elapsed,
    parse_event,
)

__all__ = ["DEFECTS", "LEGACY_ONLY", "FixtureInfo", "Planter", "Schema", "build_database"]

Schema = Literal["current", "legacy"]
"""Which schema to write: ``current`` (CHECK constraints, history, claims) or ``legacy``."""

_S = RecordStatus
_INSTRUMENTS: Final = (
    "FEI-Titan-TEM-635816",
    "FEI-Titan-STEM-630901",
    "JEOL-JEM3010-TEM-565989",
    "FEI-Quanta200-ESEM-633137",
    "Hitachi-S4700-SEM-606559",
)
_USERS: Final = ("ada", "grace", "rosalind", "marie", "dorothy", "chien-shiung")
_BUILDER: Final = "nexuslims"  # the user of NexusLIMS's RECORD_GENERATION rows
_ZONES: Final = (
    UTC,
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=-7)),
    timezone(timedelta(hours=1)),
)
_BUILDER_ZONE: Final = timezone(timedelta(hours=-7))  # the builder's host, like the interop run
# Weighted: most builds complete.
_OUTCOME_EVENTS: Final = (
    *("complete",) * 3,
    "fail_export",
    "fail",
    "find_no_files",
    "deny_consent",
    "find_no_reservation",
)
_DELAYED: Final = LIFECYCLE.guarded_by(FILE_DELAY_GUARD)
"""The events that wait for the file delay after the END (``find_no_files``)."""
_OPERATOR_MOVE: Final = {
    source: rule.event
    for rule in LIFECYCLE.rules
    if rule.by == "operator"
    for source in rule.sources
}
_EXPORTER_MOVE: Final = {
    source: rule.event
    for rule in LIFECYCLE.rules
    if rule.by == "exporter"
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
    """One generated session: its rows, history and build claim before they are written."""

    sid: str
    instrument: str
    user: str
    status: RecordStatus
    rows: list[list[object]] = field(default_factory=list)  # [timestamp, event_type, status]
    history: list[list[object]] = field(default_factory=list)  # [seq, from, to, event, at]
    claim: tuple[str, datetime, datetime] | None = None  # worker, claimed_at, expires_at
    precise: bool = False  # START/END timestamps keep their microseconds


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


def _stamp(moment: datetime, zone: timezone, *, precise: bool = True) -> str:
    return moment.astimezone(zone).isoformat(timespec="microseconds" if precise else "seconds")


@dataclass(frozen=True)
class _Clock:
    """What every generated session is measured against."""

    now: datetime
    file_delay: timedelta


def _walk(session: _Session, rng: random.Random, clock: _Clock) -> None:
    """Give ``session`` a random legal history ending before ``clock.now``."""
    roll = rng.random()
    if roll < 0.06:  # opened by the store's start(); the usage event is still running
        _move(session, START_EVENT, clock.now - timedelta(hours=rng.uniform(1, 48)))
        return
    days = rng.uniform(0.4, 4) if roll < 0.25 else rng.uniform(4, 365)
    began = clock.now - timedelta(days=days)
    ended = began + timedelta(hours=rng.uniform(0.5, 8))
    if roll < 0.35:  # the store's start() when it began, end() when it ended
        _move(session, START_EVENT, began)
        _move(session, "end", ended)
        moment = ended
    else:
        moment = ended + timedelta(minutes=rng.uniform(1, 30))  # the harvester's next run
        _harvest(session, began, ended, moment)
        if rng.random() < 0.05 and moment + timedelta(hours=2) < clock.now:
            # revised in NEMO after the harvest: the END row moves later, in place
            ended += timedelta(minutes=rng.uniform(5, 90))
            session.rows[1][0] = ended
            moment = ended + timedelta(minutes=rng.uniform(1, 30))
    _build(session, rng, clock, moment, ended)


def _harvest(session: _Session, began: datetime, ended: datetime, moment: datetime) -> None:
    """Log an ended usage event as NEMO's harvester does: START and END rows, TO_BE_BUILT."""
    session.rows += [[began, EventType.START.value, None], [ended, EventType.END.value, None]]
    session.history += [
        [1, None, _S.WAITING_FOR_END.value, START_EVENT, moment],
        [2, _S.WAITING_FOR_END.value, _S.TO_BE_BUILT.value, "end", moment],
    ]
    session.status = _S.TO_BE_BUILT


def _build(
    session: _Session, rng: random.Random, clock: _Clock, moment: datetime, ended: datetime
) -> None:
    """Run builder attempts (and the moves between them) on a TO_BE_BUILT session.

    ``moment`` is when it became TO_BE_BUILT, ``ended`` its END time.
    """
    for attempt in range(rng.choice((1, 1, 1, 1, 2, 2, 3))):
        if attempt:  # an operator requeues the outcome, or the exporter completes it
            requeued = moment + timedelta(hours=rng.uniform(1, 120))
            if requeued >= clock.now:
                break
            moment = requeued
            _move(session, _after(session.status, rng), moment)
            if session.status is not _S.TO_BE_BUILT:
                continue
        decided = moment + timedelta(hours=rng.uniform(0.1, 24), seconds=rng.randrange(60))
        outcome = rng.choice(_OUTCOME_EVENTS)
        if outcome in _DELAYED:  # earlier attempts found no files and left no row
            ready = ended + clock.file_delay + timedelta(minutes=rng.uniform(1, 360))
            decided = max(decided, ready)
        if decided >= clock.now:  # the builder has not come to it yet (or found no files)
            break
        if rng.random() < 0.05:  # a run crashed mid-build: its row waits for this outcome
            crashed = moment + (decided - moment) * rng.uniform(0.1, 0.9)
            session.rows.append([crashed, EventType.RECORD_GENERATION.value, None])
        moment = decided
        _move(session, outcome, moment)
    if session.status is _S.TO_BE_BUILT and rng.random() < 0.3:
        _being_built(session, rng, clock, moment)


def _after(status: RecordStatus, rng: random.Random) -> str:
    """Return the move out of a build outcome: the exporter's (sometimes) or an operator's."""
    if status in _EXPORTER_MOVE and rng.random() < 0.5:
        return _EXPORTER_MOVE[status]
    return _OPERATOR_MOVE[status]


def _being_built(session: _Session, rng: random.Random, clock: _Clock, since: datetime) -> None:
    """Start a build now: a RECORD_GENERATION row WAITING_FOR_END, maybe under our claim.

    ``since`` (when the session became TO_BE_BUILT) is before ``clock.now``.
    """
    ago = min(timedelta(hours=2), clock.now - since) * rng.random()
    started = clock.now - ago
    session.rows.append([started, EventType.RECORD_GENERATION.value, _S.WAITING_FOR_END.value])
    if rng.random() < 0.4:  # taken by our store's build queue: a live lease
        lease = clock.now + timedelta(minutes=rng.uniform(10, 60))
        session.claim = (f"builder-{rng.randrange(1, 5)}", started, lease)


def _move(session: _Session, event: str, moment: datetime) -> None:
    """Apply ``event`` (or the session's START) as our store would log it."""
    before = None if event == START_EVENT else session.status
    session.status = (
        _S.WAITING_FOR_END if before is None else next_status(before, parse_event(event))
    )
    if event == START_EVENT:
        kind: EventType | None = EventType.START
    elif event == "end":
        kind = EventType.END
    elif before is _S.TO_BE_BUILT:  # a build's outcome: the attempt's row
        kind = EventType.RECORD_GENERATION
    else:  # an operator's or the exporter's move adds no row
        kind = None
    if kind is not None:
        session.rows.append([moment, kind.value, None])
    seq = len(session.history) + 1
    session.history.append([seq, before and before.value, session.status.value, event, moment])


def _clean_session(number: int, rng: random.Random, clock: _Clock) -> _Session:
    session = _Session(
        f"https://nemo.example.org/api/usage_events/?id={100_000 + number}",
        rng.choice(_INSTRUMENTS),
        rng.choice(_USERS),
        _S.WAITING_FOR_END,
        precise=rng.random() < 0.3,
    )
    _walk(session, rng, clock)
    return session


def _shaped(
    number: int, rng: random.Random, clock: _Clock, events: tuple[str, ...], age: timedelta
) -> _Session:
    """Make a session with exactly ``events`` after its START, ``age`` before ``clock.now``.

    Events come two hours apart, except that a file-delay-guarded one waits until the
    delay has passed since the END, as the guard requires.
    """
    session = _Session(
        f"https://nemo.example.org/api/usage_events/?id={900_000 + number}",
        rng.choice(_INSTRUMENTS),
        rng.choice(_USERS),
        _S.WAITING_FOR_END,
    )
    moment = clock.now - age
    ended = None
    _move(session, START_EVENT, moment)
    for event in events:
        moment += timedelta(hours=2)
        if (
            event in _DELAYED
            and ended is not None
            and not file_delay_elapsed(ended, moment, clock.file_delay)
        ):
            moment = ended + clock.file_delay + timedelta(hours=1)
        _move(session, event, moment)
        if event == "end":
            ended = moment
    return session


Planter = Callable[[_Session, timedelta], None]
"""A change to a generated session that plants one defect; it is given the file delay."""


def _set_row(index: int, column: int, value: object) -> Planter:
    def plant(session: _Session, _delay: timedelta) -> None:
        session.rows[index][column] = value

    return plant


def _append_row(event_type: str, status: str | None, shift: timedelta) -> Planter:
    def plant(session: _Session, _delay: timedelta) -> None:
        moment = session.rows[-1][0]
        assert isinstance(moment, datetime)  # noqa: S101 - our own rows
        session.rows.append([moment + shift, event_type, status])

    return plant


def _drop_rows(event_type: str) -> Planter:
    def plant(session: _Session, _delay: timedelta) -> None:
        session.rows = [row for row in session.rows if row[1] != event_type]

    return plant


def _drop_history(seq: int) -> Planter:
    def plant(session: _Session, _delay: timedelta) -> None:
        session.history = [entry for entry in session.history if entry[0] != seq]

    return plant


def _set_history(seq: int, column: int, value: object) -> Planter:
    def plant(session: _Session, _delay: timedelta) -> None:
        session.history[seq - 1][column] = value

    return plant


def _all_rows_status(value: str) -> Planter:
    def plant(session: _Session, _delay: timedelta) -> None:
        for row in session.rows:
            row[2] = value

    return plant


def _left_claim(lease: timedelta) -> Planter:
    """Leave a build claim, taken before the session's last build and long expired."""

    def plant(session: _Session, _delay: timedelta) -> None:
        moment = session.rows[-1][0]
        assert isinstance(moment, datetime)  # noqa: S101 - our own rows
        claimed = moment - 3 * lease
        session.claim = ("builder-9", claimed, claimed + lease)

    return plant


def _no_files_early(session: _Session, delay: timedelta) -> None:
    """Move the no-files decision (its build row and history entry) to mid-delay after the END.

    :func:`_shaped` made it after the delay, as the guard requires; half the delay after
    the END is too early whatever the delay is.
    """
    ended = next(row[0] for row in session.rows if row[1] == EventType.END.value)
    assert isinstance(ended, datetime)  # noqa: S101 - our own rows
    early = ended + delay / 2
    session.rows[-1][0] = early
    session.history[-1][4] = early


def _as_is(_session: _Session, _delay: timedelta) -> None:
    """Plant nothing: the session's shape alone is the defect."""


_DONE: Final = ("end", "complete")
_DAY: Final = timedelta(days=1)
# code -> (events after START, age at START, the change that plants the defect)
DEFECTS: Final[dict[str, tuple[tuple[str, ...], timedelta, Planter]]] = {
    "invalid-status": (_DONE, 30 * _DAY, _set_row(1, 2, "BUILDING")),
    "invalid-event-type": (_DONE, 30 * _DAY, _append_row("NOTE", None, timedelta(minutes=5))),
    "invalid-timestamp": (_DONE, 30 * _DAY, _set_row(0, 0, "last tuesday")),
    "mixed-status": (_DONE, 30 * _DAY, _set_row(0, 2, "TO_BE_BUILT")),
    "stalled-build": (
        ("end",),
        30 * _DAY,
        _append_row("RECORD_GENERATION", "WAITING_FOR_END", _DAY),  # a build crashed 29 days ago
    ),
    "missing-start": (_DONE, 30 * _DAY, _drop_rows("START")),
    "duplicate-start": (_DONE, 30 * _DAY, _append_row("START", None, timedelta(minutes=1))),
    "duplicate-end": (_DONE, 30 * _DAY, _append_row("END", None, timedelta(hours=1))),
    "end-before-start": (_DONE, 30 * _DAY, _set_row(1, 0, datetime(2000, 1, 1, tzinfo=UTC))),
    "status-without-end": (("end",), 30 * _DAY, _drop_rows("END")),
    "end-while-waiting": ((), timedelta(hours=3), _append_row("END", None, timedelta(hours=1))),
    "build-before-end": (
        (),
        timedelta(hours=3),
        _append_row("RECORD_GENERATION", "WAITING_FOR_END", timedelta(hours=1)),
    ),
    "outcome-without-build": (_DONE, 30 * _DAY, _drop_rows("RECORD_GENERATION")),
    # found to have no files half the file delay after its END, before the delay had passed
    "early-no-files": (("end", "find_no_files"), 30 * _DAY, _no_files_early),
    "stuck-waiting": ((), 30 * _DAY, _as_is),  # its age alone is the defect
    "illegal-history": (_DONE, 30 * _DAY, _set_history(3, 3, "fail_export")),
    "history-gap": (_DONE, 30 * _DAY, _drop_history(2)),
    "history-mismatch": (_DONE, 30 * _DAY, _all_rows_status("ERROR")),
    "stale-claim": (_DONE, 30 * _DAY, _left_claim(timedelta(minutes=10))),
}
"""Every defect :func:`build_database` can plant, by the audit code that finds it."""

LEGACY_ONLY: Final = frozenset({"invalid-status", "invalid-event-type"})
"""Defects the current schema's CHECK constraints forbid: plant them in ``schema="legacy"``."""
# Defects in our own tables, which the legacy schema lacks: code -> table.
_CURRENT_ONLY: Final = {
    "illegal-history": "status_history",
    "history-gap": "status_history",
    "history-mismatch": "status_history",
    "stale-claim": "build_claim",
}


def _check_arguments(
    sessions: int, schema: str, defects: dict[str, int], file_delay: object
) -> None:
    if not isinstance(file_delay, timedelta) or file_delay <= timedelta(0):
        msg = f"file_delay must be a timedelta > 0, got {file_delay!r}"
        raise ValueError(msg)
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
        if code in _CURRENT_ONLY and schema == "legacy":
            msg = f"defect {code!r} needs {_CURRENT_ONLY[code]}, which the legacy schema lacks"
            raise ValueError(msg)


def build_database(
    path: str | Path,
    *,
    sessions: int,
    schema: Schema = "current",
    defects: dict[str, int] | None = None,
    seed: int = 0,
    now: datetime | None = None,
    file_delay: timedelta | None = None,
) -> FixtureInfo:
    """Write a new NexusLIMS-shaped SQLite database of random legal sessions.

    Parameters
    ----------
    path
        Where to write it; the file must not exist yet.
    sessions
        How many clean sessions to generate.
    schema
        ``"current"``: CHECK constraints, our ``status_history`` and ``build_claim``;
        ``"legacy"``: an older NexusLIMS schema with no CHECK constraints and neither
        of our tables.
    defects
        How many extra sessions to plant per defect code (see :data:`DEFECTS`).
    seed
        Seed of the random generator: the same arguments write the same database.
    now
        The generated clock (timezone-aware); the current time by default.
    file_delay
        How long after a session's END its builder may find no files; by default
        :func:`nexuslims_lifecycle.config.file_delay`, as the audit's.

    Returns
    -------
    FixtureInfo
        What was written, and which sessions carry which defect.

    Raises
    ------
    ValueError
        For a negative count, an unknown schema or defect, a defect the schema
        cannot hold, a file delay that is not positive, or an existing file.
    InvalidConfiguration
        When ``file_delay`` is not given and ``NX_FILE_DELAY_DAYS`` is unusable.
    """
    defects = dict(defects or {})
    delay = config.file_delay() if file_delay is None else file_delay
    _check_arguments(sessions, schema, defects, delay)
    target = Path(path)
    if target.exists():
        msg = f"{target} already exists: build_database writes a new file"
        raise ValueError(msg)
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    now = datetime.now(UTC) if now is None else now
    planted: dict[str, list[str]] = {code: [] for code in defects}
    generated = _generate(sessions, defects, planted, rng, _Clock(now, delay))
    rows = _write(target, schema, generated)
    total = sessions + sum(defects.values())
    return FixtureInfo(target, total, rows, planted)


def _generate(
    count: int,
    defects: dict[str, int],
    planted: dict[str, list[str]],
    rng: random.Random,
    clock: _Clock,
) -> Iterator[_Session]:
    for number in range(count):
        yield _clean_session(number, rng, clock)
    number = 0
    for code, how_many in defects.items():
        events, age, plant = DEFECTS[code]
        for _ in range(how_many):
            session = _shaped(number, rng, clock, events, age)
            plant(session, clock.file_delay)
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
                written += _insert(conn, batch, ours=schema == "current")
                batch = []
        written += _insert(conn, batch, ours=schema == "current")
    return written


def _log_rows(session: _Session) -> Iterator[tuple[object, ...]]:
    """Return the session's session_log rows as NexusLIMS's writers stamp them."""
    # Each instrument logs in its own zone (an index, not hash(): that varies per run).
    zone = _ZONES[_INSTRUMENTS.index(session.instrument) % len(_ZONES)]
    for moment, event_type, own in session.rows:
        builder = event_type == EventType.RECORD_GENERATION.value  # its own clock and user
        user = _BUILDER if builder else session.user
        stamp = moment  # a planted defect's text as it is
        if isinstance(moment, datetime):
            own_zone = _BUILDER_ZONE if builder else zone
            stamp = _stamp(moment, own_zone, precise=builder or session.precise)
        status = session.status.value if own is None else own
        yield (session.sid, session.instrument, stamp, event_type, status, user)


def _insert(conn: sqlite3.Connection, batch: list[_Session], *, ours: bool) -> int:
    rows = [row for session in batch for row in _log_rows(session)]
    conn.executemany(
        "INSERT INTO session_log (session_identifier, instrument, timestamp, event_type,"
        " record_status, user) VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    if ours:
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
        claims = [
            (session.sid, worker, _stamp(claimed, UTC), _stamp(expires, UTC))
            for session in batch
            if session.claim is not None
            for worker, claimed, expires in [session.claim]
        ]
        conn.executemany(
            "INSERT INTO build_claim (session_identifier, worker, claimed_at, expires_at)"
            " VALUES (?, ?, ?, ?)",
            claims,
        )
    return len(rows)
