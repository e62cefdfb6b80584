"""Hypothesis strategies and a ready stateful test for code that follows the lifecycle.

Strategies draw statuses, events, legal and illegal histories, and the
``session_log`` rows NexusLIMS would hold for a legal history. Subclass
:class:`LifecycleStateMachine` to check your own code (a
:class:`~nexuslims_lifecycle.machine.Session` subclass with hooks, a store, a
listener) against the lifecycle: it drives a session through random legal and
illegal events and checks, after every step, that the session still behaves as
the lifecycle says.

This package needs Hypothesis (the ``test`` extra); :mod:`.strategies` holds the
strategies, :mod:`.stateful` the stateful test, :mod:`.fixtures` whole NexusLIMS-shaped
databases with planted defects.

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

from nexuslims_lifecycle.testing.stateful import LifecycleStateMachine
from nexuslims_lifecycle.testing.strategies import (
    InvalidStrategyArgument,
    SessionLogRow,
    Step,
    event_sequences,
    events,
    illegal_moves,
    legal_event_sequences,
    session_logs,
    statuses,
)

__all__ = [
    "InvalidStrategyArgument",
    "LifecycleStateMachine",
    "SessionLogRow",
    "Step",
    "event_sequences",
    "events",
    "illegal_moves",
    "legal_event_sequences",
    "session_logs",
    "statuses",
]
