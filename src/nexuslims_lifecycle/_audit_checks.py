"""The per-session checks of the audit, on plain rows (no database here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, NamedTuple

from nexuslims_lifecycle.enums import EventType, RecordStatus
from nexuslims_lifecycle.errors import LifecycleError
from nexuslims_lifecycle.legality import allowed_events, next_status, next_statuses
from nexuslims_lifecycle.rules import LIFECYCLE, START_EVENT

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
            "a RECORD_GENERATION row is still WAITING_FOR_END: a build in progress or crashed",
            "if no builder is running it, set the row to the session's status and requeue "
            "(retry) the session",
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
            "outcome-without-build",
            "warning",
            "the session has a build outcome but no RECORD_GENERATION row (legacy data)",
            "nothing to do for old sessions; for new ones, check the builder logs each attempt",
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
            "a writer bypassed the store: find it, then bring status and history back in line",
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


RawRow = tuple[Any, ...]
"""A row as the database driver returns it (or a LogRow / HistoryEntry, also tuples)."""


class LogRow(NamedTuple):
    """One ``session_log`` row as the audit reads it, columns in query order."""

    session_identifier: str
    id: int
    timestamp: str | None
    event_type: str | None
    record_status: str | None


class HistoryEntry(NamedTuple):
    """One ``status_history`` entry as the audit reads it, columns in query order."""

    session_identifier: str
    id: int
    seq: int
    from_status: str | None
    to_status: str | None
    event: str | None


def _finding(code: str, sid: str, rows: Sequence[int], message: str) -> Finding:
    return Finding(code, CODES[code].severity, sid, tuple(rows), message)


def _parse_time(value: str | None) -> datetime | None:
    """Parse an ISO-8601 timestamp; naive ones are taken as UTC; None if unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SessionVerdict:
    """The findings of one session and the status its rows agree on (None if they do not)."""

    findings: list[Finding]
    status: str | None


def _full_session_check(
    sid: str, raw: Sequence[RawRow], *, now: datetime, stuck_after: timedelta
) -> SessionVerdict:
    """Name every problem of a session the fast path found unusual (see :func:`check_session`)."""
    rows = [LogRow._make(row) for row in raw]
    findings = _check_values(sid, rows)
    times = {row.id: _parse_time(row.timestamp) for row in rows}
    unreadable = [row.id for row in rows if times[row.id] is None]
    if unreadable:
        findings.append(
            _finding(
                "invalid-timestamp",
                sid,
                unreadable,
                f"{len(unreadable)} row(s) with a timestamp that is not ISO-8601",
            )
        )
    kinds = {kind: [r for r in rows if r.event_type == kind.value] for kind in EventType}
    findings += _check_structure(sid, kinds, times)
    status = _agreed_status(sid, rows, findings)
    if status is not None:
        findings += _check_status(sid, status, kinds, times, now=now, stuck_after=stuck_after)
    return SessionVerdict(findings, status)


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
            findings.append(_finding(code, sid, [row.id for row in bad], message))
    return findings


def _check_structure(
    sid: str, kinds: dict[EventType, list[LogRow]], times: dict[int, datetime | None]
) -> list[Finding]:
    findings = []
    starts, ends = kinds[EventType.START], kinds[EventType.END]
    if not starts:
        findings.append(_finding("missing-start", sid, [], "no START row for this session"))
    if len(starts) > 1:
        ids = [row.id for row in starts]
        findings.append(
            _finding("duplicate-start", sid, ids, f"{len(ids)} START rows where one is expected")
        )
    if len(ends) > 1:
        ids = [row.id for row in ends]
        findings.append(
            _finding("duplicate-end", sid, ids, f"{len(ids)} END rows where one is expected")
        )
    start_times = [t for row in starts if (t := times[row.id]) is not None]
    if start_times:
        began = min(start_times)
        early = [row.id for row in ends if (t := times[row.id]) is not None and t < began]
        if early:
            findings.append(
                _finding(
                    "end-before-start",
                    sid,
                    [starts[0].id, *early],
                    f"END at {_time_of(ends, early[0])} precedes START at {began.isoformat()}",
                )
            )
    return findings


def _days(span: timedelta) -> str:
    """Say a span in days (one decimal) for messages."""
    return f"{span.total_seconds() / 86400:.1f} days"


def _time_of(rows: Sequence[LogRow], row_id: int) -> str | None:
    return next(row.timestamp for row in rows if row.id == row_id)


def _agreed_status(sid: str, rows: Sequence[LogRow], findings: list[Finding]) -> str | None:
    """Return the status the rows agree on, adding mixed-status / stalled-build findings."""
    stalled = [
        row.id
        for row in rows
        if row.event_type == EventType.RECORD_GENERATION.value and row.record_status == _WAITING
    ]
    if stalled:
        findings.append(
            _finding(
                "stalled-build",
                sid,
                stalled,
                "RECORD_GENERATION row(s) still WAITING_FOR_END: a build in progress or crashed",
            )
        )
    settled = [r for r in rows if r.record_status in _STATUSES and r.id not in set(stalled)]
    statuses = sorted({row.record_status for row in settled if row.record_status})
    if len(statuses) > 1:
        findings.append(
            _finding(
                "mixed-status",
                sid,
                [row.id for row in settled],
                f"rows disagree on record_status: {', '.join(statuses)}",
            )
        )
        return None
    return statuses[0] if statuses else None


def _check_status(
    sid: str,
    status: str,
    kinds: dict[EventType, list[LogRow]],
    times: dict[int, datetime | None],
    *,
    now: datetime,
    stuck_after: timedelta,
) -> list[Finding]:
    ends, builds = kinds[EventType.END], kinds[EventType.RECORD_GENERATION]
    if status != _WAITING and not ends:
        return [_finding("status-without-end", sid, [], f"status {status} but no END row")]
    if status == _WAITING and ends:
        ids = [row.id for row in ends]
        return [_finding("end-while-waiting", sid, ids, "END row logged but still WAITING_FOR_END")]
    if status in _OUTCOMES and not builds:
        return [
            _finding(
                "outcome-without-build", sid, [], f"status {status} but no RECORD_GENERATION row"
            )
        ]
    if status == _WAITING:
        started = [t for row in kinds[EventType.START] if (t := times[row.id]) is not None]
        if started and now - min(started) > stuck_after:
            waited = now - min(started)
            return [
                _finding(
                    "stuck-waiting",
                    sid,
                    [row.id for row in kinds[EventType.START]],
                    f"WAITING_FOR_END since {min(started).isoformat()}: "
                    f"{_days(waited)}, over the {_days(stuck_after)} limit",
                )
            ]
    return []


def _full_history_check(sid: str, raw: Sequence[RawRow], status: str | None) -> list[Finding]:
    """Name every problem of a history the fast path found unusual (see :func:`check_history`)."""
    entries = [HistoryEntry._make(entry) for entry in raw]
    findings = []
    seqs = [entry.seq for entry in entries]
    missing = sorted(set(range(1, max(seqs) + 1)) - set(seqs)) if seqs else []
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        findings.append(_finding("history-gap", sid, [], f"missing sequence number(s) {shown}"))
    bad = _first_illegal(entries)
    if bad is not None:
        entry, why = bad
        findings.append(_finding("illegal-history", sid, [entry.id], f"entry {entry.seq}: {why}"))
    last = entries[-1].to_status if entries else None
    if status is not None and last != status:
        ids = [entries[-1].id] if entries else []
        findings.append(
            _finding("history-mismatch", sid, ids, f"history ends in {last}, rows say {status}")
        )
    return findings


def _first_illegal(entries: Sequence[HistoryEntry]) -> tuple[HistoryEntry, str] | None:
    previous: HistoryEntry | None = None
    for entry in entries:
        why = _why_illegal(entry, previous)
        if why is not None:
            return entry, why
        previous = entry
    return None


def _why_start_illegal(entry: HistoryEntry) -> str | None:
    if entry.seq != 1 or entry.from_status is not None:
        return "'start' is only legal as the first entry, from no status"
    if entry.to_status != LIFECYCLE.initial.value:
        return f"a session starts in {LIFECYCLE.initial.value}, not {entry.to_status}"
    return None


def _why_illegal(entry: HistoryEntry, previous: HistoryEntry | None) -> str | None:
    if entry.event == START_EVENT:
        return _why_start_illegal(entry)
    adjacent = previous is not None and previous.seq + 1 == entry.seq
    if adjacent and previous is not None and entry.from_status != previous.to_status:
        return (
            f"starts from {entry.from_status} but entry {previous.seq} "
            f"ended in {previous.to_status}"
        )
    try:
        dest = next_status(entry.from_status or "", entry.event or "")
    except LifecycleError as error:
        return str(error)
    if dest.value != entry.to_status:
        return (
            f"{entry.event!r} from {entry.from_status} leads to {dest.value}, not {entry.to_status}"
        )
    return None


_START: Final = EventType.START.value
_END: Final = EventType.END.value
_BUILD: Final = EventType.RECORD_GENERATION.value
_INITIAL: Final = LIFECYCLE.initial.value
_fromisoformat: Final = datetime.fromisoformat
# Every legal history entry as (from, event, to), the first entry ``start`` included.
_STEPS: Final = frozenset(
    [(None, START_EVENT, _INITIAL)]
    + [
        (status.value, event, next_status(status, event).value)
        for status in RecordStatus
        for event in allowed_events(status)
    ]
)


def _as_utc(moment: datetime | None) -> datetime | None:
    """Take a naive timestamp (older NexusLIMS wrote local time without offset) as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def check_session(
    sid: str, rows: Sequence[RawRow], *, now: datetime, stuck_after: timedelta
) -> SessionVerdict:
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
    now
        The audit's clock, for ``stuck-waiting``.
    stuck_after
        How long a session may wait for its END before it is reported.

    Returns
    -------
    SessionVerdict
        The findings and the status the rows agree on (None when they do not).
    """
    status = rows[0][4]
    starts = ends = builds = 0
    began = ended = None
    for _, _, stamp, event, row_status in rows:
        if row_status != status:
            return _full_session_check(sid, rows, now=now, stuck_after=stuck_after)
        try:
            moment = _fromisoformat(stamp)
        except (TypeError, ValueError):
            return _full_session_check(sid, rows, now=now, stuck_after=stuck_after)
        if event == _START:
            starts += 1
            began = moment
        elif event == _END:
            ends += 1
            ended = moment
        elif event == _BUILD and status != _WAITING:
            builds += 1
        else:
            return _full_session_check(sid, rows, now=now, stuck_after=stuck_after)
    plain = status in _STATUSES and starts == 1 and ends == (0 if status == _WAITING else 1)
    began, ended = _as_utc(began), _as_utc(ended)
    if (
        not plain
        or (ended is not None and began is not None and ended < began)
        or (status in _OUTCOMES and not builds)
        or (status == _WAITING and began is not None and now - began > stuck_after)
    ):
        return _full_session_check(sid, rows, now=now, stuck_after=stuck_after)
    return SessionVerdict([], status)


def check_history(sid: str, entries: Sequence[RawRow], status: str | None) -> list[Finding]:
    """Check one session's ``status_history`` against the lifecycle and its current status.

    Parameters
    ----------
    sid
        The session identifier.
    entries
        Its history entries, in ``seq`` order, as (session_identifier, id, seq,
        from_status, to_status, event).
    status
        The status the session's ``session_log`` rows agree on; None when unknown
        (then ``history-mismatch`` is not judged).

    Returns
    -------
    list[Finding]
        ``history-gap``, ``illegal-history`` and ``history-mismatch`` findings.
    """
    previous: str | None = None
    expected = 1
    for _, _, seq, before, after, event in entries:
        legal = (before, event, after) in _STEPS and (previous is None or before == previous)
        if seq != expected or not legal:
            return _full_history_check(sid, entries, status)
        previous = after
        expected += 1
    if status is not None and previous != status:
        return _full_history_check(sid, entries, status)
    return []
