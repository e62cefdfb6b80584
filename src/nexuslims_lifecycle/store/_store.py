""":class:`SessionLogStore`: NexusLIMS's session log with checked, atomic moves."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.pool import PoolProxiedConnection

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import StoreError, TransitionConflict
from nexuslims_lifecycle.rules import START_EVENT, parse_event, parse_status
from nexuslims_lifecycle.store import _moves, _postgres, _queue
from nexuslims_lifecycle.store._engine import WRITE, create_engine, to_url
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
_T = TypeVar("_T")
_RETRYABLE = frozenset({"40001", "40P01"})  # serialization failure, deadlock


class SessionLogStore:
    """A ``session_log`` database whose every status change is checked and atomic.

    Parameters
    ----------
    url
        A SQLAlchemy URL (``sqlite:///...``, ``postgresql://...``) or a plain file
        path, which means a SQLite file. Nothing is opened until first use.

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

    def __init__(self, url: str | Path | URL) -> None:
        self.url = to_url(url)
        self.engine = create_engine(self.url)
        self._own: PoolProxiedConnection | None = None  # see _advance_postgres
        self._own_pid = os.getpid()
        self._own_lock = threading.Lock()

    def __repr__(self) -> str:
        """Return the store's URL, password hidden."""
        return f"SessionLogStore({self._where!r})"

    @property
    def _where(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Close every pooled connection."""
        with self._own_lock:
            if self._own is not None and self._own_pid == os.getpid():
                self._own.close()
            self._own = None
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

    def _explain(self, error: sa.exc.DBAPIError) -> str:
        """Return a message for a database error that says what to do."""
        text = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        lowered = text.lower()
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

    @contextmanager
    def _write(self, move: _moves.Move | None = None) -> Iterator[sa.Connection]:
        """Open one write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
        with self._translated(move), self.engine.connect() as conn:
            conn.execution_options(**{WRITE: True})
            with conn.begin():
                yield conn

    def _on_postgres(self, run: Callable[[PoolProxiedConnection], _T]) -> _T:
        """Call ``run`` with the store's own PostgreSQL connection, else a pooled one.

        The store keeps one connection checked out for :mod:`._postgres`, which saves
        a pool checkout and checkin (and its reset) per call; a thread that finds it
        in use takes one from the pool. A connection that ``run`` invalidated is
        replaced next time, and one inherited across ``fork`` is left to the parent.
        """
        if not self._own_lock.acquire(blocking=False):
            pooled = self._checkout()
            try:
                return run(pooled)
            finally:
                pooled.close()
        try:
            own = self._own
            if own is None or not own.is_valid or self._own_pid != os.getpid():
                if own is not None and self._own_pid == os.getpid():
                    own.close()  # (invalidated: back to the pool, which reconnects it)
                own = self._own = self._checkout()
                self._own_pid = os.getpid()
            return run(own)
        finally:
            self._own_lock.release()

    def _checkout(self) -> PoolProxiedConnection:
        """Return a driver connection from the pool (``close()`` returns it).

        Raises
        ------
        sqlalchemy.exc.DBAPIError
            When no connection can be made; :meth:`_translated` explains it.
        """
        dbapi: Any = self.engine.dialect.loaded_dbapi
        try:
            return self.engine.raw_connection()
        except dbapi.Error as error:
            raise sa.exc.DBAPIError.instance(None, None, error, dbapi.Error) from error

    @contextmanager
    def _read(self, *, stream: bool = False) -> Iterator[sa.Connection]:
        """Open one read transaction (a single statement on PostgreSQL needs none)."""
        with self._translated(), self.engine.connect() as conn:
            if not stream and conn.dialect.name == "postgresql":
                conn.execution_options(isolation_level="AUTOCOMMIT")
            with conn.begin():
                yield conn

    def init(self) -> None:
        """Create the tables that are missing; never alter or delete existing ones.

        Pointed at an existing NexusLIMS database, this leaves its ``session_log``
        as it is and adds only ``status_history`` and ``build_claim``.

        Raises
        ------
        StoreError
            When the database cannot be opened, or its ``session_log`` lacks a column
            the store needs.
        """
        with self._write() as conn:
            METADATA.create_all(conn, checkfirst=True)
            found = {column["name"] for column in sa.inspect(conn).get_columns("session_log")}
        missing = [column.name for column in SESSION_LOG.columns if column.name not in found]
        if missing:
            msg = (
                f"the session_log table of {self._where} lacks column(s) "
                f"{', '.join(missing)}: it is not a NexusLIMS session log"
            )
            raise StoreError(msg, url=self._where)

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

    def advance(
        self,
        session_identifier: str,
        event: str,
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
            ``find_no_files`` before :data:`~nexuslims_lifecycle.rules.FILE_DELAY` has
            passed since the END row: the session stays TO_BE_BUILT.
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
        move = _moves.Move(sid, name, who, when, clock, hope)
        if self.url.get_backend_name() == "postgresql":
            with self._translated(move):
                return self._on_postgres(lambda pooled: _postgres.advance(pooled, move))
        with self._write(move) as conn:
            return _moves.advance(conn, move)

    def status(self, session_identifier: str) -> RecordStatus:
        """Return a session's record status.

        Raises
        ------
        UnknownSession
            When no row has this identifier.
        StoreError
            When its rows disagree, or hold a value that is not a RecordStatus.
        """
        if self.url.get_backend_name() == "postgresql":
            with self._translated():
                sid = session_identifier
                return self._on_postgres(lambda pooled: _postgres.read(pooled, sid)).status
        with self._read() as conn:
            return _moves.read_session(conn, session_identifier).status

    def history(self, session_identifier: str) -> list[HistoryEntry]:
        """Return a session's moves, oldest first (empty for one no move was recorded for).

        Raises
        ------
        UnknownSession
            When no row has this identifier.
        """
        with self._read() as conn:
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

        Raises
        ------
        UnknownStatus
            For a ``status`` that is not a RecordStatus.
        StoreError
            At a session whose rows disagree or hold an unknown status.
        """
        wanted = None if status is None else parse_status(status).value
        query = sa.select(
            _LOG.session_identifier,
            sa.func.min(_LOG.instrument).label("instrument"),
            sa.func.max(_LOG.user).label("user"),
            sa.func.min(_LOG.record_status).label("low"),
            sa.func.max(_LOG.record_status).label("high"),
            sa.func.min(_LOG.timestamp).label("started_at"),
        ).group_by(_LOG.session_identifier)
        if wanted is not None:
            query = query.having(sa.func.max(_LOG.record_status) == wanted)
        query = query.order_by(sa.func.min(_LOG.id_session_log))
        with self._read(stream=True) as conn:
            for row in conn.execution_options(yield_per=500).execute(query):
                found = _moves.agreed_status(row.session_identifier, {row.low, row.high})
                yield SessionInfo(
                    row.session_identifier, row.instrument, row.user, found, row.started_at
                )

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


def _entry(row: Any) -> HistoryEntry:
    """Return a history row as a HistoryEntry."""
    return HistoryEntry(
        row.session_identifier,
        row.seq,
        None if row.from_status is None else RecordStatus(row.from_status),
        RecordStatus(row.to_status),
        row.event,
        row.actor,
        row.at,
    )
