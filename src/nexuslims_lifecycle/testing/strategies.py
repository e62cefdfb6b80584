"""Hypothesis strategies for code that follows the lifecycle.

They draw statuses, events, legal and illegal histories, and the ``session_log``
rows NexusLIMS would hold for a legal history. This module needs Hypothesis (the
``test`` extra).

Examples
--------
>>> from hypothesis import given
>>> from nexuslims_lifecycle import RecordStatus, replay
>>> from nexuslims_lifecycle.testing import legal_event_sequences
>>> @given(legal_event_sequences())
... def test_replay_ends_where_the_history_does(steps):
...     moves = [step.event for step in steps if step.moved]
...     assert replay(moves) is (steps[-1].dest if steps else RecordStatus.WAITING_FOR_END)
>>> test_replay_ends_where_the_history_does()
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple, TypedDict, cast

from hypothesis import errors as hypothesis_errors
from hypothesis import strategies as st

from nexuslims_lifecycle import legality
from nexuslims_lifecycle.enums import EventType, RecordStatus
from nexuslims_lifecycle.errors import LifecycleError
from nexuslims_lifecycle.machine import Session
from nexuslims_lifecycle.rules import (
    EVENTS,
    FILE_DELAY,
    FILE_DELAY_GUARD,
    LIFECYCLE,
    EventName,
    file_delay_elapsed,
    parse_status,
)

__all__ = [
    "InvalidStrategyArgument",
    "SessionLogRow",
    "Step",
    "event_sequences",
    "events",
    "illegal_moves",
    "legal_event_sequences",
    "session_logs",
    "statuses",
]

_FILE_DELAY_GUARD: Final = FILE_DELAY_GUARD  # the name the stateful test imports
_TIMED_EVENTS: Final = LIFECYCLE.guarded_by(FILE_DELAY_GUARD)
"""The events that wait for the file delay after the END (``find_no_files``)."""
_STATUSES: Final = st.sampled_from(RecordStatus)
_EVENTS: Final = st.sampled_from(EVENTS)
# Events that keep a history going come first: Hypothesis favours (and shrinks
# towards) early choices, and histories that stop at once would rarely retry.
_ONWARD_FIRST: Final = {
    status: st.sampled_from(
        sorted(
            LIFECYCLE.allowed(status),
            key=lambda event: LIFECYCLE.moves[status, event].dest in LIFECYCLE.final,
        )
    )
    for status in RecordStatus
    if LIFECYCLE.allowed(status)
}
_REFUSED: Final = {
    status: tuple(event for event in EVENTS if event not in LIFECYCLE.allowed(status))
    for status in RecordStatus
}
_REFUSED_EVENT: Final = {status: st.sampled_from(events) for status, events in _REFUSED.items()}
_EARLIEST: Final = datetime(2015, 1, 1)  # noqa: DTZ001 - Hypothesis bounds are naive
_LATEST: Final = datetime(2035, 1, 1)  # noqa: DTZ001 - same
_INSTANTS: Final = st.datetimes(_EARLIEST, _LATEST, timezones=st.just(UTC))
# The stateful test draws times with one choice each (st.datetimes and st.timedeltas
# take several), which keeps a step cheap: 2,000 programs of 50 steps add up.
_SECOND: Final = timedelta(seconds=1)
_END_TIMES: Final = st.integers(0, 20 * 365 * 86_400).map(
    lambda seconds: datetime(2015, 1, 1, tzinfo=UTC) + seconds * _SECOND
)
_DELAYS: Final = st.sampled_from(
    (None, timedelta(0), timedelta(hours=1), FILE_DELAY, 2 * FILE_DELAY)
)
# Exactly at the delay and just before it, then anywhere within three days of it.
_AROUND_THE_DELAY: Final = st.sampled_from([timedelta(0), -timedelta(microseconds=1)]) | (
    st.integers(-3 * 86_400_000_000, 3 * 86_400_000_000).map(
        lambda microseconds: timedelta(microseconds=microseconds)
    )
)
_NOT_ENDED: Final = datetime(2025, 1, 1, tzinfo=UTC)  # `now` for a call refused before any end
_GAPS: Final = st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=7))
_INSTRUMENTS: Final = ("FEI-Titan-TEM-635816", "JEOL-JEM3010-TEM-565989", "FEI-Quanta200-ESEM")
_USERS: Final = ("ada", "grace", "rosalind", "marie")
_NEMO_USAGE_EVENT: Final = "https://nemo.example.org/api/usage_events/?id={}"


class InvalidStrategyArgument(LifecycleError, ValueError, hypothesis_errors.InvalidArgument):
    """A strategy was asked for something it cannot draw.

    Raised when the strategy is created, not when it is drawn from. Also a
    Hypothesis ``InvalidArgument``, as Hypothesis's own strategies raise.

    Parameters
    ----------
    strategy
        The strategy's name.
    name
        The argument's name.
    value
        The value given.
    expected
        What would have been accepted.
    """

    def __init__(self, strategy: str, name: str, value: object, expected: str) -> None:
        self.strategy = strategy
        self.name = name
        self.value = value
        self.expected = expected
        msg = f"{strategy}({name}={value!r}) cannot draw anything: {name} must be {expected}"
        super().__init__(msg)


class Step(NamedTuple):
    """One call of an event in a drawn history.

    Parameters
    ----------
    event
        The event fired.
    source
        The status before the call.
    dest
        The status after it: ``source`` again when a guard held the move back.
    moved
        Whether the move happened (False only for a guarded event whose guard failed).
    at
        When the call was made (timezone-aware UTC; strictly later than the step before).
    ended_at
        When the session ended, as known after this call (None before ``end``).
    """

    event: EventName
    source: RecordStatus
    dest: RecordStatus
    moved: bool
    at: datetime
    ended_at: datetime | None

    def fire(self, session: Session) -> bool:
        """Make this call on ``session``, with the times the history was drawn with.

        Parameters
        ----------
        session
            A session in ``source`` whose ``ended_at`` is this step's ``ended_at``
            (a session driven from the start of the history is).

        Returns
        -------
        bool
            What the event returned: ``moved``, for a session that follows the lifecycle.
        """
        trigger: Callable[..., bool] = getattr(session, self.event)
        if self.event == "end":
            return trigger(at=self.at)
        if self.event in _TIMED_EVENTS:
            return trigger(now=self.at, delay=FILE_DELAY)
        return trigger()


class SessionLogRow(TypedDict):
    """One row of a NexusLIMS ``session_log`` table (the database assigns ``id_session_log``)."""

    session_identifier: str
    instrument: str
    timestamp: datetime
    event_type: str
    record_status: str
    user: str


def _check_size(strategy: str, name: str, value: object, minimum: int) -> int:
    """Return ``value`` if it is an int of at least ``minimum``, else raise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidStrategyArgument(strategy, name, value, f"an int >= {minimum}")
    return value


def _check_start(value: object) -> RecordStatus:
    """Return ``value`` as a RecordStatus, else raise naming the valid statuses."""
    try:
        return parse_status(value)
    except LifecycleError:
        valid = ", ".join(status.value for status in RecordStatus)
        raise InvalidStrategyArgument(
            "legal_event_sequences", "start", value, f"a RecordStatus (one of {valid})"
        ) from None


def statuses() -> st.SearchStrategy[RecordStatus]:
    """Draw any :class:`~nexuslims_lifecycle.enums.RecordStatus` member.

    Returns
    -------
    SearchStrategy[RecordStatus]
        Shrinks towards WAITING_FOR_END.
    """
    return _STATUSES


def events() -> st.SearchStrategy[str]:
    """Draw any lifecycle event name, legal from somewhere or not.

    Returns
    -------
    SearchStrategy[str]
        Names from :data:`~nexuslims_lifecycle.rules.EVENTS`; shrinks towards ``"end"``.
    """
    return _EVENTS


def illegal_moves() -> st.SearchStrategy[tuple[RecordStatus, str]]:
    """Draw a (status, event) pair that the lifecycle forbids.

    Returns
    -------
    SearchStrategy[tuple[RecordStatus, str]]
        Every pair for which :func:`~nexuslims_lifecycle.legality.next_status` raises.

    Examples
    --------
    >>> from hypothesis import given
    >>> from nexuslims_lifecycle import IllegalTransition, next_status
    >>> @given(illegal_moves())
    ... def test_next_status_refuses_every_illegal_move(move):
    ...     try:
    ...         next_status(*move)
    ...     except IllegalTransition:
    ...         return
    ...     raise AssertionError(f"{move} was not refused")
    >>> test_next_status_refuses_every_illegal_move()
    """
    return st.sampled_from([(status, event) for status in _REFUSED for event in _REFUSED[status]])


@st.composite
def _guarded_time(
    draw: st.DrawFn, previous: datetime, ended_at: datetime | None
) -> tuple[datetime, bool]:
    """Draw when a file-delay-guarded call is made, and whether its guard then passes.

    Half the calls (when there is room) come before the delay has passed, half after;
    :func:`~nexuslims_lifecycle.rules.file_delay_elapsed` says which each one is.
    """
    ended = previous if ended_at is None else ended_at
    room = ended + FILE_DELAY - previous - timedelta(microseconds=1)
    if room >= timedelta(seconds=1) and not draw(st.booleans()):
        at = previous + draw(st.timedeltas(timedelta(seconds=1), room))
    else:
        earliest = max(previous + timedelta(seconds=1), ended + FILE_DELAY)
        at = earliest + draw(st.timedeltas(timedelta(0), timedelta(days=3)))
    return at, file_delay_elapsed(ended, at, FILE_DELAY)


@st.composite
def _history(draw: st.DrawFn, start: RecordStatus, max_size: int) -> tuple[datetime, list[Step]]:
    """Draw when a history begins and its legal steps from ``start``."""
    began = draw(_INSTANTS)
    ended_at = None if start is RecordStatus.WAITING_FOR_END else began
    status, at, steps = start, began, []
    for _ in range(draw(st.integers(0, max_size))):
        if status not in _ONWARD_FIRST:
            break
        event = draw(_ONWARD_FIRST[status])
        rule = LIFECYCLE.moves[status, event]
        if rule.guard == FILE_DELAY_GUARD:
            at, moved = draw(_guarded_time(at, ended_at))
        else:
            at, moved = at + draw(_GAPS), True
        if event == "end":
            ended_at = at
        dest = rule.dest if moved else status
        steps.append(Step(cast("EventName", event), status, dest, moved, at, ended_at))
        status = dest
    return began, steps


def legal_event_sequences(
    start: RecordStatus | str = RecordStatus.WAITING_FOR_END, max_size: int = 10
) -> st.SearchStrategy[list[Step]]:
    """Draw legal histories: calls that each succeed from where the last one left off.

    Over enough draws every move of the lifecycle appears, and a guarded event
    (``find_no_files``) appears both moving and held back by its guard (called
    before the file delay has passed since the session ended).

    Parameters
    ----------
    start
        The status the history starts from. A session that starts past
        WAITING_FOR_END is taken to have ended just before the first step (see
        :attr:`Step.ended_at`).
    max_size
        The most steps a history has; it may stop earlier, at any status.

    Returns
    -------
    SearchStrategy[list[Step]]
        Shrinks towards shorter histories, and towards events that keep a history
        going rather than end it.

    Raises
    ------
    InvalidStrategyArgument
        When ``start`` is not a status or ``max_size`` is not an int >= 0.
    """
    first = _check_start(start)
    size = _check_size("legal_event_sequences", "max_size", max_size, 0)
    return _history(first, size).map(lambda history: history[1])


@st.composite
def _legal_then_any(draw: st.DrawFn, max_size: int) -> list[str]:
    """Draw the moves of a legal history, or legal moves, a refused event and anything."""
    _, steps = draw(_history(RecordStatus.WAITING_FOR_END, max_size))
    moves: list[str] = [step.event for step in steps if step.moved]
    if draw(st.booleans()):
        return moves
    # Refuse from a status drawn first, so every status gets its share of refusals.
    target = draw(_STATUSES)
    reached = [RecordStatus.WAITING_FOR_END] + [step.dest for step in steps if step.moved]
    cuts = [cut for cut, status in enumerate(reached) if status is target]
    prefix = moves[: draw(st.sampled_from(cuts))] if cuts else _path_to(target)
    if len(prefix) >= max_size:
        return moves
    refused = draw(_REFUSED_EVENT[target])
    return [*prefix, refused, *draw(st.lists(events(), max_size=max_size - len(prefix) - 1))]


def _path_to(status: RecordStatus) -> list[str]:
    """Return the shortest legal moves from WAITING_FOR_END to ``status``."""
    path = legality.shortest_path(RecordStatus.WAITING_FOR_END, status)
    return [] if path is None else path


def event_sequences(max_size: int = 10) -> st.SearchStrategy[list[str]]:
    """Draw any event sequences from WAITING_FOR_END, legal or not.

    Half are legal; the other half follow the lifecycle for a while (perhaps not
    at all), then make an illegal move, then go anywhere: refusals happen from
    every status, not only at the first step.

    Parameters
    ----------
    max_size
        The most events in a sequence.

    Returns
    -------
    SearchStrategy[list[str]]
        Event names, for code that must accept the legal ones and refuse the rest.

    Raises
    ------
    InvalidStrategyArgument
        When ``max_size`` is not an int >= 0.
    """
    size = _check_size("event_sequences", "max_size", max_size, 0)
    return _legal_then_any(size)


def _rows_of(
    identifier: str, instrument: str, user: str, began: datetime, steps: list[Step]
) -> list[SessionLogRow]:
    """Return the rows NexusLIMS writes for one history, oldest first."""
    status = (steps[-1].dest if steps else RecordStatus.WAITING_FOR_END).value
    logged = [(began, EventType.START)] + [
        (step.at, EventType.END if step.event == "end" else EventType.RECORD_GENERATION)
        for step in steps
        if LIFECYCLE.moves[step.source, step.event].by != "operator"
    ]
    return [
        SessionLogRow(
            session_identifier=identifier,
            instrument=instrument,
            timestamp=at,
            event_type=kind.value,
            record_status=status,
            user=user,
        )
        for at, kind in logged
    ]


@st.composite
def _session_log(draw: st.DrawFn, max_sessions: int, max_steps: int) -> list[SessionLogRow]:
    """Draw the rows of 1 to ``max_sessions`` legal histories, in timestamp order."""
    count = draw(st.integers(1, max_sessions))
    numbers = draw(st.lists(st.integers(1, 10**6), min_size=count, max_size=count, unique=True))
    rows: list[SessionLogRow] = []
    for number in numbers:
        began, steps = draw(_history(RecordStatus.WAITING_FOR_END, max_steps))
        instrument, user = draw(st.sampled_from(_INSTRUMENTS)), draw(st.sampled_from(_USERS))
        rows += _rows_of(_NEMO_USAGE_EVENT.format(number), instrument, user, began, steps)
    return sorted(rows, key=lambda row: row["timestamp"])


def session_logs(
    max_sessions: int = 3, max_steps: int = 10
) -> st.SearchStrategy[list[SessionLogRow]]:
    """Draw the ``session_log`` rows NexusLIMS would hold for legal histories.

    Each session has a START row; an END row when it ended; one RECORD_GENERATION
    row per build attempt (every outcome event, including a ``find_no_files``
    held back by the file delay; an operator's ``retry`` or ``reprocess`` writes no
    row). Like NexusLIMS, every
    row of a session carries the session's current status. Timestamps are
    timezone-aware and strictly increase within a session; rows are sorted by
    timestamp, as a table filled over time would be.

    Parameters
    ----------
    max_sessions
        The most sessions in the table (at least one).
    max_steps
        The most events in each session's history.

    Returns
    -------
    SearchStrategy[list[SessionLogRow]]
        Rows ready to insert, e.g. with SQLAlchemy's ``insert(table)``.

    Raises
    ------
    InvalidStrategyArgument
        When ``max_sessions`` is not an int >= 1 or ``max_steps`` not an int >= 0.
    """
    sessions = _check_size("session_logs", "max_sessions", max_sessions, 1)
    steps = _check_size("session_logs", "max_steps", max_steps, 0)
    return _session_log(sessions, steps)
