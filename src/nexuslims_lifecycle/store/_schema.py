"""The tables: NexusLIMS's ``session_log`` and our own ``status_history`` and ``build_claim``.

``session_log`` has the columns, CHECK constraint names and index NexusLIMS uses; its
CHECK constraints are generated from :mod:`nexuslims_lifecycle.enums` so they cannot
drift. In schemas we create, ``session_identifier`` is long enough for NEMO's usage
event URLs (NexusLIMS's own schema says VARCHAR(36), which SQLite does not enforce).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import sqlalchemy as sa

from nexuslims_lifecycle.enums import EventType, RecordStatus
from nexuslims_lifecycle.rules import EVENTS, START_EVENT

__all__ = ["BUILD_CLAIM", "METADATA", "SESSION_LOG", "STATUS_HISTORY"]

_IDENTIFIER: Final = 255
_STATUS: Final = 32


def _one_of(column: str, values: Iterable[str], *, nullable: bool = False) -> str:
    """Return the SQL of a CHECK that ``column`` holds one of ``values``."""
    quoted = ", ".join("'" + value.replace("'", "''") + "'" for value in values)
    check = f"{column} IN ({quoted})"
    return f"{column} IS NULL OR {check}" if nullable else check


_STATUSES: Final = [status.value for status in RecordStatus]

METADATA: Final = sa.MetaData()
"""Every table the store knows."""

SESSION_LOG: Final = sa.Table(
    "session_log",
    METADATA,
    sa.Column("id_session_log", sa.Integer, primary_key=True),
    sa.Column("session_identifier", sa.String(_IDENTIFIER), nullable=False, index=True),
    sa.Column("instrument", sa.String(100), nullable=False),
    sa.Column("timestamp", sa.String(64), nullable=False),
    sa.Column("event_type", sa.String(_STATUS), nullable=False),
    sa.Column(
        "record_status",
        sa.String(_STATUS),
        nullable=False,
        server_default=RecordStatus.WAITING_FOR_END.value,
    ),
    sa.Column("user", sa.String(_IDENTIFIER), nullable=True),
    sa.CheckConstraint(_one_of("event_type", [e.value for e in EventType]), "check_event_type"),
    sa.CheckConstraint(_one_of("record_status", _STATUSES), "check_record_status"),
)
"""NexusLIMS's session log: one row per START, END and RECORD_GENERATION event."""

STATUS_HISTORY: Final = sa.Table(
    "status_history",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("session_identifier", sa.String(_IDENTIFIER), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("from_status", sa.String(_STATUS), nullable=True),
    sa.Column("to_status", sa.String(_STATUS), nullable=False),
    sa.Column("event", sa.String(_STATUS), nullable=False),
    sa.Column("actor", sa.String(_IDENTIFIER), nullable=True),
    sa.Column("at", sa.String(64), nullable=False),
    sa.UniqueConstraint("session_identifier", "seq", name="uq_status_history_session_seq"),
    sa.CheckConstraint(
        _one_of("from_status", _STATUSES, nullable=True), "check_history_from_status"
    ),
    sa.CheckConstraint(_one_of("to_status", _STATUSES), "check_history_to_status"),
    sa.CheckConstraint(_one_of("event", [START_EVENT, *EVENTS]), "check_history_event"),
)
"""Append-only: one entry per move, numbered 1, 2, ... within each session."""

BUILD_CLAIM: Final = sa.Table(
    "build_claim",
    METADATA,
    sa.Column("session_identifier", sa.String(_IDENTIFIER), primary_key=True),
    sa.Column("worker", sa.String(_IDENTIFIER), nullable=False),
    sa.Column("claimed_at", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.String(64), nullable=False),
    sa.Column("marker_id", sa.Integer, nullable=True),
)
"""The build queue's leases: who builds which TO_BE_BUILT session, until when."""
