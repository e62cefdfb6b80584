"""Retry a read-decide-write step when a concurrent writer won the race."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from nexuslims_lifecycle.errors import InvalidArgument, TransitionConflict

__all__ = ["retry_on_conflict"]

T = TypeVar("T")


def retry_on_conflict(step: Callable[[], T], *, attempts: int = 5, backoff: float = 0.005) -> T:
    """Call ``step`` until it does not raise :class:`TransitionConflict`, a few times at most.

    ``step`` should read what it needs and decide again on each call: a conflict
    means the session changed since the last read.

    Parameters
    ----------
    step
        A callable taking no arguments, e.g. ``lambda: store.advance(sid, "retry")``.
    attempts
        How many calls at most (>= 1).
    backoff
        Base pause in seconds between calls; it doubles each time, with jitter.

    Returns
    -------
    object
        What ``step`` returned.

    Raises
    ------
    TransitionConflict
        The last conflict, when every attempt conflicted.
    InvalidArgument
        When ``attempts`` is not a positive integer.

    Examples
    --------
    >>> calls = []
    >>> def step():
    ...     calls.append(1)
    ...     if len(calls) < 3:
    ...         raise TransitionConflict("s", "retry", expected=None, current="ERROR")
    ...     return "moved"
    >>> retry_on_conflict(step, backoff=0)
    'moved'
    >>> len(calls)
    3
    """
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise InvalidArgument("attempts", attempts, "an integer >= 1")
    for attempt in range(attempts - 1):
        try:
            return step()
        except TransitionConflict:
            time.sleep(backoff * (2**attempt) * (0.5 + random.random()))  # noqa: S311 - jitter
    return step()
