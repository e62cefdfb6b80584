"""Every statement the store runs, built once at import.

A statement built once keeps its compiled form and cache key, so executing it costs
a dictionary lookup instead of rebuilding the expression: this is most of what keeps
a move at a few hundred microseconds of Python. Values are always bound parameters.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

from nexuslims_lifecycle.store._schema import BUILD_CLAIM, SESSION_LOG, STATUS_HISTORY

__all__ = [
    "DELETE_CLAIM",
    "INSERT_HISTORY",
    "INSERT_ROW",
    "SELECT_CLAIM",
    "SELECT_ROWS",
    "SELECT_ROWS_LOCKED",
    "SET_MARKER",
    "UPDATE_STATUS",
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

UPDATE_STATUS: Final = (
    SESSION_LOG.update()
    .where(_LOG.session_identifier == _SID, _LOG.record_status == sa.bindparam("old"))
    .values(record_status=sa.bindparam("new"))
)
"""Compare-and-set of every row of a session. Parameters: ``sid``, ``old``, ``new``."""

INSERT_ROW: Final = SESSION_LOG.insert()
"""One session_log row; parameters are its columns."""

_NEXT_SEQ = (
    sa.select(sa.func.coalesce(sa.func.max(_HIST.seq), 0) + 1)
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
