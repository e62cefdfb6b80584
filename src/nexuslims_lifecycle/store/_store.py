""":class:`SessionLogStore`: NexusLIMS's session log with checked, atomic moves."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from nexuslims_lifecycle import config
from nexuslims_lifecycle._timestamps import read_stored
from nexuslims_lifecycle.enums import EventType, RecordStatus
from nexuslims_lifecycle.errors import (
    FileDelayNotElapsed,
    InvalidArgument,
    StoreError,
    TransitionConflict,
    UnusableDatabase,
)
from nexuslims_lifecycle.rules import START_EVENT, EventName, parse_event, parse_status
from nexuslims_lifecycle.store import _engine, _guard, _moves, _queue
from nexuslims_lifecycle.store._engine import WRITE, create_engine, to_url, use_wal
from nexuslims_lifecycle.store._guard import GuardStatus
from nexuslims_lifecycle.store._reprocess import ReprocessReport, reprocess
from nexuslims_lifecycle.store._schema import METADATA, SESSION_LOG, STATUS_HISTORY
from nexuslims_lifecycle.store._types import (
    Claim,
    HistoryEntry,
    SessionInfo,
    aware,
    identifier,
    lease_of,
)

__all__ = ["SessionLogStore"]

_LOG = SESSION_LOG.c
_HIST = STATUS_HISTORY.c
_RETRYABLE = frozenset({"40001", "40P01"})  # serialization failure (the guard's), deadlock
_GUARD_MISSING = (_guard.CONTEXT, _guard.GUARD_TABLE)


class SessionLogStore:
    """A ``session_log`` database whose every status change is checked and atomic.

    Parameters
    ----------
    url
        A SQLAlchemy URL (``sqlite:///...``, ``postgresql://...``) or a plain file
        path, which means a SQLite file. Nothing is opened until first use.
    file_delay
        How long after a session's END ``find_no_files`` must wait; by default
        NexusLIMS's ``NX_FILE_DELAY_DAYS`` (float days) when set, else 2 days
        (:func:`~nexuslims_lifecycle.config.file_delay`).

    Raises
    ------
    InvalidConfiguration
        When ``NX_FILE_DELAY_DAYS`` is set to something unusable.
    InvalidArgument
        For a ``file_delay`` that is not a positive timedelta.
    StoreError
        For a URL that is not SQLite or PostgreSQL.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from datetime import UTC, datetime
    >>> db = pathlib.Path(tempfile.mkdtemp()) / "nexuslims.db"
    >>> store = SessionLogStore(db)
    >>> store.init()
    >>> sid = "https://nemo.example.org/api/usage_events/?id=4711"
    >>> store.start(sid, instrument="FEI-Titan-TEM-635816", user="ada").value
    'WAITING_FOR_END'
    >>> store.advance(sid, "end").value
    'TO_BE_BUILT'
    >>> claim = store.claim_next("builder-1", lease=600)
    >>> store.advance(claim.session_identifier, "complete", actor=claim.worker).value
    'COMPLETED'
    >>> [entry.event for entry in store.history(sid)]
    ['start', 'end', 'complete']
    >>> store.close()
    """

    def __init__(self, url: str | Path | URL, *, file_delay: timedelta | None = None) -> None:
        self.file_delay = config.file_delay() if file_delay is None else file_delay
        if not isinstance(self.file_delay, timedelta) or self.file_delay <= timedelta(0):
            raise InvalidArgument("file_delay", file_delay, "a timedelta > 0, or None")
        self.url = to_url(url)
        self.engine = create_engine(self.url)
        self._moves_engine: sa.Engine | None = None  # PostgreSQL's autocommit moves

    def __repr__(self) -> str:
        """Return the store's URL, password hidden."""
        return f"SessionLogStore({self._where!r})"

    @property
    def _where(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> SessionLogStore:
        """Return the store itself."""
        return self

    def __exit__(self, *_exc: object) -> None:
        """Close the store."""
        self.close()

    @contextmanager
    def _translated(self, move: _moves.Move | None = None) -> Iterator[None]:
        """Turn driver errors into StoreError (or a conflict, for a lost lock race)."""
        try:
            yield
        except sa.exc.DBAPIError as error:
            state = getattr(error.orig, "sqlstate", None)
            if move is not None and state in _RETRYABLE:
                raise TransitionConflict(
                    move.session_identifier, move.event, expected=None, current=None
                ) from None
            raise StoreError(self._explain(error), url=self._where) from None

    def _explain(self, error: sa.exc.DBAPIError) -> str:  # noqa: PLR0911 - one per failure
        """Return a message for a database error that says what to do."""
        text = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        lowered = text.lower()
        if any(name in lowered for name in _GUARD_MISSING):
            return (
                f"{self._where} has no lifecycle guard ({text}): the store's moves need it; "
                "run `init` on it first (it adds our tables and the guard; "
                "`guard install` adds the guard alone)"
            )
        state = getattr(error.orig, "sqlstate", None)
        if state == "55P03":
            return (
                f"another writer held a lock of {self._where} for more than "
                f"{_engine.LOCK_TIMEOUT:g} s ({text}): nothing was written; try again, and "
                "look for a stalled writer"
            )
        if state == "57014":
            return (
                f"a statement on {self._where} ran for more than {_engine.STATEMENT_TIMEOUT:g} s "
                f"({text}): nothing was written"
            )
        if state == "23514" and "lifecycle guard" in lowered:
            return (
                f"the lifecycle guard of {self._where} refused the write ({text}); "
                "if the guard is outdated, run `nexuslims-lifecycle guard install` again"
            )
        if "readonly" in lowered or "read-only" in lowered:
            return (
                f"{self._where} cannot be written ({text}): give this user write access to "
                "the file and its directory; nothing was written"
            )
        if state == "42501":
            return (
                f"the role connected to {self._where} lacks a privilege ({text}): run this "
                "as the database's owner, or grant CREATE on the schema; nothing was written"
            )
        if "no such table" in lowered or ("does not exist" in lowered and "relation" in lowered):
            return f"{self._where} is not initialised ({text}): run `init` on it first"
        if "locked" in lowered:
            return f"{self._where} stayed locked by another writer for too long ({text})"
        if "too long" in lowered:
            return (
                f"a value does not fit a column of {self._where} ({text}): the existing "
                "schema is narrower than this value (e.g. session_identifier VARCHAR(36))"
            )
        return f"cannot use {self._where}: {text}"

    def _require_file(self) -> None:
        """Refuse a SQLite file that does not exist (only ``init`` creates one)."""
        if self.url.get_backend_name() != "sqlite":
            return
        path = str(self.url.database)
        if self.url.query.get("uri") == "true":  # sqlite:///file:PATH?mode=ro&uri=true
            path = path.removeprefix("file:")
        if Path(path).exists():
            return
        reason = "the file does not exist: check the path, or run `init` to create it"
        raise UnusableDatabase(self._where, reason)

    @contextmanager
    def _write(
        self, move: _moves.Move | None = None, *, create: bool = False
    ) -> Iterator[sa.Connection]:
        """Open one write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
        if not create:
            self._require_file()
        with self._translated(move), self.engine.connect() as conn:
            conn.execution_options(**{WRITE: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _autocommit(self, move: _moves.Move | None = None) -> Iterator[sa.Connection]:
        """Open a PostgreSQL connection in autocommit: each statement commits on its own."""
        if self._moves_engine is None:
            self._moves_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        with self._translated(move), self._moves_engine.connect() as conn:
            yield conn

    @contextmanager
    def _read(self, *, stream: bool = False) -> Iterator[sa.Connection]:
        """Open one read transaction (a single statement on PostgreSQL needs none)."""
        self._require_file()
        with self._translated(), self.engine.connect() as conn:
            if not stream and conn.dialect.name == "postgresql":
                conn.execution_options(isolation_level="AUTOCOMMIT")
            with conn.begin():
                yield conn

    def init(self, *, wal: bool = False, guard: bool = True) -> None:
        """Create the tables that are missing and install the lifecycle guard.

        Pointed at an existing NexusLIMS database, this leaves its ``session_log``
        as it is and adds only ``status_history``, ``build_claim`` and the guard
        (:meth:`install_guard`), in one transaction. A SQLite file keeps its journal
        mode (NexusLIMS's is ``delete``) unless ``wal``.

        Parameters
        ----------
        guard
            Install (or replace) the lifecycle guard, which the store's writes need;
            False leaves the database without it (install it later with
            :meth:`install_guard`).
        wal
            Switch a SQLite file to WAL for good, so readers never block the writer:
            for a file the store alone (or many builders) write. Not for a file that
            NexusLIMS backs up by copying it (``nexuslims db upgrade``), since WAL
            keeps recent writes in a ``-wal`` file beside it.

        Raises
        ------
        StoreError
            When the database cannot be opened, or its ``session_log`` lacks a column
            the store needs.
        InvalidArgument
            For ``wal`` on PostgreSQL, which has no such mode.
        """
        if wal and self.url.get_backend_name() != "sqlite":
            raise InvalidArgument("wal", wal, "False: WAL is a mode of SQLite files only")
        if wal:
            with self._translated():
                use_wal(self.engine)
        with self._write(create=True) as conn:
            METADATA.create_all(conn, checkfirst=True)
            self._check_columns(conn)
            if guard:
                _guard.install(conn, datetime.now().astimezone())

    def _check_columns(self, conn: sa.Connection) -> None:
        """Refuse a ``session_log`` without a column the store and the guard need."""
        if not sa.inspect(conn).has_table("session_log"):
            reason = (
                "it has no session_log table: it is not a NexusLIMS database "
                "(create one with `nexuslims db init`, or run `nexuslims-lifecycle init`)"
            )
            raise UnusableDatabase(self._where, reason)
        found = {column["name"] for column in sa.inspect(conn).get_columns("session_log")}
        missing = [column.name for column in SESSION_LOG.columns if column.name not in found]
        if missing:
            reason = (
                f"its session_log table lacks column(s) {', '.join(missing)}: it is not a "
                "NexusLIMS session log"
            )
            raise UnusableDatabase(self._where, reason)

    def install_guard(self) -> None:
        """Install the lifecycle guard, or replace an older one, in one transaction.

        Creates ``status_history`` and ``build_claim`` if they are missing; leaves
        every row as it is. Installing the current guard again replaces it.

        Raises
        ------
        StoreError
            When the database has no ``session_log``, cannot be written (a read-only
            file), or the role may not create functions or triggers (PostgreSQL):
            nothing is installed.
        """
        with self._write() as conn:
            self._check_columns(conn)
            _guard.install(conn, datetime.now().astimezone())

    def guard_status(self) -> GuardStatus:
        """Return whether the database holds the lifecycle guard, and which (reads only)."""
        with self._read() as conn:
            return _guard.guard_status(conn)

    def remove_guard(self) -> bool:
        """Remove the lifecycle guard (its tables of history stay); return whether one was there.

        Without it nothing checks or records the moves of other writers, and the
        store's own moves are refused until it is installed again.
        """
        with self._write() as conn:
            return _guard.remove(conn)

    def start(
        self,
        session_identifier: str,
        *,
        instrument: str,
        user: str | None = None,
        at: datetime | None = None,
    ) -> RecordStatus:
        """Start a session: write its START row, WAITING_FOR_END.

        Parameters
        ----------
        session_identifier
            The new session's identifier (NEMO usage event URLs are fine).
        instrument
            The instrument's identifier.
        user
            The user's name, if known.
        at
            When it started (timezone-aware); now by default.

        Returns
        -------
        RecordStatus
            WAITING_FOR_END.

        Raises
        ------
        SessionExists
            When a session with this identifier already has rows; nothing is written.
        UnknownInstrument
            When the database has NexusLIMS's ``instruments`` table and it does not
            list ``instrument``; nothing is written.
        InvalidArgument
            For an empty identifier or instrument, or a naive ``at``.
        """
        sid = str(identifier(session_identifier, "session_identifier"))
        where = str(identifier(instrument, "instrument"))
        who = identifier(user, "user", optional=True)
        when = aware(at, "at")
        move = _moves.Move(sid, START_EVENT, who, when, when, None)
        with self._write() as conn:
            return _moves.start(conn, move, where, who)

    def record_usage(
        self,
        session_identifier: str,
        started: datetime,
        ended: datetime,
        *,
        instrument: str,
        user: str | None = None,
        actor: str | None = None,
    ) -> RecordStatus:
        """Record a usage event that has already ended, as NexusLIMS's NEMO harvester does.

        Writes the START and END rows, both TO_BE_BUILT, and the history entries
        ``start`` and ``end``, in one transaction: the session enters the lifecycle
        ready to be built.

        Parameters
        ----------
        session_identifier
            The new session's identifier (for NEMO, the usage event's URL).
        started, ended
            When the usage event began and ended (timezone-aware; NexusLIMS keeps the
            offset NEMO sent).
        instrument
            The instrument's identifier.
        user
            The user's name (NEMO's username), if known.
        actor
            Who recorded the END (e.g. ``"harvester"``), for the history.

        Returns
        -------
        RecordStatus
            TO_BE_BUILT.

        Raises
        ------
        SessionExists
            When a session with this identifier already has rows; nothing is written.
        UnknownInstrument
            When NexusLIMS's ``instruments`` table does not list ``instrument``.
        InvalidArgument
            For an empty identifier or instrument, a naive time, or ``ended`` before
            ``started``.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> from datetime import datetime, timedelta, timezone
        >>> db = pathlib.Path(tempfile.mkdtemp()) / "nexuslims.db"
        >>> store = SessionLogStore(db)
        >>> store.init()
        >>> began = datetime(2026, 11, 30, 9, 0, tzinfo=timezone(timedelta(hours=-7)))
        >>> sid = "https://nemo.example.org/api/usage_events/?id=77"
        >>> store.record_usage(sid, began, began + timedelta(hours=3), instrument="FEI-Titan")
        <RecordStatus.TO_BE_BUILT: 'TO_BE_BUILT'>
        >>> [(entry.event, entry.to_status.value) for entry in store.history(sid)]
        [('start', 'WAITING_FOR_END'), ('end', 'TO_BE_BUILT')]
        >>> store.close()
        """
        sid = str(identifier(session_identifier, "session_identifier"))
        where = str(identifier(instrument, "instrument"))
        who = identifier(user, "user", optional=True)
        recorder = identifier(actor, "actor", optional=True)
        began, finished = _given(started, "started"), _given(ended, "ended")
        if finished < began:
            raise InvalidArgument("ended", ended, f"a time at or after started ({began})")
        opening = _moves.Move(sid, START_EVENT, who, began, began, None)
        closing = _moves.Move(sid, "end", recorder, finished, finished, None)
        with self._write(closing) as conn:
            _moves.start(conn, opening, where, who)
            return _moves.advance(conn, closing)

    def advance(
        self,
        session_identifier: str,
        event: EventName,
        *,
        actor: str | None = None,
        at: datetime | None = None,
        now: datetime | None = None,
        expected: RecordStatus | str | None = None,
    ) -> RecordStatus:
        """Move a session by ``event`` in one checked, compare-and-set transaction.

        Every row of the session moves from the status read to the new one only if it
        still holds the status read; ``end`` adds the END row, a build outcome adds a
        RECORD_GENERATION row (unless the actor's claim already wrote it), and one
        history entry is appended. Anything that fails writes nothing.

        Parameters
        ----------
        session_identifier
            The session.
        event
            A lifecycle event, e.g. ``"end"``, ``"complete"``, ``"retry"``.
        actor
            Who moves it (a builder passes its worker name, which must hold any live claim).
        at
            The time recorded on the new rows (timezone-aware); now by default.
        now
            The clock for the ``find_no_files`` file delay and claim expiry: ``at`` when
            that is given (a move recorded later is judged at its own time), else now.
        expected
            The status the caller read before deciding; if the session has moved on
            since, the move is a conflict rather than a decision made on stale data.

        Returns
        -------
        RecordStatus
            The new status.

        Raises
        ------
        TransitionConflict
            Another writer moved the session first, it is not in ``expected``, or another
            worker holds its build claim. ``.current`` is the status now.
        FileDelayNotElapsed
            ``find_no_files`` before the store's ``file_delay`` has passed since the
            END row: the session stays TO_BE_BUILT. If ``actor`` held the session's
            build claim, the claim ends and its RECORD_GENERATION row is deleted, as
            NexusLIMS's builder deletes its own: the attempt leaves no trace.
        IllegalTransition
            The lifecycle does not allow ``event`` from the session's status.
        UnknownSession, UnknownEvent, UnknownStatus, InvalidArgument, StoreError
            Bad input, or rows the lifecycle cannot read.
        """
        sid = str(identifier(session_identifier, "session_identifier"))
        name = parse_event(event)
        hope = None if expected is None else parse_status(expected)
        when = aware(at, "at")
        clock = when if now is None and at is not None else aware(now, "now")
        who = identifier(actor, "actor", optional=True)
        move = _moves.Move(sid, name, who, when, clock, hope, self.file_delay)
        try:
            if self.url.get_backend_name() == "postgresql":
                with self._autocommit(move) as conn:
                    return _moves.advance_autocommit(conn, move)
            with self._write(move) as conn:
                return _moves.advance(conn, move)
        except FileDelayNotElapsed:
            if who is not None:
                with self._write() as conn:
                    _queue.abandon(conn, sid, who)
            raise

    def status(self, session_identifier: str) -> RecordStatus:
        """Return a session's record status.

        Raises
        ------
        UnknownSession
            When no row has this identifier.
        StoreError
            When its rows disagree, or hold a value that is not a RecordStatus.
        """
        with self._read() as conn:
            return _moves.read_session(conn, session_identifier).status

    def history(self, session_identifier: str) -> list[HistoryEntry]:
        """Return a session's moves, oldest first (empty for one no move was recorded for).

        A database that was never ``init``-ed (NexusLIMS's own) has no history: empty.

        Raises
        ------
        UnknownSession
            When no row has this identifier.
        StoreError
            When an entry's ``at`` is not ISO 8601 (a row edited by hand).
        """
        with self._read() as conn:
            rows: Sequence[Any] = ()
            if sa.inspect(conn).has_table(STATUS_HISTORY.name):  # NexusLIMS's own file: none
                rows = conn.execute(
                    sa.select(STATUS_HISTORY)
                    .where(_HIST.session_identifier == session_identifier)
                    .order_by(_HIST.seq)
                ).all()
            if not rows:
                _moves.read_session(conn, session_identifier)
        return [_entry(row) for row in rows]

    def sessions(self, status: RecordStatus | str | None = None) -> Iterator[SessionInfo]:
        """Yield every session (or those in ``status``), oldest first, streamed.

        A session being built (see :class:`SessionInfo`) is TO_BE_BUILT. A session
        whose rows disagree is listed with status None and the problem, never skipped
        and never an error: finding and repairing it is the audit's job. Asked for
        one ``status``, only sessions whose rows agree on it are listed.

        Raises
        ------
        UnknownStatus
            For a ``status`` that is not a RecordStatus.
        """
        wanted = None if status is None else parse_status(status).value
        query = _SESSIONS
        if wanted is not None:
            query = query.having(sa.func.max(_SETTLED) == wanted)
        with self._read(stream=True) as conn:
            for row in conn.execution_options(yield_per=500).execute(query):
                info = _session_info(row)
                if wanted is None or info.status is not None:
                    yield info

    def claim_next(
        self, worker: str, *, lease: timedelta | float, now: datetime | None = None
    ) -> Claim | None:
        """Hand the oldest unclaimed TO_BE_BUILT session to ``worker``, atomically.

        No two workers get the same session while a lease is live; a lease that ran
        out (a crashed builder) is taken over. The claim writes the RECORD_GENERATION
        row by which NexusLIMS marks a build attempt, still TO_BE_BUILT.

        Parameters
        ----------
        worker
            The builder's name; pass it as ``actor`` with the build's outcome.
        lease
            How long the claim holds (a timedelta or seconds), e.g. the longest build.
        now
            The clock; now by default.

        Returns
        -------
        Claim or None
            The claim, or None when nothing is waiting to be built.

        Raises
        ------
        InvalidArgument
            For an empty worker, a lease <= 0 or a naive ``now``.
        """
        who = str(identifier(worker, "worker"))
        span = lease_of(lease)
        clock = aware(now, "now")
        while True:
            try:
                return _queue.claim_next(self._write, who, span, clock)
            except TransitionConflict:  # pragma: no cover - a PostgreSQL deadlock victim
                continue

    def reprocess(
        self,
        *,
        started_from: date | datetime | str | None = None,
        started_to: date | datetime | str | None = None,
        statuses: Iterable[RecordStatus | str] = (),
        sessions: Iterable[str] = (),
        dry_run: bool = False,
        actor: str = "operator",
    ) -> ReprocessReport:
        """Requeue whole sessions for another build: :func:`~nexuslims_lifecycle.store.reprocess`.

        Parameters and errors are those of :func:`~nexuslims_lifecycle.store.reprocess`,
        with this store as ``store``.
        """
        return reprocess(
            self,
            started_from=started_from,
            started_to=started_to,
            statuses=statuses,
            sessions=sessions,
            dry_run=dry_run,
            actor=actor,
        )


_START = EventType.START.value


def _of_start(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """Return ``column`` on the START row, NULL on the others (for an aggregate)."""
    return sa.case((_LOG.event_type == _START, column))


_IS_BUILD = sa.and_(
    _LOG.event_type == EventType.RECORD_GENERATION.value,
    _LOG.record_status == RecordStatus.WAITING_FOR_END.value,
)
_SETTLED = sa.case((~_IS_BUILD, _LOG.record_status))
_SESSIONS = (
    sa.select(
        _LOG.session_identifier,
        sa.func.coalesce(
            sa.func.min(_of_start(_LOG.instrument)), sa.func.min(_LOG.instrument)
        ).label("instrument"),
        sa.func.min(_of_start(_LOG.user)).label("user"),
        sa.func.min(_SETTLED).label("low"),
        sa.func.max(_SETTLED).label("high"),
        sa.func.sum(sa.case((_IS_BUILD, 1), else_=0)).label("building"),
        sa.func.coalesce(sa.func.min(_of_start(_LOG.timestamp)), sa.func.min(_LOG.timestamp)).label(
            "started_at"
        ),
    )
    .group_by(_LOG.session_identifier)
    .order_by(sa.func.min(_LOG.id_session_log))
)
"""Every session, one row each: the columns of :class:`SessionInfo`, oldest first."""


def _session_info(row: Any) -> SessionInfo:
    """Return one row of :data:`_SESSIONS` as a SessionInfo (status None if rows disagree)."""
    sid = row.session_identifier
    started = read_stored(row.started_at)
    settled = {value for value in (row.low, row.high) if value is not None}
    try:
        status, building = _moves.session_status(sid, settled, int(row.building))
    except StoreError as error:
        return SessionInfo(sid, row.instrument, row.user, None, started, problem=str(error))
    return SessionInfo(sid, row.instrument, row.user, status, started, building)


def _given(moment: object, name: str) -> datetime:
    """Return a required timezone-aware datetime argument, or raise InvalidArgument."""
    if not isinstance(moment, datetime):
        raise InvalidArgument(name, moment, "a timezone-aware datetime")
    return aware(moment, name)


def _entry(row: Any) -> HistoryEntry:
    """Return a history row as a HistoryEntry."""
    return HistoryEntry(
        row.session_identifier,
        row.seq,
        None if row.from_status is None else RecordStatus(row.from_status),
        RecordStatus(row.to_status),
        row.event,
        row.actor,
        _history_time(row.at),
    )


def _history_time(value: object) -> datetime:
    """Return a ``status_history.at`` value as a datetime (the guard writes ISO 8601)."""
    moment = read_stored(value)
    if moment is None:
        msg = f"status_history has an 'at' of {value!r}, which is not ISO 8601: fix the row"
        raise StoreError(msg)
    return moment
