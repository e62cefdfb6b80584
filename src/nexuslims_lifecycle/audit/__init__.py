"""Audit a NexusLIMS ``session_log`` database against the lifecycle.

The audit reads, never writes: an SQLite file is opened read-only, a PostgreSQL
connection runs read-only transactions. Rows are streamed in session order, so
memory stays flat however large the table grows; each session is checked by the
rules in :data:`CODES`, our own ``status_history`` (when present) is replayed
through the lifecycle, and our own ``build_claim`` leases (when present) are checked
against the sessions they claim.

NexusLIMS's own ways of writing the table are normal, not findings: START and END
inserted together as TO_BE_BUILT, a session being built (its RECORD_GENERATION row
WAITING_FOR_END while its other rows are TO_BE_BUILT), a build row deleted again,
several build rows after retries and reprocessing, local offsets in timestamps.

Examples
--------
>>> import tempfile, pathlib
>>> from nexuslims_lifecycle.testing.fixtures import build_database
>>> path = pathlib.Path(tempfile.mkdtemp()) / "nexuslims.db"
>>> planted = build_database(path, sessions=50, defects={"duplicate-end": 1}, seed=1)
>>> report = audit(path)
>>> [(finding.code, finding.session_identifier in planted.sessions["duplicate-end"])
...  for finding in report.findings]
[('duplicate-end', True)]
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from nexuslims_lifecycle import config
from nexuslims_lifecycle.audit._checks import (
    CODES,
    Code,
    Finding,
    Limits,
    RawRow,
    Severity,
    check_session,
)
from nexuslims_lifecycle.audit._history import check_claims, check_history, judges_no_files
from nexuslims_lifecycle.errors import InvalidArgument, MissingExtra, UnusableDatabase

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "CODES",
    "DEFAULT_STALLED_AFTER",
    "DEFAULT_STUCK_AFTER",
    "AuditReport",
    "Code",
    "Finding",
    "Progress",
    "Severity",
    "audit",
    "count_rows",
]

DEFAULT_STUCK_AFTER: Final = timedelta(days=7)
"""How long a session may wait for its END before ``stuck-waiting`` reports it."""

DEFAULT_STALLED_AFTER: Final = timedelta(days=1)
"""How old a build row in progress may grow before ``stalled-build`` reports it.

A NexusLIMS build run keeps its sessions' build rows in progress for minutes (until
every session of the run is built and exported); a crashed run's row stays until the
next run builds the session again.
"""

_REQUIRED: Final = (
    "id_session_log",
    "session_identifier",
    "timestamp",
    "event_type",
    "record_status",
)
_HISTORY_COLUMNS: Final = (
    "id",
    "session_identifier",
    "seq",
    "from_status",
    "to_status",
    "event",
    "at",
)
_CLAIM_COLUMNS: Final = ("session_identifier", "worker", "claimed_at", "expires_at")
_RANK: Final[dict[str, int]] = {"warning": 1, "error": 2}
_BATCH: Final = 20_000

Progress = Callable[[int], object]
"""Told how many more ``session_log`` rows have been read."""


@dataclass(frozen=True)
class AuditReport:
    """What an audit found, and how much it read.

    Parameters
    ----------
    findings
        Every finding, in session order.
    rows
        ``session_log`` rows read.
    sessions
        Distinct sessions seen.
    history_entries
        ``status_history`` entries read (0 when the table does not exist).
    """

    findings: tuple[Finding, ...]
    rows: int
    sessions: int
    history_entries: int
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        """Count the findings by code."""
        object.__setattr__(self, "counts", dict(Counter(f.code for f in self.findings)))

    @property
    def clean(self) -> bool:
        """True when nothing at all was found."""
        return not self.findings

    def reaches(self, threshold: Severity) -> bool:
        """Return whether any finding is at least as severe as ``threshold``.

        Parameters
        ----------
        threshold
            ``"error"`` or ``"warning"``.

        Returns
        -------
        bool
            True when a finding reaches it.
        """
        return any(_RANK[f.severity] >= _RANK[threshold] for f in self.findings)

    def as_json(self) -> dict[str, Any]:
        """Return the report in the stable JSON shape (version 1) documented for ``audit --json``.

        Returns
        -------
        dict
            ``{"version", "rows", "sessions", "history_entries", "summary", "findings"}``.
        """
        severities = Counter(f.severity for f in self.findings)
        return {
            "version": 1,
            "rows": self.rows,
            "sessions": self.sessions,
            "history_entries": self.history_entries,
            "summary": {
                "error": severities["error"],
                "warning": severities["warning"],
                "by_code": dict(sorted(self.counts.items())),
            },
            "findings": [
                {
                    "code": f.code,
                    "severity": f.severity,
                    "session_identifier": f.session_identifier,
                    "row_ids": list(f.row_ids),
                    "message": f.message,
                }
                for f in self.findings
            ],
        }


def audit(
    url: str | Path,
    *,
    stuck_after: timedelta = DEFAULT_STUCK_AFTER,
    stalled_after: timedelta = DEFAULT_STALLED_AFTER,
    file_delay: timedelta | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> AuditReport:
    """Check every session of a ``session_log`` database against the lifecycle.

    Parameters
    ----------
    url
        A SQLAlchemy URL (``sqlite:///...``, ``postgresql+psycopg://...``) or a path
        to an SQLite file.
    stuck_after
        How long a session may wait for its END before it is reported.
    stalled_after
        How old a build row in progress (a RECORD_GENERATION row still
        WAITING_FOR_END) may grow before it is reported.
    file_delay
        How long after its END a session may be found to have no files; by default
        :func:`nexuslims_lifecycle.config.file_delay` (``NX_FILE_DELAY_DAYS``, else 2 days).
    now
        The audit's clock (timezone-aware); the current time by default.
    progress
        Called with the number of rows read since the last call, as the audit goes.

    Returns
    -------
    AuditReport
        The findings; :attr:`AuditReport.clean` when there are none.

    Raises
    ------
    UnusableDatabase
        When the database cannot be opened or read, or has no usable ``session_log``.
    InvalidArgument
        For a negative ``stuck_after`` or ``stalled_after``, a ``file_delay`` that is
        not positive, or a ``now`` without a UTC offset.
    InvalidConfiguration
        When ``file_delay`` is not given and ``NX_FILE_DELAY_DAYS`` is unusable.
    """
    limits = Limits(
        now=_aware_now(now),
        stuck_after=_span(stuck_after, "stuck_after", "a timedelta >= 0"),
        stalled_after=_span(stalled_after, "stalled_after", "a timedelta >= 0"),
        file_delay=(
            config.file_delay()
            if file_delay is None
            else _span(file_delay, "file_delay", "a timedelta > 0", positive=True)
        ),
    )
    sa = _sqlalchemy()
    engine = _read_only_engine(url)
    try:
        with engine.connect() as conn:
            history, claims = _check_tables(conn, _shown(url))
            if progress is not None:
                progress(0)
            return _run(conn, limits, history=history, claims=claims, progress=progress)
    except (sa.exc.SQLAlchemyError, engine.dialect.loaded_dbapi.Error) as error:
        raise UnusableDatabase(_shown(url), _first_line(error)) from error
    finally:
        engine.dispose()


def _aware_now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise InvalidArgument("now", now, "a timezone-aware datetime, e.g. datetime.now(UTC)")
    return now


def _span(value: object, name: str, expected: str, *, positive: bool = False) -> timedelta:
    if not isinstance(value, timedelta):
        raise InvalidArgument(name, value, expected)
    if value < timedelta(0) or (positive and value == timedelta(0)):
        raise InvalidArgument(name, value, expected)
    return value


def count_rows(url: str | Path) -> int:
    """Return how many rows ``session_log`` holds, for a progress bar's total.

    Parameters
    ----------
    url
        As for :func:`audit`.

    Returns
    -------
    int
        The row count.

    Raises
    ------
    UnusableDatabase
        As for :func:`audit`.
    """
    sa = _sqlalchemy()
    engine = _read_only_engine(url)
    try:
        with engine.connect() as conn:
            _check_tables(conn, _shown(url))
            query = sa.select(sa.func.count()).select_from(sa.table("session_log"))
            return int(conn.execute(query).scalar_one())
    except sa.exc.SQLAlchemyError as error:
        raise UnusableDatabase(_shown(url), _first_line(error)) from error
    finally:
        engine.dispose()


def _sqlalchemy() -> Any:
    """Import SQLAlchemy, or raise MissingExtra naming the ``sql`` extra."""
    try:
        import sqlalchemy  # noqa: PLC0415 - the sql extra is optional
    except ImportError as error:
        raise MissingExtra("sqlalchemy", "sql", "the audit") from error
    return sqlalchemy


def _shown(url: object) -> str:
    """Return ``url`` as it may be printed: any password is masked."""
    import sqlalchemy as sa  # noqa: PLC0415 - the sql extra is optional

    text = str(url)
    if "://" not in text:
        return text
    try:
        return sa.make_url(text).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return text


def _first_line(error: Exception) -> str:
    text = str(getattr(error, "orig", None) or error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def _read_only_engine(url: str | Path) -> sa.Engine:
    """Return an engine that cannot write: SQLite opened with mode=ro, PostgreSQL read-only."""
    import sqlalchemy as sa  # noqa: PLC0415 - the sql extra is optional

    text = str(url)
    if "://" not in text:
        return _sqlite_read_only(Path(text), text)
    try:
        parsed = sa.make_url(text)
    except sa.exc.ArgumentError as error:
        raise UnusableDatabase(text, f"not a database URL or path ({error})") from error
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise UnusableDatabase(text, "an in-memory SQLite database has nothing to audit")
        return _sqlite_read_only(Path(parsed.database), text)
    options = "-c default_transaction_read_only=on"
    try:
        return sa.create_engine(parsed, connect_args={"options": options, "connect_timeout": 10})
    except (sa.exc.ArgumentError, ImportError) as error:
        missing = None
        if isinstance(error, ImportError):
            missing = MissingExtra.of_sql_extra(error, "auditing a PostgreSQL database")
        raise missing or UnusableDatabase(_shown(text), str(error)) from error


def _sqlite_read_only(path: Path, shown: str) -> sa.Engine:
    import sqlalchemy as sa  # noqa: PLC0415 - the sql extra is optional

    if not path.is_file():
        raise UnusableDatabase(shown, f"no such file: {path}")
    uri = f"file:{path.resolve().as_posix()}?mode=ro"
    return sa.create_engine("sqlite+pysqlite://", creator=lambda: _connect_ro(uri))


def _connect_ro(uri: str) -> Any:
    import sqlite3  # noqa: PLC0415 - only for SQLite

    return sqlite3.connect(uri, uri=True, check_same_thread=False)


def _check_tables(conn: sa.Connection, shown: str) -> tuple[bool, bool]:
    """Raise unless the tables have the columns the audit reads; say if history and claims exist."""
    import sqlalchemy as sa  # noqa: PLC0415 - the sql extra is optional

    inspector = sa.inspect(conn)
    tables = set(inspector.get_table_names())
    if "session_log" not in tables:
        msg = "no session_log table: is this a NexusLIMS database?"
        raise UnusableDatabase(shown, msg)
    columns = {column["name"] for column in inspector.get_columns("session_log")}
    missing = [name for name in _REQUIRED if name not in columns]
    if missing:
        msg = f"session_log lacks column(s) {', '.join(missing)}"
        raise UnusableDatabase(shown, msg)
    ours = [("status_history", _HISTORY_COLUMNS), ("build_claim", _CLAIM_COLUMNS)]
    for table, required in ours:
        if table not in tables:
            continue
        columns = {column["name"] for column in inspector.get_columns(table)}
        missing = [name for name in required if name not in columns]
        if missing:
            msg = f"{table} lacks column(s) {', '.join(missing)}"
            raise UnusableDatabase(shown, msg)
    return "status_history" in tables, "build_claim" in tables


def _ordered(conn: sa.Connection, column: sa.ColumnClause[Any]) -> sa.ColumnElement[Any]:
    """Order by ``column`` byte-wise on every backend, as Python compares strings."""
    import sqlalchemy as sa  # noqa: PLC0415 - the sql extra is optional

    if conn.dialect.name == "postgresql":
        return sa.collate(column, "C")
    return column


def _stream_log(
    conn: sa.Connection, progress: Progress | None
) -> Iterator[tuple[str, list[RawRow]]]:
    import sqlalchemy as sa  # noqa: PLC0415 - the sql extra is optional

    sid: sa.ColumnClause[Any] = sa.column("session_identifier")
    query = (
        sa.select(
            sid,
            sa.column("id_session_log").label("id"),
            sa.column("timestamp"),
            sa.column("event_type"),
            sa.column("record_status"),
        )
        .select_from(sa.table("session_log"))
        .order_by(_ordered(conn, sid), sa.column("id_session_log"))
    )
    rows = _rows(conn, query, "nexuslims_audit_log")
    counted = _counting(rows, progress) if progress is not None else rows
    for key, group in itertools.groupby(counted, key=itemgetter(0)):
        yield key, list(group)


def _rows(conn: sa.Connection, query: sa.Select[Any], name: str) -> Iterator[RawRow]:
    """Stream the rows of ``query`` as plain tuples, in batches.

    The driver's own cursor is used (SQLAlchemy rows cost a quarter more here); on
    PostgreSQL it is a named, server-side cursor, so the table never sits in memory.
    """
    sql = str(query.compile(dialect=conn.dialect))
    raw = conn.connection.driver_connection
    server_side = conn.dialect.name == "postgresql"
    cursor = raw.cursor(name=name) if server_side else raw.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        while batch := cursor.fetchmany(_BATCH):
            yield from batch
    finally:
        cursor.close()


def _counting(rows: Iterator[RawRow], progress: Progress) -> Iterator[RawRow]:
    pending = 0
    for row in rows:
        pending += 1
        if pending == _BATCH:
            progress(pending)
            pending = 0
        yield row
    progress(pending)


def _stream_table(
    conn: sa.Connection, table: str, names: tuple[str, ...], then: str
) -> Iterator[tuple[str, list[RawRow]]]:
    """Stream ``table``'s ``names`` columns grouped by session, in session order, then ``then``."""
    import sqlalchemy as sa  # noqa: PLC0415 - the sql extra is optional

    sid: sa.ColumnClause[Any] = sa.column("session_identifier")
    query = (
        sa.select(sid, *(sa.column(name) for name in names))
        .select_from(sa.table(table))
        .order_by(_ordered(conn, sid), sa.column(then))
    )
    entries = _rows(conn, query, f"nexuslims_audit_{table}")
    for key, group in itertools.groupby(entries, key=itemgetter(0)):
        yield key, list(group)


def _stream_history(conn: sa.Connection) -> Iterator[tuple[str, list[RawRow]]]:
    names = ("id", "seq", "from_status", "to_status", "event", "at")
    return _stream_table(conn, "status_history", names, "seq")


def _stream_claims(conn: sa.Connection) -> Iterator[tuple[str, list[RawRow]]]:
    return _stream_table(conn, "build_claim", _CLAIM_COLUMNS[1:], "session_identifier")


class _Beside:
    """A stream of our own table's rows grouped by session, read beside ``session_log``.

    Both are in byte order of session_identifier, so they merge in one pass: ``key``
    is the next session this stream has rows of (None once it is exhausted).
    """

    def __init__(self, groups: Iterator[tuple[str, list[RawRow]]]) -> None:
        self._groups = groups
        self._pending = next(groups, None)
        self.key = None if self._pending is None else self._pending[0]
        self.read = 0

    def before(self, sid: str | None) -> Iterator[tuple[str, list[RawRow]]]:
        """Yield the groups of sessions before ``sid`` (every one left when ``sid`` is None)."""
        while self.key is not None and (sid is None or self.key < sid):
            yield self.key, self.take()

    def take(self) -> list[RawRow]:
        """Return the rows of session ``key`` and move on to the next session."""
        assert self._pending is not None  # noqa: S101 - callers check key
        taken = self._pending[1]
        self._pending = next(self._groups, None)
        self.key = None if self._pending is None else self._pending[0]
        self.read += len(taken)
        return taken


def _run(
    conn: sa.Connection,
    limits: Limits,
    *,
    history: bool,
    claims: bool,
    progress: Progress | None,
) -> AuditReport:
    findings: list[Finding] = []
    rows = sessions = 0
    entries = _Beside(_stream_history(conn) if history else iter(()))
    leases = _Beside(_stream_claims(conn) if claims else iter(()))
    delay, now = limits.file_delay, limits.now
    for sid, group in _stream_log(conn, progress):
        rows += len(group)
        sessions += 1
        held, claimed = entries.key, leases.key
        if (held is not None and held < sid) or (claimed is not None and claimed < sid):
            findings += _orphans(entries, leases, sid, limits)
            held, claimed = entries.key, leases.key
        found, status, ended, early = check_session(sid, group, limits)
        findings += found
        own = entries.take() if held == sid else []
        if early is not None and not judges_no_files(own):
            findings.append(early)
        if own:
            findings += check_history(sid, own, status, ended, delay)
        if claimed == sid:
            findings += check_claims(sid, leases.take(), status, rows=True, now=now)
    findings += _orphans(entries, leases, None, limits)
    return AuditReport(tuple(findings), rows, sessions, entries.read)


def _orphans(entries: _Beside, leases: _Beside, sid: str | None, limits: Limits) -> list[Finding]:
    """Report the history and claims of sessions before ``sid`` that have no session_log rows."""
    found = []
    for orphan, group in entries.before(sid):
        found += [
            *check_history(orphan, group, None),
            Finding(
                "history-mismatch",
                CODES["history-mismatch"].severity,
                orphan,
                tuple(entry[1] for entry in group[-1:]),
                "status_history has entries but session_log has no rows for this session",
            ),
        ]
    for orphan, group in leases.before(sid):
        found += check_claims(orphan, group, None, rows=False, now=limits.now)
    # In session order (a stable sort keeps each session's own order); code points
    # order as the UTF-8 bytes the database sorted by.
    return sorted(found, key=attrgetter("session_identifier"))
