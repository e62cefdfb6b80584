"""The design's lifecycle table, copied by hand as plain strings: the tests' one oracle.

The table is the project's design contract (kept outside this repository); this is
the one deliberate second copy of it. Every other expectation in the tests
(``expected_table``, the events in order, who moves, the guards) is derived from
here, so the differential and mutation tests have an oracle that does not come from
the library's own ``LIFECYCLE``, or a wrong table would be checked against itself.
"""

from __future__ import annotations

from nexuslims_lifecycle import RecordStatus
from nexuslims_lifecycle.rules import Actor, Lifecycle, Rule

INITIAL = "WAITING_FOR_END"
FINAL = ("COMPLETED", "NO_CONSENT")
STATUSES = (
    "WAITING_FOR_END",
    "TO_BE_BUILT",
    "COMPLETED",
    "BUILT_NOT_EXPORTED",
    "ERROR",
    "NO_FILES_FOUND",
    "NO_CONSENT",
    "NO_RESERVATION",
)
GUARDS = {"find_no_files": "file_delay_elapsed"}
MOVES = (
    ("end", "WAITING_FOR_END", "TO_BE_BUILT"),
    ("complete", "TO_BE_BUILT", "COMPLETED"),
    ("complete", "BUILT_NOT_EXPORTED", "COMPLETED"),
    ("fail_export", "TO_BE_BUILT", "BUILT_NOT_EXPORTED"),
    ("fail", "TO_BE_BUILT", "ERROR"),
    ("find_no_files", "TO_BE_BUILT", "NO_FILES_FOUND"),
    ("deny_consent", "TO_BE_BUILT", "NO_CONSENT"),
    ("find_no_reservation", "TO_BE_BUILT", "NO_RESERVATION"),
    ("retry", "ERROR", "TO_BE_BUILT"),
    ("retry", "NO_FILES_FOUND", "TO_BE_BUILT"),
    ("retry", "NO_RESERVATION", "TO_BE_BUILT"),
    ("retry", "BUILT_NOT_EXPORTED", "TO_BE_BUILT"),
    ("reprocess", "COMPLETED", "TO_BE_BUILT"),
    ("reprocess", "NO_CONSENT", "TO_BE_BUILT"),
)
EVENTS = tuple(dict.fromkeys(event for event, _, _ in MOVES))
"""The event names in table order, without repeats."""
# Who makes each move: the design's "by" column, keyed by (event, source).
BY: dict[tuple[str, str], Actor] = {
    ("end", "WAITING_FOR_END"): "harvester",
    ("complete", "BUILT_NOT_EXPORTED"): "exporter",
    **{("retry", source): "operator" for _, source, _ in MOVES},
    **{("reprocess", source): "operator" for _, source, _ in MOVES},
}


def by(event: str, source: str) -> Actor:
    """Return who makes ``event`` from ``source``: the builder unless BY says otherwise."""
    return BY.get((event, source), "builder")


def as_lifecycle(
    moves: tuple[tuple[str, str, str], ...] = MOVES, final: tuple[str, ...] = FINAL
) -> Lifecycle:
    """Return ``moves`` as a Lifecycle, one rule per move, for sessions and the test kit."""
    rules = tuple(
        Rule(
            event,
            (RecordStatus(source),),
            RecordStatus(dest),
            "",
            by=by(event, source),
            guard=GUARDS.get(event),
        )
        for event, source, dest in moves
    )
    return Lifecycle(rules, RecordStatus(INITIAL), frozenset(map(RecordStatus, final)))
