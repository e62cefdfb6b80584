"""Worker processes for the reliability tests and the store benchmark.

Each function runs in its own process (``multiprocessing`` with the ``spawn``
context), opens its own store, waits at ``barrier`` so that all workers start
together, and puts one result dict on ``results``.
"""

from __future__ import annotations

import time
from typing import Any, Final

from sqlalchemy import event

from nexuslims_lifecycle.cli._demo_store import build, run_processes
from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import IllegalTransition, TransitionConflict
from nexuslims_lifecycle.store import SessionLogStore, _moves

__all__ = [
    "CYCLE",
    "PATHS",
    "SHARED_PATH",
    "build",
    "drive",
    "live",
    "mixed",
    "race",
    "raw_race",
    "run_processes",
]

CYCLE: Final = {
    RecordStatus.WAITING_FOR_END: "end",
    RecordStatus.TO_BE_BUILT: "fail",
    RecordStatus.ERROR: "retry",
}
"""The move :func:`drive` makes from each status: a cycle that never ends."""

PATHS: Final = (
    *[("end", "complete")] * 6,
    ("end", "fail", "retry", "complete"),
    ("end", "fail_export", "complete"),
    ("end", "find_no_reservation"),
    ("end", "deny_consent"),
)
"""The lifecycles of :func:`live`'s sessions, in turn: of every ten sessions six are
built at once, one fails and is built on a retry, one is built but exported later,
one has no reservation and one has no consent (2.3 moves per session)."""

SHARED_PATH: Final = {
    RecordStatus.WAITING_FOR_END: "end",
    RecordStatus.TO_BE_BUILT: "fail_export",
    RecordStatus.BUILT_NOT_EXPORTED: "complete",
}
"""The move :func:`live` makes from each status of a shared session, until COMPLETED."""


def race(
    *,
    url: str,
    name: str,
    plans: dict[str, list[tuple[str, str | None]]],
    barrier: Any,
    results: Any,
) -> None:
    """Try every move of each session's plan, each expecting its source status (if given).

    Reports ``{"name", "wins": [[sid, event], ...], "conflicts", "refused"}``; a
    refused move is one the lifecycle did not allow from the status found.
    """
    wins: list[list[str]] = []
    conflicts = refused = 0
    with SessionLogStore(url) as store:
        store.status(next(iter(plans)))  # connect before the start line
        barrier.wait()
        for sid, plan in plans.items():
            for name_of_event, source in plan:
                try:
                    store.advance(sid, name_of_event, actor=name, expected=source)
                except TransitionConflict:
                    conflicts += 1
                except IllegalTransition:
                    refused += 1
                else:
                    wins.append([sid, name_of_event])
    results.put({"name": name, "wins": wins, "conflicts": conflicts, "refused": refused})


def raw_race(
    *,
    url: str,
    name: str,
    plans: dict[str, list[str]],
    barrier: Any,
    results: Any,
    rounds: int = 1,
) -> None:
    """Set each session's rows to each status of its plan by hand, as an operator does.

    Every write is NexusLIMS's shape, a blind ``UPDATE session_log SET record_status
    = ... WHERE session_identifier = ...`` in a transaction of its own, on a plain
    SQLAlchemy connection (no store): the database's guard alone checks and records
    it. ``rounds`` > 1 (or 0: forever) repeats the plans. Reports ``{"name",
    "accepted", "refused", "failed"}``: refused by the guard, failed for any other
    database error (a deadlock victim on PostgreSQL).
    """
    from sqlalchemy import exc, text

    accepted = refused = failed = 0
    update = text("UPDATE session_log SET record_status = :r WHERE session_identifier = :s")
    with SessionLogStore(url) as store:
        engine = store.engine
        barrier.wait()
        done = 0
        while rounds == 0 or done < rounds:
            done += 1
            for sid, plan in plans.items():
                for status in plan:
                    try:
                        with engine.begin() as conn:
                            conn.execute(update, {"r": status, "s": sid})
                    except exc.IntegrityError:
                        refused += 1
                    except exc.DBAPIError:
                        failed += 1
                    else:
                        accepted += 1
    results.put({"name": name, "accepted": accepted, "refused": refused, "failed": failed})


def mixed(*, kind: str, **job: Any) -> None:
    """Run :func:`race` (``kind="store"``) or :func:`raw_race` (``kind="raw"``) with ``job``.

    So one :func:`run_processes` call starts store writers and raw writers together.
    """
    (race if kind == "store" else raw_race)(**job)


def drive(
    *,
    url: str,
    name: str,
    own: list[str],
    shared: list[str],
    moves: int | None,
    barrier: Any,
    results: Any,
    stall: float = 0.0,
    share_every: int = 10,
) -> None:
    """Move sessions round :data:`CYCLE`, ``moves`` attempts in all (None: forever).

    Most attempts move this writer's ``own`` sessions (it knows their status from its
    own moves); every ``share_every``-th attempt, or every attempt when it owns none,
    reads a ``shared`` session and advances it expecting what it read, so a race lost
    to another writer is a conflict. With ``stall``, every transaction waits that
    long inside (:func:`_stall_inside_transactions`), so a kill almost always lands
    inside one. Reports ``{"name",
    "commits", "conflicts", "seconds"}``.
    """
    commits = conflicts = 0
    known: dict[str, RecordStatus] = {}
    with SessionLogStore(url) as store:
        if stall:
            _stall_inside_transactions(store, stall)
        store.status((own or shared)[0])
        barrier.wait()
        began = time.perf_counter()
        attempt = 0
        while moves is None or attempt < moves:
            if shared and (not own or attempt % share_every == 0):
                sid = shared[(attempt // share_every) % len(shared)]
                status = store.status(sid)
            else:
                sid = own[attempt % len(own)]
                status = known.get(sid) or store.status(sid)
            attempt += 1
            moved = _attempt(store, sid, CYCLE[status], name, status)
            if moved is None:
                conflicts += 1
            else:
                known[sid] = moved
                commits += 1
        seconds = time.perf_counter() - began
    results.put({"name": name, "commits": commits, "conflicts": conflicts, "seconds": seconds})


def live(
    *,
    url: str,
    name: str,
    own: list[str],
    shared: list[str],
    moves: int,
    barrier: Any,
    results: Any,
    share_every: int = 10,
) -> None:
    """Drive sessions through whole lifecycles, ``moves`` attempts in all.

    This writer's ``own`` sessions (the i-th follows ``PATHS[i % len(PATHS)]``) are
    moved one after another, each along its whole path, by this writer alone. Every
    ``share_every``-th attempt goes to the first of the ``shared`` sessions not yet
    COMPLETED, which every writer works on at once: each reads its status and moves
    it by :data:`SHARED_PATH` expecting that status, so racers that lose see a
    conflict. Reports ``{"name", "commits", "conflicts", "seconds"}``.

    Raises
    ------
    IndexError
        When ``own`` or ``shared`` runs out before ``moves`` attempts were made.
    """
    commits = conflicts = 0
    session = step = current = 0  # own session and step on its path; shared session
    with SessionLogStore(url) as store:
        store.status((own or shared)[0])
        barrier.wait()
        began = time.perf_counter()
        for attempt in range(moves):
            expected: RecordStatus | None = None
            if shared and attempt % share_every == 0:
                while (expected := store.status(shared[current])) not in SHARED_PATH:
                    current += 1
                sid, event = shared[current], SHARED_PATH[expected]
            else:
                path = PATHS[session % len(PATHS)]
                sid, event = own[session], path[step]
                step += 1
                if step == len(path):
                    session, step = session + 1, 0
            if _attempt(store, sid, event, name, expected) is None:
                conflicts += 1
            else:
                commits += 1
        seconds = time.perf_counter() - began
    results.put({"name": name, "commits": commits, "conflicts": conflicts, "seconds": seconds})


def _attempt(
    store: SessionLogStore, sid: str, event: str, actor: str, expected: RecordStatus | None
) -> RecordStatus | None:
    """Try one move; return the new status, or None when another writer won the race."""
    try:
        return store.advance(sid, event, actor=actor, expected=expected)
    except TransitionConflict:
        return None


def _stall_inside_transactions(store: SessionLogStore, seconds: float) -> None:
    """Make this process's writes wait ``seconds`` inside each transaction.

    Before each commit made through SQLAlchemy, and between reading a session and
    writing its move (PostgreSQL's ``advance`` runs in autocommit, each statement
    its own transaction, so a kill there lands between its read and its write).
    """
    event.listen(store.engine, "commit", lambda _conn: time.sleep(seconds))
    decide = _moves.decide

    def stalled(*args: Any, **kwargs: Any) -> Any:
        time.sleep(seconds)
        return decide(*args, **kwargs)

    _moves.decide = stalled
