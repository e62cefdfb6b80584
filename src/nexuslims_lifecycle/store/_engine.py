"""Engines for the store: an embedded SQLite file done right, or PostgreSQL via psycopg 3.

SQLite: every connection waits up to :data:`BUSY_TIMEOUT` for the write lock instead
of failing, and opens write transactions with ``BEGIN IMMEDIATE`` so two writers never
both read and then both try to upgrade (the upgrade is what ends in "database is
locked"). The file's journal mode is left as it is: NexusLIMS keeps its database in
``journal_mode=delete``, and its backup before a migration copies the file alone, so
switching to WAL (persistent, and readers' writes land in a ``-wal`` file) is only
done when asked (:func:`use_wal`, ``init(wal=True)``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url

from nexuslims_lifecycle.errors import MissingExtra, StoreError, UnusableDatabase

__all__ = [
    "BUSY_TIMEOUT",
    "IDLE_TIMEOUT",
    "LOCK_TIMEOUT",
    "STATEMENT_TIMEOUT",
    "WRITE",
    "create_engine",
    "to_url",
    "use_wal",
]

BUSY_TIMEOUT: Final = 60.0
"""Seconds a SQLite writer waits for the write lock before giving up."""

LOCK_TIMEOUT: Final = 10.0
"""Seconds a PostgreSQL statement of the store waits for a lock (``lock_timeout``):
a stalled writer holding a session's rows cannot block the store's moves for longer."""

STATEMENT_TIMEOUT: Final = 60.0
"""Seconds a PostgreSQL statement of the store may run (``statement_timeout``)."""

IDLE_TIMEOUT: Final = 60.0
"""Seconds a PostgreSQL transaction of the store may sit idle holding its locks
(``idle_in_transaction_session_timeout``): the server ends it after that."""

WRITE: Final = "nexuslims_lifecycle_write"
"""Execution option that marks a connection's transactions as writes."""

_DRIVERS: Final = {"sqlite": "sqlite+pysqlite", "postgresql": "postgresql+psycopg"}


def to_url(url: str | Path | URL) -> URL:
    """Return the SQLAlchemy URL for a URL string, a URL, or a plain file path (SQLite).

    Parameters
    ----------
    url
        ``sqlite:///...``, ``postgresql://...`` (psycopg 3 is used), or a file path.

    Returns
    -------
    sqlalchemy.engine.URL
        The URL, with the driver filled in.

    Raises
    ------
    UnusableDatabase
        For a URL that is not SQLite or PostgreSQL, or cannot be parsed.
    """
    if isinstance(url, Path) or (isinstance(url, str) and "://" not in url):
        path = Path(url).expanduser()
        if not str(url).strip():
            reason = "empty database path: give a file path (SQLite) or a SQLAlchemy URL"
            raise UnusableDatabase(str(url), reason)
        return URL.create("sqlite+pysqlite", database=str(path.absolute()))
    try:
        parsed = make_url(url)
    except (sa.exc.ArgumentError, ValueError) as error:
        reason = f"cannot parse database URL {url!r}: {error}; expected e.g. sqlite:///x.db"
        raise UnusableDatabase("(unparsable URL)", reason) from None
    backend = parsed.get_backend_name()
    if backend not in _DRIVERS:
        shown = parsed.render_as_string(hide_password=True)
        reason = (
            f"unsupported database {shown!r}: expected a SQLite file (path or "
            "sqlite:///...) or postgresql://..."
        )
        raise UnusableDatabase(shown, reason)
    if "+" not in parsed.drivername:
        parsed = parsed.set(drivername=_DRIVERS[backend])
    return parsed


def create_engine(url: URL) -> Engine:
    """Return an engine for ``url`` set up for many concurrent writers.

    Parameters
    ----------
    url
        What :func:`to_url` returned.

    Returns
    -------
    sqlalchemy.engine.Engine
        The engine.
    """
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    options = " ".join(
        f"-c {name}={int(seconds * 1000)}"
        for name, seconds in (
            ("lock_timeout", LOCK_TIMEOUT),
            ("statement_timeout", STATEMENT_TIMEOUT),
            ("idle_in_transaction_session_timeout", IDLE_TIMEOUT),
        )
    )
    try:
        return sa.create_engine(url, connect_args={"options": options})
    except ImportError as error:
        missing = MissingExtra.of_sql_extra(error, "a PostgreSQL session log")
        if missing is None:
            raise
        raise missing from error


def _sqlite_engine(url: URL) -> Engine:
    """Return a SQLite engine with WAL, a busy timeout and ``BEGIN IMMEDIATE`` writes."""
    if url.database in (None, "", ":memory:"):
        reason = "an in-memory SQLite database cannot be shared; give a file path"
        raise UnusableDatabase(url.render_as_string(hide_password=True), reason)
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: object) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN, not the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        # Reading the mode writes nothing; NORMAL is durable enough only under WAL.
        if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        raw: Any = connection.connection.dbapi_connection
        if connection.get_execution_options().get(WRITE, False):
            _begin_immediate(raw)
        else:
            raw.execute("BEGIN")

    return engine


def use_wal(engine: Engine) -> None:
    """Switch a SQLite file to WAL for good: readers then never block the writer.

    Runs outside any transaction (SQLite cannot change the mode inside one).

    Raises
    ------
    StoreError
        When SQLite refuses (a file system without shared memory, say).
    """
    raw: Any = engine.raw_connection()
    try:
        mode = str(raw.driver_connection.execute("PRAGMA journal_mode = WAL").fetchone()[0])
    except sqlite3.Error as error:
        statement = "PRAGMA journal_mode = WAL"
        raise sa.exc.DBAPIError.instance(statement, (), error, sqlite3.Error) from error
    finally:
        raw.close()
    if mode != "wal":
        msg = f"SQLite kept journal_mode={mode} instead of WAL (a network file system?)"
        raise StoreError(msg)


def _begin_immediate(raw: Any) -> None:
    """Take SQLite's write lock, waiting up to the busy timeout as SQLite's own handler does.

    A lock still held by another writer after :data:`BUSY_TIMEOUT` is raised as
    SQLAlchemy's error, which the store turns into a
    :class:`~nexuslims_lifecycle.errors.StoreError`.
    """
    try:
        raw.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as error:
        raise sa.exc.DBAPIError.instance("BEGIN IMMEDIATE", (), error, sqlite3.Error) from error
