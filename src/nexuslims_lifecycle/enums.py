"""The enumerations of NexusLIMS's session log, mirrored exactly.

These are the same members, values and docstrings as ``nexusLIMS.db.enums``, so
code written against NexusLIMS can switch to them (or compare with them) without
translation. Each member also carries its one-line meaning as ``.description``.

Examples
--------
>>> from nexuslims_lifecycle.enums import RecordStatus
>>> RecordStatus("TO_BE_BUILT") is RecordStatus.TO_BE_BUILT
True
>>> RecordStatus.ERROR.description
'record building failed with an error'
"""

from __future__ import annotations

from enum import Enum

__all__ = ["EventType", "ExternalSystem", "RecordStatus"]


class EventType(str, Enum):
    """Allowed event types for session logs.

    Maps to the CHECK constraint in session_log.event_type column.
    """

    START = "START"
    END = "END"
    RECORD_GENERATION = "RECORD_GENERATION"

    @property
    def description(self) -> str:
        """Return the one-line meaning of this event type."""
        return _EVENT_TYPE_MEANINGS[self.value]


class RecordStatus(str, Enum):
    """Allowed record status values for session logs.

    Maps to the CHECK constraint in session_log.record_status column.

    Attributes
    ----------
    WAITING_FOR_END
        Session has started but not yet ended
    TO_BE_BUILT
        Session has ended and needs record generation
    COMPLETED
        Record has been successfully built and uploaded
    BUILT_NOT_EXPORTED
        Record was built successfully but all export destinations failed
    ERROR
        Record building failed with an error
    NO_FILES_FOUND
        No files were found for this session
    NO_CONSENT
        User did not consent to data harvesting
    NO_RESERVATION
        No matching reservation found for this session
    """

    WAITING_FOR_END = "WAITING_FOR_END"
    TO_BE_BUILT = "TO_BE_BUILT"
    COMPLETED = "COMPLETED"
    BUILT_NOT_EXPORTED = "BUILT_NOT_EXPORTED"
    ERROR = "ERROR"
    NO_FILES_FOUND = "NO_FILES_FOUND"
    NO_CONSENT = "NO_CONSENT"
    NO_RESERVATION = "NO_RESERVATION"

    @property
    def description(self) -> str:
        """Return the one-line meaning of this status, as NexusLIMS documents it."""
        return _STATUS_MEANINGS[self.value]


class ExternalSystem(str, Enum):
    """External systems that NexusLIMS integrates with.

    Maps to the CHECK constraint in external_user_identifiers.external_system column.

    Attributes
    ----------
    NEMO
        NEMO lab management system (usage tracking and reservations)
    LABARCHIVES_ELN
        LabArchives Electronic Lab Notebook (record export destination)
    LABARCHIVES_SCHEDULER
        LabArchives Scheduler (reservation system integration)
    CDCS
        Configurable Data Curation System (NexusLIMS frontend)
    """

    NEMO = "nemo"
    LABARCHIVES_ELN = "labarchives_eln"
    LABARCHIVES_SCHEDULER = "labarchives_scheduler"
    CDCS = "cdcs"

    @property
    def description(self) -> str:
        """Return the one-line meaning of this external system."""
        return _SYSTEM_MEANINGS[self.value]


_EVENT_TYPE_MEANINGS = {
    "START": "a session started on an instrument",
    "END": "a session ended on an instrument",
    "RECORD_GENERATION": "an attempt to build the session's record",
}

_STATUS_MEANINGS = {
    "WAITING_FOR_END": "session has started but not yet ended",
    "TO_BE_BUILT": "session has ended and needs record generation",
    "COMPLETED": "record has been successfully built and uploaded",
    "BUILT_NOT_EXPORTED": "record was built successfully but all export destinations failed",
    "ERROR": "record building failed with an error",
    "NO_FILES_FOUND": "no files were found for this session",
    "NO_CONSENT": "user did not consent to data harvesting",
    "NO_RESERVATION": "no matching reservation found for this session",
}

_SYSTEM_MEANINGS = {
    "nemo": "NEMO lab management system: usage tracking and reservations",
    "labarchives_eln": "LabArchives Electronic Lab Notebook: record export destination",
    "labarchives_scheduler": "LabArchives Scheduler: reservation system integration",
    "cdcs": "Configurable Data Curation System: NexusLIMS frontend",
}
