"""NexusLIMS's ``session_log`` with race-free transitions, a build queue and a full history.

Needs the ``sql`` extra (SQLAlchemy 2, psycopg 3). A plain file path means an
embedded SQLite file; ``postgresql://...`` serves many writers on many machines.

Examples
--------
>>> from nexuslims_lifecycle.store import SessionLogStore, retry_on_conflict
"""

from __future__ import annotations

from nexuslims_lifecycle.errors import MissingExtra

try:
    import sqlalchemy  # noqa: F401 - fail early with the extra to install
except ImportError as error:  # pragma: no cover - exercised in a subprocess
    raise MissingExtra("sqlalchemy", "sql", "the session log store") from error

from nexuslims_lifecycle.errors import (
    EmptySelection,
    FileDelayNotElapsed,
    SessionExists,
    StoreError,
    TransitionConflict,
    UnknownInstrument,
    UnknownSession,
)
from nexuslims_lifecycle.store._guard import GuardStatus
from nexuslims_lifecycle.store._reprocess import (
    REPROCESS_SKIP_REASONS,
    ReprocessMove,
    ReprocessReport,
    ReprocessSkip,
    reprocess,
)
from nexuslims_lifecycle.store._retry import retry_on_conflict
from nexuslims_lifecycle.store._store import SessionLogStore
from nexuslims_lifecycle.store._types import Claim, HistoryEntry, SessionInfo

__all__ = [
    "REPROCESS_SKIP_REASONS",
    "Claim",
    "EmptySelection",
    "FileDelayNotElapsed",
    "GuardStatus",
    "HistoryEntry",
    "ReprocessMove",
    "ReprocessReport",
    "ReprocessSkip",
    "SessionExists",
    "SessionInfo",
    "SessionLogStore",
    "StoreError",
    "TransitionConflict",
    "UnknownInstrument",
    "UnknownSession",
    "reprocess",
    "retry_on_conflict",
]
