"""The per-session checks of the audit, on plain rows (no database here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal, NamedTuple

from nexuslims_lifecycle._timestamps import as_aware, read_stored
from nexuslims_lifecycle.enums import EventType, RecordStatus
from nexuslims_lifecycle.legality import next_statuses
from nexuslims_lifecycle.rules import FILE_DELAY_GUARD, LIFECYCLE, file_delay_elapsed

Severity = Literal["error", "warning"]
"""How bad a finding is: ``error`` (no legal history explains it) or ``warning``."""

_STATUSES: Final = frozenset(status.value for status in RecordStatus)
_EVENT_TYPES: Final = frozenset(event.value for event in EventType)
_WAITING: Final = RecordStatus.WAITING_FOR_END.value
# The statuses a build attempt ends in: where the events out of TO_BE_BUILT lead.
_OUTCOMES: Final = frozenset(s.value for s in next_statuses(RecordStatus.TO_BE_BUILT))


@dataclass(frozen=True, slots=True)
class Code:
    """One kind of finding: its stable code, severity, meaning and repair."""

    code: str
    severity: Severity
    meaning: str
    repair: str


def _code(code: str, severity: Severity, meaning: str, repair: str) -> tuple[str, Code]:
    return code, Code(code, severity, meaning, repair)


CODES: Final = dict(
    [
        _code(
            "invalid-status",
            "error",
            "a row's record_status is not a RecordStatus value",
            "set it to the session's real status (see its other rows or its history)",
        ),
        _code(
            "invalid-event-type",
            "error",
            "a row's event_type is not START, END or RECORD_GENERATION",
            "correct the event_type, or delete the row if it is not a session event",
        ),
        _code(
            "invalid-timestamp",
            "error",
            "a row's timestamp is not an ISO-8601 date and time",
            "rewrite it as ISO-8601 with a UTC offset, e.g. 2026-11-28T09:00:00+00:00",
        ),
        _code(
            "mixed-status",
            "error",
            "the rows of one session disagree on record_status",
            "decide the session's status and set it on every row in one UPDATE",
        ),
        _code(
            "stalled-build",
            "warning",
            "a build row in progress (RECORD_GENERATION, WAITING_FOR_END) is older than the "
            "stalled-after limit: its build crashed, or NexusLIMS has not run since",
            "nothing to do by hand while NexusLIMS runs: its next `nexuslims build-records` "
            "builds the session again and that outcome overwrites the stale row; if NexusLIMS "
            "no longer runs, set the row's record_status to the session's (TO_BE_BUILT)",
        ),
        _code(
            "missing-start",
            "error",
            "the session has no START row",
            "re-harvest the usage event, or insert the START row from the reservation system",
        ),
        _code(
            "duplicate-start",
            "error",
            "the session has more than one START row",
            "keep the START row that matches the usage event and delete the others",
        ),
        _code(
            "duplicate-end",
            "error",
            "the session has more than one END row (a known effect of revised usage events)",
            "keep the END row that matches the usage event and delete the others",
        ),
        _code(
            "end-before-start",
            "error",
            "an END row is timestamped before the session's START",
            "correct the timestamps from the usage event",
        ),
        _code(
            "status-without-end",
            "error",
            "the session is past WAITING_FOR_END but has no END row",
            "insert the END row from the usage event, or set the status back to WAITING_FOR_END",
        ),
        _code(
            "end-while-waiting",
            "error",
            "the session has an END row but is still WAITING_FOR_END",
            "move it to TO_BE_BUILT (the 'end' event) so the record builder picks it up",
        ),
        _code(
            "build-before-end",
            "error",
            "the session has a RECORD_GENERATION row but is still WAITING_FOR_END: no build "
            "starts before a session has ended",
            "if the usage event has ended, log its END (the 'end' event) and let the builder "
            "run again; otherwise delete the RECORD_GENERATION row",
        ),
        _code(
            "outcome-without-build",
            "warning",
            "the session has a build outcome but no RECORD_GENERATION row (legacy data)",
            "nothing to do for old sessions; for new ones, check the builder logs each attempt",
        ),
        _code(
            "early-no-files",
            "error",
            "the session was found to have no files before the file delay had passed since its "
            "END: files may have arrived later and were never looked for",
            "retry the session (nexuslims-lifecycle advance DB SID retry) so the builder looks "
            "for its files again, then find the writer that skipped the file delay",
        ),
        _code(
            "stuck-waiting",
            "warning",
            "the session has been WAITING_FOR_END longer than the stuck-after limit",
            "check the instrument's usage event in NEMO; log its END or close the session",
        ),
        _code(
            "illegal-history",
            "error",
            "status_history does not replay legally through the lifecycle",
            "find who wrote the entry (its actor) and repair the status with legal events",
        ),
        _code(
            "history-gap",
            "error",
            "status_history skips a sequence number: an entry was lost or deleted",
            "restore the entry from a backup; the history is append-only",
        ),
        _code(
            "history-mismatch",
            "error",
            "status_history ends in a status other than the session's current one",
            "the lifecycle guard was absent when a writer moved the session: check "
            "`guard status`, install it, then bring status and history back in line",
        ),
        _code(
            "stale-claim",
            "warning",
            "a build_claim row whose lease has expired or whose session is no longer "
            "TO_BE_BUILT: no worker is building the session under it",
            "delete the build_claim row; an expired lease on a TO_BE_BUILT session is also "
            "taken over by the next claim_next",
        ),
    ]
)
"""Every finding code, with its severity, meaning and repair: part of the public interface."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the audit found.

    Parameters
    ----------
    code
        The stable code (see :data:`CODES`).
    severity
        ``"error"`` or ``"warning"``.
    session_identifier
        The session concerned.
    row_ids
        The ``id_session_log`` (or ``status_history`` id) values involved.
    message
        What is wrong, for a person.
    """

    code: str
    severity: Severity
    session_identifier: str
    row_ids: tuple[int, ...]
    message: str


@dataclass(frozen=True, slots=True)
class Limits:
    """The audit's clock and the spans it judges sessions by.

    Parameters
    ----------
    now
        The audit's clock (timezone-aware).
    stuck_after
        How long a session may wait for its END (``stuck-waiting``).
    stalled_after
        How old a build row in progress may grow (``stalled-build``).
    file_delay
        How long after its END a session may be found to have no files (``early-no-files``).
    """

    now: datetime
    stuck_after: timedelta
    stalled_after: timedelta
    file_delay: timedelta


RawRow = tuple[Any, ...]
"""A row as the database driver returns it (or a LogRow / HistoryEntry, also tuples)."""


class LogRow(NamedTuple):
    """One ``session_log`` row as the audit reads it, columns in query order."""

    session_identifier: str
    id: int
    timestamp: str | None
    event_type: str | None
    record_status: str | None


def finding(code: str, sid: str, rows: Sequence[int], message: str) -> Finding:
    """Return a finding of ``code``, at the severity :data:`CODES` gives it."""
    return Finding(code, CODES[code].severity, sid, tuple(rows), message)


def parse_time(value: object) -> datetime | None:
    """Parse a stored timestamp by the rule the store follows too; None if unreadable.

    A timestamp without an offset (older NexusLIMS) is the reading process's local
    time; see ``nexuslims_lifecycle._timestamps``.
    """
    return read_stored(value)


def span(length: timedelta) -> str:
    """Say a span for messages: in days (one decimal) from a day up, else in hours."""
    if abs(length) >= timedelta(days=1):
        return _days(length)
    return f"{length.total_seconds() / 3600:.1f} hours"


def _days(length: timedelta) -> str:
    """Say a span in days (one decimal) for messages."""
    return f"{length.total_seconds() / 86400:.1f} days"


class SessionVerdict(NamedTuple):
    """What the rows of one session say.

    Parameters
    ----------
    findings
        Their findings.
    status
        The status the rows agree on (None if they do not).
    ended
        The session's END time (its newest END row's), if readable.
    early_no_files
        The ``early-no-files`` finding the rows support, kept apart: when the
        session's history ends in the ``find_no_files`` itself, the history judges.
    """

    findings: list[Finding]
    status: str | None
    ended: datetime | None = None
    early_no_files: Finding | None = None


def _full_session_check(sid: str, raw: Sequence[RawRow], limits: Limits) -> SessionVerdict:
    """Name every problem of a session the fast path found unusual (see :func:`check_session`)."""
    rows = [LogRow._make(row) for row in raw]
    findings = _check_values(sid, rows)
    times = {row.id: parse_time(row.timestamp) for row in rows}
    unreadable = [row.id for row in rows if times[row.id] is None]
    if unreadable:
        findings.append(
            finding(
                "invalid-timestamp",
                sid,
                unreadable,
                f"{len(unreadable)} row(s) with a timestamp that is not ISO-8601",
            )
        )
    kinds = {kind: [r for r in rows if r.event_type == kind.value] for kind in EventType}
    findings += _check_structure(sid, kinds, times)
    status, building = _agreed_status(sid, rows, findings)
    ends = kinds[EventType.END]
    ended = times[ends[-1].id] if ends else None
    early = None
    if status is not None:
        findings += _check_status(sid, status, kinds, times, building=building, limits=limits)
        early = _early_by_rows(sid, status, kinds, times, limits.file_delay)
    return SessionVerdict(findings, status, ended, early)


def _check_values(sid: str, rows: Sequence[LogRow]) -> list[Finding]:
    """Report values outside the enums: a finding per column that has any."""
    checks = (
        ("invalid-status", "record_status", _STATUSES),
        ("invalid-event-type", "event_type", _EVENT_TYPES),
    )
    findings = []
    for code, column, valid in checks:
        bad = [row for row in rows if getattr(row, column) not in valid]
        if bad:
            values = ", ".join(sorted({repr(getattr(row, column)) for row in bad}))
            expected = ", ".join(sorted(valid))
            message = f"{column} {values} is not one of {expected}"
            findings.append(finding(code, sid, [row.id for row in bad], message))
    return findings


def _check_structure(
    sid: str, kinds: dict[EventType, list[LogRow]], times: dict[int, datetime | None]
) -> list[Finding]:
    findings = []
    starts, ends = kinds[EventType.START], kinds[EventType.END]
    if not starts:
        findings.append(finding("missing-start", sid, [], "no START row for this session"))
    if len(starts) > 1:
        ids = [row.id for row in starts]
        findings.append(
            finding("duplicate-start", sid, ids, f"{len(ids)} START rows where one is expected")
        )
    if len(ends) > 1:
        ids = [row.id for row in ends]
        findings.append(
            finding("duplicate-end", sid, ids, f"{len(ids)} END rows where one is expected")
        )
    start_times = [t for row in starts if (t := times[row.id]) is not None]
    if start_times:
        began = min(start_times)
        early = [row.id for row in ends if (t := times[row.id]) is not None and t < began]
        if early:
            findings.append(
                finding(
                    "end-before-start",
                    sid,
                    [starts[0].id, *early],
                    f"END at {_time_of(ends, early[0])} precedes START at {began.isoformat()}",
                )
            )
    return findings


def _time_of(rows: Sequence[LogRow], row_id: int) -> str | None:
    return next(row.timestamp for row in rows if row.id == row_id)


def _agreed_status(
    sid: str, rows: Sequence[LogRow], findings: list[Finding]
) -> tuple[str | None, list[LogRow]]:
    """Return the session's status and its build rows in progress, adding mixed-status.

    A build row in progress (RECORD_GENERATION, WAITING_FOR_END) beside rows that all
    hold TO_BE_BUILT is a session being built: its status is TO_BE_BUILT. Otherwise
    every row must hold one status. Rows with a status outside the enum are left out
    (``invalid-status`` reports them).
    """
    valid = [row for row in rows if row.record_status in _STATUSES]
    building = [row for row in valid if row.event_type == _BUILD and row.record_status == _WAITING]
    ids = {row.id for row in building}
    others = {row.record_status for row in valid if row.id not in ids}
    if building and others == {_TO_BE_BUILT}:
        return _TO_BE_BUILT, building
    statuses = sorted({row.record_status for row in valid if row.record_status})
    if len(statuses) > 1:
        findings.append(
            finding(
                "mixed-status",
                sid,
                [row.id for row in valid],
                f"rows disagree on record_status: {', '.join(statuses)}",
            )
        )
        return None, []
    return (statuses[0] if statuses else None), []


def _check_status(
    sid: str,
    status: str,
    kinds: dict[EventType, list[LogRow]],
    times: dict[int, datetime | None],
    *,
    building: Sequence[LogRow],
    limits: Limits,
) -> list[Finding]:
    """Judge the status the rows agree on against the rows the session has."""
    misfit = _check_shape(sid, status, kinds)
    if misfit:
        return misfit
    if status == _WAITING:
        return _check_stuck(sid, kinds[EventType.START], times, limits)
    if building:
        return _check_stalled(sid, building, times, limits)
    return []


def _check_shape(sid: str, status: str, kinds: dict[EventType, list[LogRow]]) -> list[Finding]:
    """Report an END or build row that the status does not allow, or one it lacks."""
    ends, builds = kinds[EventType.END], kinds[EventType.RECORD_GENERATION]
    if status != _WAITING and not ends:
        return [finding("status-without-end", sid, [], f"status {status} but no END row")]
    if status == _WAITING and ends:
        ids = [row.id for row in ends]
        return [finding("end-while-waiting", sid, ids, "END row logged but still WAITING_FOR_END")]
    if status == _WAITING and builds:
        ids = [row.id for row in builds]
        return [
            finding("build-before-end", sid, ids, "RECORD_GENERATION row(s) but no END row yet")
        ]
    if status in _OUTCOMES and not builds:
        return [
            finding(
                "outcome-without-build", sid, [], f"status {status} but no RECORD_GENERATION row"
            )
        ]
    return []


def _check_stuck(
    sid: str, starts: Sequence[LogRow], times: dict[int, datetime | None], limits: Limits
) -> list[Finding]:
    started = [t for row in starts if (t := times[row.id]) is not None]
    if not started or limits.now - min(started) <= limits.stuck_after:
        return []
    waited = limits.now - min(started)
    return [
        finding(
            "stuck-waiting",
            sid,
            [row.id for row in starts],
            f"WAITING_FOR_END since {min(started).isoformat()}: "
            f"{_days(waited)}, over the {_days(limits.stuck_after)} limit",
        )
    ]


def _check_stalled(
    sid: str, building: Sequence[LogRow], times: dict[int, datetime | None], limits: Limits
) -> list[Finding]:
    """Report a session whose newest build row in progress is older than the limit."""
    since = times[building[-1].id]
    if since is None or limits.now - since <= limits.stalled_after:
        return []
    return [
        finding(
            "stalled-build",
            sid,
            [row.id for row in building],
            f"build row in progress since {since.isoformat()}: {span(limits.now - since)} old, "
            f"over the {span(limits.stalled_after)} limit; NexusLIMS's next build-records run "
            "builds the session again",
        )
    ]


def too_early(decided: datetime | None, ended: datetime | None, delay: timedelta) -> bool:
    """Return whether a no-files decision came before the file delay had passed since the END.

    Naive times are local time (the stored-time rule); an unknown time is not judged
    (False).
    """
    decided, ended = local_if_naive(decided), local_if_naive(ended)
    return (
        decided is not None and ended is not None and not file_delay_elapsed(ended, decided, delay)
    )


def early_message(decided: datetime, ended: datetime, delay: timedelta) -> str:
    """Say why a no-files decision at ``decided`` came before the file delay had passed."""
    return (
        f"no files found at {decided.isoformat()}, {span(decided - ended)} after the END at "
        f"{ended.isoformat()}: the file delay of {span(delay)} ran until "
        f"{(ended + delay).isoformat()}"
    )


def _early_by_rows(
    sid: str,
    status: str,
    kinds: dict[EventType, list[LogRow]],
    times: dict[int, datetime | None],
    delay: timedelta,
) -> Finding | None:
    """Judge a NO_FILES_FOUND session by its newest build row against its END plus the delay."""
    ends, builds = kinds[EventType.END], kinds[EventType.RECORD_GENERATION]
    if status not in _DELAYED_STATUSES or not ends or not builds:
        return None
    ended, decided = times[ends[-1].id], times[builds[-1].id]
    if decided is None or ended is None or not too_early(decided, ended, delay):
        return None
    ids = [ends[-1].id, builds[-1].id]
    return finding("early-no-files", sid, ids, early_message(decided, ended, delay))


_START: Final = EventType.START.value
_END: Final = EventType.END.value
_BUILD: Final = EventType.RECORD_GENERATION.value
_TO_BE_BUILT: Final = RecordStatus.TO_BE_BUILT.value
_fromisoformat: Final = datetime.fromisoformat
DELAYED_EVENTS: Final = LIFECYCLE.guarded_by(FILE_DELAY_GUARD)
"""The events the file delay guards (``find_no_files``)."""
_DELAYED_STATUSES: Final = frozenset(
    rule.dest.value for rule in LIFECYCLE.moves.values() if rule.guard == FILE_DELAY_GUARD
)
"""Where those events lead (NO_FILES_FOUND): a session there is judged by the delay."""


def local_if_naive(moment: datetime | None) -> datetime | None:
    """Apply the stored-time rule to a parsed timestamp (naive: local time); keep None."""
    return None if moment is None else as_aware(moment)


def check_session(sid: str, rows: Sequence[RawRow], limits: Limits) -> SessionVerdict:
    """Check one session's ``session_log`` rows against the lifecycle.

    A single pass settles the common case, a session with nothing wrong; anything
    unusual goes to the full check, which names every problem.

    Parameters
    ----------
    sid
        The session identifier.
    rows
        All its rows, in ``id_session_log`` order, as (session_identifier, id,
        timestamp, event_type, record_status).
    limits
        The audit's clock and spans.

    Returns
    -------
    SessionVerdict
        The findings and the status the rows agree on (None when they do not).
    """
    status = rows[0][4]
    starts = ends = builds = 0
    began = ended = built = None
    for _, _, stamp, event, row_status in rows:
        if row_status != status:
            return _full_session_check(sid, rows, limits)
        try:
            moment = _fromisoformat(stamp)
        except (TypeError, ValueError):
            return _full_session_check(sid, rows, limits)
        if event == _START:
            starts += 1
            began = moment
        elif event == _END:
            ends += 1
            ended = moment
        elif event == _BUILD and status != _WAITING:
            builds += 1
            built = moment
        else:
            return _full_session_check(sid, rows, limits)
    plain = status in _STATUSES and starts == 1 and ends == (0 if status == _WAITING else 1)
    began, ended = local_if_naive(began), local_if_naive(ended)
    if (
        not plain
        or (ended is not None and began is not None and ended < began)
        or (status in _OUTCOMES and not builds)
        or (status == _WAITING and began is not None and limits.now - began > limits.stuck_after)
        or (status in _DELAYED_STATUSES and too_early(built, ended, limits.file_delay))
    ):
        return _full_session_check(sid, rows, limits)
    return SessionVerdict([], status, ended)
