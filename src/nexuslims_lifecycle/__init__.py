"""A state machine for NexusLIMS record statuses.

Drive a session's lifecycle in code, ask what is legal, and get a clear error for
what is not. See :mod:`nexuslims_lifecycle.rules` for the lifecycle itself.
"""

from __future__ import annotations

from nexuslims_lifecycle.enums import EventType, ExternalSystem, RecordStatus
from nexuslims_lifecycle.errors import (
    EmptySelection,
    FileDelayNotElapsed,
    IllegalTransition,
    InvalidArgument,
    InvalidConfiguration,
    InvalidDefinition,
    LifecycleError,
    MissingEndTime,
    MissingExtra,
    SessionExists,
    StoreError,
    TransitionConflict,
    UnknownEvent,
    UnknownFormat,
    UnknownInstrument,
    UnknownSession,
    UnknownStatus,
    UnusableDatabase,
)
from nexuslims_lifecycle.legality import (
    allowed_events,
    can,
    is_final,
    next_status,
    next_statuses,
    replay,
    shortest_path,
)
from nexuslims_lifecycle.machine import Session
from nexuslims_lifecycle.rules import EVENTS, LIFECYCLE

__version__ = "0.1.0"
"""This release's version; the packaging metadata reads it from here."""

__all__ = [
    "EVENTS",
    "LIFECYCLE",
    "EmptySelection",
    "EventType",
    "ExternalSystem",
    "FileDelayNotElapsed",
    "IllegalTransition",
    "InvalidArgument",
    "InvalidConfiguration",
    "InvalidDefinition",
    "LifecycleError",
    "MissingEndTime",
    "MissingExtra",
    "RecordStatus",
    "Session",
    "SessionExists",
    "StoreError",
    "TransitionConflict",
    "UnknownEvent",
    "UnknownFormat",
    "UnknownInstrument",
    "UnknownSession",
    "UnknownStatus",
    "UnusableDatabase",
    "__version__",
    "allowed_events",
    "can",
    "is_final",
    "next_status",
    "next_statuses",
    "replay",
    "shortest_path",
]
