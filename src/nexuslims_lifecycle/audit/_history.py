"""The audit's checks of our own tables, ``status_history`` and ``build_claim``, on plain rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final, NamedTuple, cast

from nexuslims_lifecycle.audit._checks import (
    DELAYED_EVENTS,
    Finding,
    RawRow,
    early_message,
    finding,
    parse_time,
    too_early,
)
from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import LifecycleError
from nexuslims_lifecycle.legality import next_status
from nexuslims_lifecycle.rules import FILE_DELAY, LIFECYCLE, START_EVENT, EventName

_INITIAL: Final = LIFECYCLE.initial.value
_TO_BE_BUILT: Final = RecordStatus.TO_BE_BUILT.value
# Every legal history entry as (from, event, to), the first entry ``start`` included.
_STEPS: Final[frozenset[tuple[str | None, str, str]]] = frozenset(
    [(None, START_EVENT, _INITIAL)]
    + [(source.value, event, rule.dest.value) for (source, event), rule in LIFECYCLE.moves.items()]
)


class HistoryEntry(NamedTuple):
    """One ``status_history`` entry as the audit reads it, columns in query order."""

    session_identifier: str
    id: int
    seq: int
    from_status: str | None
    to_status: str | None
    event: str | None
    at: str | None = None


class ClaimRow(NamedTuple):
    """One ``build_claim`` row as the audit reads it, columns in query order."""

    session_identifier: str
    worker: str | None
    claimed_at: str | None
    expires_at: str | None


def check_history(
    sid: str,
    entries: Sequence[RawRow],
    status: str | None,
    ended: datetime | None = None,
    file_delay: timedelta = FILE_DELAY,
) -> list[Finding]:
    """Check one session's ``status_history`` against the lifecycle and its current status.

    Parameters
    ----------
    sid
        The session identifier.
    entries
        Its history entries, in ``seq`` order, as (session_identifier, id, seq,
        from_status, to_status, event, at).
    status
        The status the session's ``session_log`` rows agree on; None when unknown
        (then ``history-mismatch`` is not judged).
    ended
        The session's END time; None when unknown (then ``early-no-files`` is not judged).
    file_delay
        How long after the END ``find_no_files`` must wait.

    Returns
    -------
    list[Finding]
        ``history-gap``, ``illegal-history``, ``history-mismatch`` and
        ``early-no-files`` findings.
    """
    previous: str | None = None
    expected = 1
    for _, _, seq, before, after, event, _at in entries:
        legal = (before, event, after) in _STEPS and (previous is None or before == previous)
        if seq != expected or not legal:
            return _full_history_check(sid, entries, status, ended, file_delay)
        previous = after
        expected += 1
    if status is not None and previous != status:
        return _full_history_check(sid, entries, status, ended, file_delay)
    if ended is not None and entries and entries[-1][5] in DELAYED_EVENTS:
        last = HistoryEntry._make(entries[-1])
        if _early_entry(sid, last, ended, file_delay) is not None:
            return _full_history_check(sid, entries, status, ended, file_delay)
    return []


def judges_no_files(entries: Sequence[RawRow]) -> bool:
    """Return whether a history ends in ``find_no_files`` (then it judges, not the rows)."""
    return bool(entries) and entries[-1][5] in DELAYED_EVENTS


def _early_entry(
    sid: str, entry: HistoryEntry, ended: datetime | None, delay: timedelta
) -> Finding | None:
    """Return ``early-no-files`` if ``entry`` is a find_no_files made before the delay passed."""
    if entry.event not in DELAYED_EVENTS or ended is None:
        return None
    decided = parse_time(entry.at)
    if decided is None or not too_early(decided, ended, delay):
        return None
    message = f"entry {entry.seq}: {early_message(decided, ended, delay)}"
    return finding("early-no-files", sid, [entry.id], message)


def _full_history_check(
    sid: str,
    raw: Sequence[RawRow],
    status: str | None,
    ended: datetime | None,
    delay: timedelta,
) -> list[Finding]:
    """Name every problem of a history the fast path found unusual (see :func:`check_history`)."""
    entries = [HistoryEntry._make(entry) for entry in raw]
    findings = []
    seqs = [entry.seq for entry in entries]
    missing = sorted(set(range(1, max(seqs) + 1)) - set(seqs)) if seqs else []
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        findings.append(finding("history-gap", sid, [], f"missing sequence number(s) {shown}"))
    bad = _first_illegal(entries)
    if bad is not None:
        entry, why = bad
        findings.append(finding("illegal-history", sid, [entry.id], f"entry {entry.seq}: {why}"))
    last = entries[-1].to_status if entries else None
    if status is not None and last != status:
        ids = [entries[-1].id] if entries else []
        findings.append(
            finding("history-mismatch", sid, ids, f"history ends in {last}, rows say {status}")
        )
    early = _early_entry(sid, entries[-1], ended, delay) if entries else None
    if early is not None:
        findings.append(early)
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
    if entry.to_status != _INITIAL:
        return f"a session starts in {_INITIAL}, not {entry.to_status}"
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
        # next_status checks both values (a row may hold anything) and says what is wrong.
        dest = next_status(entry.from_status or "", cast("EventName", entry.event or ""))
    except LifecycleError as error:
        return str(error)
    if dest.value != entry.to_status:
        return (
            f"{entry.event!r} from {entry.from_status} leads to {dest.value}, not {entry.to_status}"
        )
    return None


def check_claims(
    sid: str, claims: Sequence[RawRow], status: str | None, *, rows: bool, now: datetime
) -> list[Finding]:
    """Check a session's ``build_claim`` row: a live lease on a TO_BE_BUILT session.

    Parameters
    ----------
    sid
        The session identifier.
    claims
        Its claim rows (one, the table's key is the session) as (session_identifier,
        worker, claimed_at, expires_at).
    status
        The status the session's rows agree on (None when they disagree or it has none).
    rows
        Whether the session has ``session_log`` rows at all.
    now
        The audit's clock.

    Returns
    -------
    list[Finding]
        A ``stale-claim`` finding per claim that no worker can be building under.
    """
    findings = []
    for claim in map(ClaimRow._make, claims):
        reasons = []
        expires = parse_time(claim.expires_at)
        if expires is None:
            reasons.append(f"its expires_at {claim.expires_at!r} is not ISO-8601")
        elif expires <= now:
            reasons.append(f"its lease expired at {expires.isoformat()}")
        if not rows:
            reasons.append("the session has no session_log rows")
        elif status is not None and status != _TO_BE_BUILT:
            reasons.append(f"the session is {status}, no longer TO_BE_BUILT")
        if reasons:
            message = f"build claim of worker {claim.worker!r}: {'; '.join(reasons)}"
            findings.append(finding("stale-claim", sid, [], message))
    return findings
