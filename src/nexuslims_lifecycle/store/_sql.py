"""Every statement the store runs through SQLAlchemy, built once at import.

(PostgreSQL's moves and status reads run :mod:`._postgres`'s own prepared statements.)

Each statement is compiled once per dialect by SQLAlchemy and then run by
:func:`run` straight on the driver's cursor, inside the transaction SQLAlchemy
opened: a move then costs the database's time plus tens of microseconds of Python,
not SQLAlchemy's per-execution overhead (about 5x more). Values are always bound
parameters; driver errors are re-raised as SQLAlchemy's exceptions.
"""

from __future__ import annotations

from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.sql.expression import ClauseElement

from nexuslims_lifecycle.enums import EventType, RecordStatus
from nexuslims_lifecycle.store._schema import BUILD_CLAIM, SESSION_LOG, STATUS_HISTORY

__all__ = [
    "DELETE_CLAIM",
    "INSERT_HISTORY",
    "INSERT_ROW",
    "SELECT_CLAIM",
    "SELECT_ROWS",
    "SELECT_ROWS_LOCKED",
    "SET_MARKER",
    "TOUCH_STATUS",
    "UPDATE_STATUS",
    "run",
]

_LOG = SESSION_LOG.c
_HIST = STATUS_HISTORY.c
_CLAIM = BUILD_CLAIM.c
_SID = sa.bindparam("sid", type_=sa.String)

SELECT_ROWS: Final = (
    sa.select(_LOG.record_status, _LOG.instrument, _LOG.user, _LOG.event_type, _LOG.timestamp)
    .where(_LOG.session_identifier == _SID)
    .order_by(_LOG.id_session_log)
)
"""A session's rows, oldest first. Parameters: ``sid``."""

SELECT_ROWS_LOCKED: Final = SELECT_ROWS.with_for_update()
"""The same, locking the rows in id order (PostgreSQL; SQLite ignores it)."""

_HELD: Final = sa.or_(
    _LOG.record_status == sa.bindparam("old", type_=sa.String),
    sa.and_(
        sa.bindparam("building", type_=sa.Boolean),
        _LOG.event_type == sa.literal_column(f"'{EventType.RECORD_GENERATION.value}'"),
        _LOG.record_status == sa.literal_column(f"'{RecordStatus.WAITING_FOR_END.value}'"),
    ),
)
# A row holds the status read: ``old``, or, for a session being built, its build row
# in progress (RECORD_GENERATION still WAITING_FOR_END), which moves with the rest.

UPDATE_STATUS: Final = (
    SESSION_LOG.update()
    .where(_LOG.session_identifier == _SID, _HELD)
    .values(record_status=sa.bindparam("new"))
)
"""Compare-and-set of every row of a session, build rows in progress included when
``building``. Parameters: ``sid``, ``old``, ``building``, ``new``."""

TOUCH_STATUS: Final = (
    SESSION_LOG.update()
    .where(_LOG.session_identifier == _SID, _HELD)
    .values(record_status=_LOG.record_status)
)
"""Lock and count the rows that hold the status read, changing nothing (the build
queue's re-assertion). Parameters: ``sid``, ``old``, ``building``."""

INSERT_ROW: Final = (
    SESSION_LOG.insert()
    .values(
        {
            name: sa.bindparam(name, type_=sa.String)
            for name in (
                "session_identifier",
                "instrument",
                "timestamp",
                "event_type",
                "record_status",
                "user",
            )
        }
    )
    .returning(_LOG.id_session_log)
)
"""One session_log row, returning its id; parameters are its columns."""

_NEXT_SEQ = (
    sa.select(
        sa.func.coalesce(sa.func.max(_HIST.seq), sa.literal_column("0")) + sa.literal_column("1")
    )
    .where(_HIST.session_identifier == _SID)
    .scalar_subquery()
)

_ALL_AGREE = ~sa.exists().where(
    _LOG.session_identifier == _SID, _LOG.record_status != sa.bindparam("to_status")
)

INSERT_HISTORY: Final = (
    STATUS_HISTORY.insert()
    .from_select(
        ["session_identifier", "seq", "from_status", "to_status", "event", "actor", "at"],
        sa.select(
            _SID,
            _NEXT_SEQ,
            sa.bindparam("from_status", type_=sa.String),
            sa.bindparam("to_status", type_=sa.String),
            sa.bindparam("event", type_=sa.String),
            sa.bindparam("actor", type_=sa.String),
            sa.bindparam("at", type_=sa.String),
        ).where(_ALL_AGREE),
    )
    .returning(STATUS_HISTORY.c.seq)
)
"""The session's next history entry, numbered in the same statement, written only if
every row of the session holds ``to_status`` (else nothing: another writer's row
arrived since the move was read). Parameters: ``sid``, the entry's columns."""

SELECT_CLAIM: Final = sa.select(_CLAIM.worker, _CLAIM.expires_at).where(
    _CLAIM.session_identifier == _SID
)
"""A session's build claim, if any. Parameters: ``sid``."""

DELETE_CLAIM: Final = BUILD_CLAIM.delete().where(_CLAIM.session_identifier == _SID)
"""Release a session's build claim. Parameters: ``sid``."""

SET_MARKER: Final = (
    BUILD_CLAIM.update()
    .where(_CLAIM.session_identifier == _SID)
    .values(marker_id=sa.bindparam("marker"))
)
"""Record the claim's RECORD_GENERATION row. Parameters: ``sid``, ``marker``."""


_COMPILED: dict[tuple[int, str], tuple[str, tuple[str, ...] | None]] = {}


def _compiled(statement: ClauseElement, dialect: sa.Dialect) -> tuple[str, tuple[str, ...] | None]:
    """Return the SQL of ``statement`` for ``dialect`` and its positional parameter order."""
    key = (id(statement), dialect.name)
    found = _COMPILED.get(key)
    if found is None:
        compiled = statement.compile(dialect=dialect)
        positional = dialect.paramstyle in ("qmark", "numeric", "format")
        order = tuple(getattr(compiled, "positiontup", None) or ()) if positional else None
        found = _COMPILED[key] = (compiled.string, order)
    return found


def run(conn: sa.Connection, statement: ClauseElement, params: dict[str, Any]) -> Any:
    """Execute one of this module's statements on the driver cursor; return the cursor.

    Parameters
    ----------
    conn
        A connection inside a transaction opened by SQLAlchemy.
    statement
        One of the statements above.
    params
        Its parameters by name.

    Returns
    -------
    DBAPI cursor
        For ``fetchall()``, ``fetchone()`` and ``rowcount``.
    """
    sql, order = _compiled(statement, conn.dialect)
    values: Any = params if order is None else tuple(params[name] for name in order)
    raw: Any = conn.connection.dbapi_connection
    cursor = raw.cursor()
    dbapi: Any = conn.dialect.loaded_dbapi
    try:
        cursor.execute(sql, values)
    except dbapi.Error as error:
        raise sa.exc.DBAPIError.instance(sql, values, error, dbapi.Error) from error
    return cursor
