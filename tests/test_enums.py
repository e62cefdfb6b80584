"""The enums mirror nexusLIMS.db.enums exactly."""

from __future__ import annotations

from enum import Enum

import pytest

from nexuslims_lifecycle.enums import EventType, ExternalSystem, RecordStatus

STATUS_NAMES = [
    "WAITING_FOR_END",
    "TO_BE_BUILT",
    "COMPLETED",
    "BUILT_NOT_EXPORTED",
    "ERROR",
    "NO_FILES_FOUND",
    "NO_CONSENT",
    "NO_RESERVATION",
]


@pytest.mark.parametrize("enum_class", [EventType, RecordStatus, ExternalSystem])
def test_enums_are_str_enums(enum_class: type[Enum]) -> None:
    """Each enum is a (str, Enum), so members compare equal to their values."""
    assert issubclass(enum_class, str)
    assert issubclass(enum_class, Enum)
    for member in enum_class:
        assert member == member.value


def test_event_type_members_and_values() -> None:
    assert [(m.name, m.value) for m in EventType] == [
        ("START", "START"),
        ("END", "END"),
        ("RECORD_GENERATION", "RECORD_GENERATION"),
    ]


def test_record_status_members_in_nexuslims_order_with_value_equal_to_name() -> None:
    assert [m.name for m in RecordStatus] == STATUS_NAMES
    assert all(m.value == m.name for m in RecordStatus)


def test_external_system_members_and_values() -> None:
    assert [(m.name, m.value) for m in ExternalSystem] == [
        ("NEMO", "nemo"),
        ("LABARCHIVES_ELN", "labarchives_eln"),
        ("LABARCHIVES_SCHEDULER", "labarchives_scheduler"),
        ("CDCS", "cdcs"),
    ]


@pytest.mark.parametrize(
    ("enum_class", "first_line", "column"),
    [
        (EventType, "Allowed event types for session logs.", "session_log.event_type"),
        (
            RecordStatus,
            "Allowed record status values for session logs.",
            "session_log.record_status",
        ),
        (
            ExternalSystem,
            "External systems that NexusLIMS integrates with.",
            "external_user_identifiers.external_system",
        ),
    ],
)
def test_docstrings_match_nexuslims(enum_class: type[Enum], first_line: str, column: str) -> None:
    doc = enum_class.__doc__ or ""
    assert doc.splitlines()[0] == first_line
    assert f"Maps to the CHECK constraint in {column} column." in doc


@pytest.mark.parametrize(
    ("member", "meaning"),
    [
        (RecordStatus.WAITING_FOR_END, "session has started but not yet ended"),
        (RecordStatus.TO_BE_BUILT, "session has ended and needs record generation"),
        (RecordStatus.COMPLETED, "record has been successfully built and uploaded"),
        (
            RecordStatus.BUILT_NOT_EXPORTED,
            "record was built successfully but all export destinations failed",
        ),
        (RecordStatus.ERROR, "record building failed with an error"),
        (RecordStatus.NO_FILES_FOUND, "no files were found for this session"),
        (RecordStatus.NO_CONSENT, "user did not consent to data harvesting"),
        (RecordStatus.NO_RESERVATION, "no matching reservation found for this session"),
        (ExternalSystem.NEMO, "NEMO lab management system: usage tracking and reservations"),
        (ExternalSystem.CDCS, "Configurable Data Curation System: NexusLIMS frontend"),
        (EventType.RECORD_GENERATION, "an attempt to build the session's record"),
    ],
)
def test_each_member_carries_its_meaning(member: Enum, meaning: str) -> None:
    assert member.description == meaning  # type: ignore[attr-defined]


@pytest.mark.parametrize("enum_class", [EventType, RecordStatus, ExternalSystem])
def test_every_member_has_a_description(enum_class: type[Enum]) -> None:
    for member in enum_class:
        assert member.description  # type: ignore[attr-defined]
        if enum_class is RecordStatus:
            assert f"{member.name}\n        {member.description.capitalize()}" in (
                enum_class.__doc__ or ""
            )
