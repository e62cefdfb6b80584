"""The lifecycle of DESIGN.md, written out by hand, independently of rules.py."""

from __future__ import annotations

from nexuslims_lifecycle.enums import RecordStatus as S
from nexuslims_lifecycle.rules import EVENTS

EXPECTED = {
    (S.WAITING_FOR_END, "end"): S.TO_BE_BUILT,
    (S.TO_BE_BUILT, "complete"): S.COMPLETED,
    (S.BUILT_NOT_EXPORTED, "complete"): S.COMPLETED,
    (S.TO_BE_BUILT, "fail_export"): S.BUILT_NOT_EXPORTED,
    (S.TO_BE_BUILT, "fail"): S.ERROR,
    (S.TO_BE_BUILT, "find_no_files"): S.NO_FILES_FOUND,
    (S.TO_BE_BUILT, "deny_consent"): S.NO_CONSENT,
    (S.TO_BE_BUILT, "find_no_reservation"): S.NO_RESERVATION,
    (S.ERROR, "retry"): S.TO_BE_BUILT,
    (S.NO_FILES_FOUND, "retry"): S.TO_BE_BUILT,
    (S.NO_RESERVATION, "retry"): S.TO_BE_BUILT,
    (S.BUILT_NOT_EXPORTED, "retry"): S.TO_BE_BUILT,
}
ALL_PAIRS = [(status, event) for status in S for event in EVENTS]
