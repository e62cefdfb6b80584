"""Operator reprocessing: requeue whole sessions, chosen by START time, status or identifier.

NexusLIMS's documented recipe is an ``UPDATE session_log SET record_status =
'TO_BE_BUILT' WHERE timestamp >= ... AND timestamp <= ...``: it compares text, so
the last day of the range is left out, and it catches a session's START and END rows
but not its RECORD_GENERATION rows (written later, at build time), which splits the
session. Here a session is chosen whole, by its START row's time read as a datetime,
and moved by the one operator move the lifecycle allows from its status (``retry``
or ``reprocess``), through :meth:`SessionLogStore.advance
<nexuslims_lifecycle.store.SessionLogStore.advance>`: one checked, atomic move per
session, never half of one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Final, cast

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import (
    EmptySelection,
    InvalidArgument,
    TransitionConflict,
    UnknownSession,
)
from nexuslims_lifecycle.rules import LIFECYCLE, EventName, Rule, parse_status
from nexuslims_lifecycle.store._types import identifier

if TYPE_CHECKING:
    from nexuslims_lifecycle.store._store import SessionLogStore
    from nexuslims_lifecycle.store._types import SessionInfo

__all__ = [
    "REPROCESS_SKIP_REASONS",
    "ReprocessMove",
    "ReprocessReport",
    "ReprocessSkip",
    "reprocess",
]

_S = RecordStatus
_OPERATOR_MOVES: Final = {
    source: rule for rule in LIFECYCLE.rules if rule.by == "operator" for source in rule.sources
}
_BOUND_FORMS: Final = (
    "an ISO 8601 date (2024-01-31), a local date and time (2024-01-31T14:00) or a "
    "date and time with a UTC offset (2024-01-31T14:00-07:00)"
)

REPROCESS_SKIP_REASONS: Final = {
    "already-queued": "already queued: TO_BE_BUILT, NexusLIMS's next build run builds it",
    "being-built": (
        "being built: NexusLIMS is building it now, or a build crashed; wait for the "
        "run to finish (NexusLIMS's next run builds a crashed session again by itself)"
    ),
    "not-ended": "not ended yet: WAITING_FOR_END; the harvester queues it once it ends",
    "rows-disagree": (
        "its rows disagree on record_status: repair them first (`nexuslims-lifecycle "
        "audit` shows which rows)"
    ),
    "start-time-unknown": (
        "its START time cannot be placed in the range (its timestamp is not ISO 8601): "
        "select it with --session"
    ),
    "conflict": "another writer moved it first",
}
"""Why a selected session was not moved: each reason code and what it means."""


@dataclass(frozen=True, slots=True)
class ReprocessMove:
    """A session that :func:`~nexuslims_lifecycle.store.reprocess` moved (or would, in a dry run).

    Parameters
    ----------
    session_identifier
        The session.
    started_at
        Its START row's time, as ``started_at`` of
        :class:`~nexuslims_lifecycle.store.SessionInfo` gives it.
    before
        Its status before the move.
    event
        The operator move: ``retry`` or ``reprocess``.
    after
        Its status after the move (TO_BE_BUILT).
    """

    session_identifier: str
    started_at: datetime | None
    before: RecordStatus
    event: str
    after: RecordStatus


@dataclass(frozen=True, slots=True)
class ReprocessSkip:
    """A selected session that :func:`~nexuslims_lifecycle.store.reprocess` left as it was, and why.

    Parameters
    ----------
    session_identifier
        The session.
    started_at
        Its START row's time, as ``started_at`` of
        :class:`~nexuslims_lifecycle.store.SessionInfo` gives it.
    status
        Its status when it was skipped (None when its rows disagree).
    reason
        One of the codes of :data:`~nexuslims_lifecycle.store.REPROCESS_SKIP_REASONS`.
    message
        The reason in words.
    """

    session_identifier: str
    started_at: datetime | None
    status: RecordStatus | None
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class ReprocessReport:
    """What :func:`~nexuslims_lifecycle.store.reprocess` did: the sessions moved and those skipped.

    Parameters
    ----------
    moved
        The sessions moved (would be moved, in a dry run), in the order they were found.
    skipped
        The selected sessions left as they were, each with its reason.
    dry_run
        Whether this was a dry run (then nothing was written).
    """

    moved: tuple[ReprocessMove, ...]
    skipped: tuple[ReprocessSkip, ...]
    dry_run: bool

    def as_json(self) -> dict[str, object]:
        """Return the report as the stable JSON object documented in ``docs/cli.md``."""
        return {
            "dry_run": self.dry_run,
            "moved": [
                {
                    "session_identifier": item.session_identifier,
                    "started_at": _iso(item.started_at),
                    "from": item.before.value,
                    "event": item.event,
                    "to": item.after.value,
                }
                for item in self.moved
            ],
            "skipped": [
                {
                    "session_identifier": item.session_identifier,
                    "started_at": _iso(item.started_at),
                    "status": None if item.status is None else item.status.value,
                    "reason": item.reason,
                    "message": item.message,
                }
                for item in self.skipped
            ],
        }


def _iso(moment: datetime | None) -> str | None:
    """Return ``moment`` as ISO-8601 text with its offset, for JSON (None stays None)."""
    return None if moment is None else moment.isoformat()


@dataclass(frozen=True, slots=True)
class _Bound:
    """One end of the range: a wall-clock time (naive) or an instant (aware)."""

    given: str
    moment: datetime
    inclusive: bool

    @property
    def local(self) -> bool:
        return self.moment.utcoffset() is None


def _parse_time_bound(text: str) -> date | datetime:
    """Return the date or datetime that ``text`` writes in ISO 8601.

    Parameters
    ----------
    text
        ``2024-01-31`` (a date), ``2024-01-31T14:00`` (a local date and time) or
        ``2024-01-31T14:00-07:00`` (an instant).

    Returns
    -------
    date or datetime
        A ``date`` for a date alone, else a ``datetime`` (naive without an offset).

    Raises
    ------
    InvalidArgument
        For anything else.

    Examples
    --------
    >>> _parse_time_bound("2024-01-31")
    datetime.date(2024, 1, 31)
    >>> _parse_time_bound("2024-01-31T14:00-07:00").isoformat()
    '2024-01-31T14:00:00-07:00'
    """
    cleaned = text.strip() if isinstance(text, str) else text
    for parse in (date.fromisoformat, datetime.fromisoformat):
        try:
            return parse(cleaned)
        except (TypeError, ValueError):
            continue
    raise InvalidArgument("time bound", text, _BOUND_FORMS)


def _bound(value: date | str | None, name: str, *, upper: bool) -> _Bound | None:
    """Return ``value`` as a bound; a date ``upper`` bound takes in that whole day."""
    if value is None:
        return None
    try:
        point = _parse_time_bound(value) if isinstance(value, str) else value
    except InvalidArgument:
        raise InvalidArgument(name, value, _BOUND_FORMS) from None
    if isinstance(point, datetime):
        return _Bound(point.isoformat(), point, inclusive=True)
    if not isinstance(point, date):
        raise InvalidArgument(name, value, _BOUND_FORMS)
    midnight = datetime.combine(point, time())
    if not upper:
        return _Bound(point.isoformat(), midnight, inclusive=True)
    if point == date.max:
        return _Bound(point.isoformat(), datetime.max, inclusive=True)  # noqa: DTZ901 - wall clock
    return _Bound(point.isoformat(), midnight + timedelta(days=1), inclusive=False)


def _check_range(lower: _Bound | None, upper: _Bound | None) -> None:
    """Refuse a range whose start lies after its end (when both are of one kind)."""
    if lower is None or upper is None or lower.local != upper.local:
        return
    empty = lower.moment > upper.moment or (not upper.inclusive and lower.moment >= upper.moment)
    if empty:
        expected = f"a time not before the range's start {lower.given!r}: from > to selects nothing"
        raise InvalidArgument("started_to", upper.given, expected)


def _admits(bound: _Bound, start: datetime, *, upper: bool) -> bool:
    """Return whether ``start`` (timezone-aware) lies on the inside of ``bound``."""
    here = start.replace(tzinfo=None) if bound.local else start  # local: the row's wall clock
    if not upper:
        return here >= bound.moment
    return here <= bound.moment if bound.inclusive else here < bound.moment


def _in_range(start: datetime | None, lower: _Bound | None, upper: _Bound | None) -> bool | None:
    """Return whether a START time lies in the range (None: it cannot be placed)."""
    if lower is None and upper is None:
        return True
    if start is None:
        return None
    return all(
        _admits(bound, start, upper=is_upper)
        for bound, is_upper in ((lower, False), (upper, True))
        if bound is not None
    )


def _as_tuple(values: Iterable[object] | object) -> tuple[object, ...]:
    """Return ``values`` as a tuple; one string (a status is one too) is one value."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        return (values,)
    return tuple(values)


def _describe(
    lower: _Bound | None,
    upper: _Bound | None,
    statuses: frozenset[RecordStatus],
    sessions: tuple[str, ...],
) -> str:
    """Return the selection in words, for :class:`EmptySelection`."""
    parts = []
    if lower is not None:
        parts.append(f"started from {lower.given}")
    if upper is not None:
        parts.append(f"started up to {upper.given}")
    if statuses:
        parts.append(f"status {' or '.join(sorted(status.value for status in statuses))}")
    if sessions:
        parts.append(f"session {' or '.join(sessions)}")
    return ", ".join(parts) or "every session"


def _skip(info: SessionInfo, reason: str) -> ReprocessSkip:
    """Return the skip of ``info`` for ``reason``, a code of REPROCESS_SKIP_REASONS."""
    message = REPROCESS_SKIP_REASONS[reason]
    return ReprocessSkip(info.session_identifier, info.started_at, info.status, reason, message)


def _move_of(info: SessionInfo) -> tuple[RecordStatus, Rule] | ReprocessSkip:
    """Return the status read and the operator move that requeues ``info``, or a skip."""
    status = info.status
    if status is None:
        return _skip(info, "rows-disagree")
    if status is _S.TO_BE_BUILT:
        return _skip(info, "being-built" if info.being_built else "already-queued")
    if status is _S.WAITING_FOR_END:
        return _skip(info, "not-ended")
    return status, _OPERATOR_MOVES[status]  # every other status has one


def _select(
    store: SessionLogStore,
    lower: _Bound | None,
    upper: _Bound | None,
    statuses: frozenset[RecordStatus],
    sessions: tuple[str, ...],
) -> list[tuple[SessionInfo, bool]]:
    """Return the chosen sessions in order, each with whether its START time was placed.

    Raises
    ------
    UnknownSession
        For a session of ``sessions`` that has no row.
    EmptySelection
        When nothing is chosen.
    """
    named = frozenset(sessions)
    seen: set[str] = set()
    chosen: list[tuple[SessionInfo, bool]] = []
    for info in store.sessions():
        sid = info.session_identifier
        if named:
            if sid not in named:
                continue
            seen.add(sid)
        if statuses and info.status not in statuses:
            continue
        placed = _in_range(info.started_at, lower, upper)
        if placed is not False:
            chosen.append((info, placed is True))
    missing = [sid for sid in sessions if sid not in seen]
    if missing:
        raise UnknownSession(missing[0])
    if not chosen:
        raise EmptySelection(_describe(lower, upper, statuses, sessions))
    return chosen


def _requeue(
    store: SessionLogStore, info: SessionInfo, before: RecordStatus, event: str, actor: str
) -> ReprocessMove | ReprocessSkip:
    """Make one session's operator move; a writer that moved it first makes it a skip."""
    sid = info.session_identifier
    try:
        after = store.advance(sid, cast("EventName", event), actor=actor, expected=before)
    except TransitionConflict as error:
        now = None if error.current is None else RecordStatus(error.current)
        return ReprocessSkip(sid, info.started_at, now, "conflict", str(error))
    return ReprocessMove(sid, info.started_at, before, event, after)


def _outcomes(
    store: SessionLogStore,
    chosen: list[tuple[SessionInfo, bool]],
    *,
    dry_run: bool,
    actor: str,
) -> Iterator[ReprocessMove | ReprocessSkip]:
    """Yield what became of each chosen session, in order."""
    for info, placed in chosen:
        decided = _move_of(info) if placed else _skip(info, "start-time-unknown")
        if isinstance(decided, ReprocessSkip):
            yield decided
            continue
        before, rule = decided
        if dry_run:
            yield ReprocessMove(
                info.session_identifier, info.started_at, before, rule.event, rule.dest
            )
        else:
            yield _requeue(store, info, before, rule.event, actor)


def reprocess(
    store: SessionLogStore,
    *,
    started_from: date | datetime | str | None = None,
    started_to: date | datetime | str | None = None,
    statuses: Iterable[RecordStatus | str] = (),
    sessions: Iterable[str] = (),
    dry_run: bool = False,
    actor: str = "operator",
) -> ReprocessReport:
    """Requeue whole sessions for another build, each by the operator move its status allows.

    A session is chosen by its START row's time, read as a datetime in the row's own
    UTC offset (one stored without an offset is local time, the rule every stored
    time follows), by its current status, and by its identifier; the criteria given
    combine with AND, and none at all chooses every session. Each chosen session in
    a resting status moves by ``retry``, each COMPLETED or NO_CONSENT one by
    ``reprocess`` (the operator moves of :data:`~nexuslims_lifecycle.rules.LIFECYCLE`),
    through :meth:`~nexuslims_lifecycle.store.SessionLogStore.advance` with
    ``expected`` set to the status read: one atomic move per session, every row of
    it. A session already TO_BE_BUILT, being built, not ended, or whose rows
    disagree is skipped with its reason, as is one another writer moved first. All
    bad input is refused before anything is written.

    Parameters
    ----------
    store
        The session log.
    started_from, started_to
        The range of START times, both ends included. A date (``2024-01-31``, or a
        :class:`~datetime.date`) compares with the START's wall-clock date in its own
        offset, so ``started_to`` of a date takes in that whole day; a date and time
        without an offset compares with the START's wall-clock time; one with an
        offset compares as an instant.
    statuses
        Only sessions currently in one of these statuses.
    sessions
        Only these sessions; each must exist.
    dry_run
        Decide everything, write nothing: the report says what would move.
    actor
        Who is recorded in ``status_history`` as having made the moves.

    Returns
    -------
    ReprocessReport
        The sessions moved (in a dry run: that would move) and those skipped, with why.

    Raises
    ------
    InvalidArgument
        An unparsable bound, a range whose start lies after its end, or an empty actor.
    UnknownStatus
        A status that is not a RecordStatus.
    UnknownSession
        A session of ``sessions`` with no row.
    EmptySelection
        When the criteria choose no session.
    StoreError
        When the database cannot be read or written. Each session moves whole or not
        at all; sessions moved before the error stay moved, and a second run skips
        them as already queued.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from datetime import datetime, timedelta, timezone
    >>> from nexuslims_lifecycle.store import SessionLogStore
    >>> store = SessionLogStore(pathlib.Path(tempfile.mkdtemp()) / "nexuslims.db")
    >>> store.init()
    >>> t0 = datetime(2024, 1, 31, 22, 30, tzinfo=timezone(timedelta(hours=-7)))
    >>> for number, outcome in enumerate(["complete", "fail"]):
    ...     sid = f"session-{number}"
    ...     _ = store.start(sid, instrument="FEI-Titan-TEM-635816", at=t0)
    ...     _ = store.advance(sid, "end", at=t0 + timedelta(hours=1))
    ...     _ = store.advance(sid, outcome, at=t0 + timedelta(hours=2))
    >>> report = reprocess(store, started_from="2024-01-01", started_to="2024-01-31")
    >>> [(item.session_identifier, item.before.value, item.event) for item in report.moved]
    [('session-0', 'COMPLETED', 'reprocess'), ('session-1', 'ERROR', 'retry')]
    >>> store.status("session-0").value
    'TO_BE_BUILT'
    >>> reprocess(store, statuses=["ERROR"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    nexuslims_lifecycle.errors.EmptySelection: no session matches the selection (status ERROR): ...
    >>> store.close()
    """
    lower = _bound(started_from, "started_from", upper=False)
    upper = _bound(started_to, "started_to", upper=True)
    _check_range(lower, upper)
    wanted = frozenset(parse_status(status) for status in _as_tuple(statuses))
    named = tuple(
        dict.fromkeys(str(identifier(sid, "session_identifier")) for sid in _as_tuple(sessions))
    )
    who = str(identifier(actor, "actor"))
    chosen = _select(store, lower, upper, wanted, named)
    moved: list[ReprocessMove] = []
    skipped: list[ReprocessSkip] = []
    for outcome in _outcomes(store, chosen, dry_run=dry_run, actor=who):
        if isinstance(outcome, ReprocessMove):
            moved.append(outcome)
        else:
            skipped.append(outcome)
    return ReprocessReport(tuple(moved), tuple(skipped), dry_run)
