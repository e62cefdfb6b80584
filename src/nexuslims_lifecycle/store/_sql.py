"""Every statement the store runs, built once at import and run with SQLAlchemy Core.

History is not among them: the lifecycle guard (:mod:`._guard`) writes it, for every
writer. The store tells the guard who moves and when (:data:`SET_CONTEXT`), then
makes the move with one compare-and-set (:data:`MOVE`): one row leaves the status
read, and the guard's trigger checks the move, records it and moves the session's
other rows. On PostgreSQL the context, the move, the row it adds and the end of the
build claim are one statement (:data:`PG_MOVE`), run in autocommit: one round trip,
no lock held while the client decides. Values are always bound parameters.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

from nexuslims_lifecycle.enums import EventType, RecordStatus
from nexuslims_lifecycle.store._guard import CONTEXT, GUARD_TABLE
from nexuslims_lifecycle.store._schema import BUILD_CLAIM, SESSION_LOG

__all__ = [
    "CLEAR_CONTEXT",
    "DELETE_CLAIM",
    "INSERT_ROW",
    "MOVE",
    "PG_MOVE",
    "PG_SET_CONTEXT",
    "SELECT_CLAIM",
    "SELECT_ROWS",
    "SELECT_ROWS_CLAIM",
    "SELECT_ROWS_LOCKED",
    "SET_CONTEXT",
    "SET_MARKER",
    "TOUCH_STATUS",
]

_LOG = SESSION_LOG.c
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


MOVE: Final = (
    SESSION_LOG.update()
    .where(
        _LOG.id_session_log
        == sa.select(sa.func.min(_LOG.id_session_log))
        .where(_LOG.session_identifier == _SID, _LOG.record_status == sa.bindparam("old"))
        .scalar_subquery()
    )
    .values(record_status=sa.bindparam("new"))
)
"""The compare-and-set of a move: the session's first row still in ``old`` goes to
``new`` (none: another writer moved it first); the guard moves the others. Parameters:
``sid``, ``old``, ``new``."""

SET_CONTEXT: Final = sa.text(
    f"INSERT OR REPLACE INTO {CONTEXT} (id, actor, at) VALUES (1, :actor, :at)"
)
"""SQLite: tell the guard who moves and when, for the rest of this transaction."""

CLEAR_CONTEXT: Final = sa.text(f"DELETE FROM {CONTEXT}")
"""SQLite: forget the context before the transaction commits."""

PG_SET_CONTEXT: Final = sa.text(
    "SELECT set_config('nexuslims_lifecycle.actor', coalesce(:actor, ''), true), "
    "set_config('nexuslims_lifecycle.at', :at, true), "
    f"set_config('nexuslims_lifecycle.rows', '', true) FROM {GUARD_TABLE}"
)
"""PostgreSQL: tell the guard who moves and when, for the rest of this transaction
(fails where the guard is not installed)."""

PG_MOVE: Final = sa.text(
    "WITH ctx AS (SELECT "
    "set_config('nexuslims_lifecycle.actor', coalesce(CAST(:actor AS text), ''), true), "
    "set_config('nexuslims_lifecycle.at', CAST(:at AS text), true), "
    f"set_config('nexuslims_lifecycle.rows', CAST(:rows AS text), true) FROM {GUARD_TABLE}), "
    "moved AS (UPDATE session_log SET record_status = CAST(:new AS text) FROM ctx "
    "WHERE id_session_log = (SELECT min(id_session_log) FROM session_log "
    "WHERE session_identifier = CAST(:sid AS text) AND record_status = CAST(:old AS text)) "
    "AND record_status = CAST(:old AS text) RETURNING 1), "
    "added AS (INSERT INTO session_log (session_identifier, instrument, timestamp, "
    'event_type, record_status, "user") SELECT CAST(:sid AS text), '
    "CAST(:instrument AS text), CAST(:at AS text), CAST(:kind AS text), CAST(:new AS text), "
    "CAST(:user AS text) FROM moved WHERE CAST(:kind AS text) IS NOT NULL RETURNING 1), "
    "released AS (DELETE FROM build_claim WHERE session_identifier = CAST(:sid AS text) "
    "AND CAST(:release AS boolean) AND EXISTS (SELECT FROM moved) RETURNING 1) "
    "SELECT (SELECT count(*) FROM moved) AS moved"
)
"""PostgreSQL: a whole move in one statement. The context (who, when, and how many
rows the session will have, so the guard refuses a move of a session that changed
since it was read: SQLSTATE 40001), the compare-and-set, the row it adds (``kind``:
END, RECORD_GENERATION or NULL) and the end of the build claim. Returns how many rows
the compare-and-set moved (0: another writer moved the session first)."""

SELECT_ROWS_CLAIM: Final = sa.text(
    'SELECT l.record_status, l.instrument, l."user", l.event_type, l.timestamp, '
    "c.worker, c.expires_at FROM session_log l LEFT JOIN build_claim c "
    "ON c.session_identifier = l.session_identifier "
    "WHERE l.session_identifier = :sid ORDER BY l.id_session_log"
)
"""PostgreSQL: a session's rows, oldest first, each with its build claim (if any), in
one statement. Parameters: ``sid``."""
