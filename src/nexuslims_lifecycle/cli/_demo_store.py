"""The ``demo`` job on an embedded SQLite file: a queue drained by builder processes.

It recreates ``demo.db`` in the working directory, starts twenty NEMO sessions,
lets builder processes claim and build them, requeues the failures, shows a refused
illegal move and a conflict between two workers, and prints the sessions and one
session's history. :func:`run` takes an ``epilogue`` to append more steps (an audit).
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, cast

from rich import box
from rich.console import Console
from rich.table import Table

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import IllegalTransition, LifecycleError, TransitionConflict
from nexuslims_lifecycle.rules import EventName
from nexuslims_lifecycle.store import SessionLogStore, retry_on_conflict

__all__ = ["DEMO_DB", "Epilogue", "build", "run", "run_processes"]

DEMO_DB: Final = Path("demo.db")
NEMO_USAGE_EVENT: Final = "https://nemo.example.org/api/usage_events/?id={}"
INSTRUMENTS: Final = (
    "FEI-Titan-TEM-635816",
    "JEOL-JEM3010-TEM-565989",
    "FEI-Quanta200-ESEM-633137",
    "FEI-Helios-DB-636663",
)
USERS: Final = ("ada", "grace", "rosalind", "marie", "lise")
SESSIONS: Final = 20
RUNNING: Final = 4  # the newest sessions have not ended yet
# First build round: what the builder finds for some sessions (by position); the rest complete.
FIRST_OUTCOMES: Final = {
    5: "find_no_files",  # ended almost four days ago: the file delay has passed
    1: "fail",
    2: "fail_export",
    3: "find_no_reservation",
    4: "deny_consent",
    7: "fail",
}
LEASE: Final = 600.0

Epilogue = Callable[[SessionLogStore, Console], None]
"""A step run after the demo, with its store and console (e.g. an audit)."""


def _fresh(path: Path) -> None:
    """Remove the demo database and its WAL files, so every run starts the same."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _start_sessions(store: SessionLogStore, now: datetime) -> list[str]:
    """Start the sessions, oldest first, and end all but the newest few."""
    sids = []
    for number in range(SESSIONS):
        sid = NEMO_USAGE_EVENT.format(5001 + number)
        began = now - timedelta(days=5) + timedelta(hours=5 * number)
        store.start(
            sid,
            instrument=INSTRUMENTS[number % len(INSTRUMENTS)],
            user=USERS[number % len(USERS)],
            at=began,
        )
        if number < SESSIONS - RUNNING:
            store.advance(sid, "end", actor="nemo-harvester", at=began + timedelta(hours=2))
        sids.append(sid)
    return sids


def _worker_conflict(store: SessionLogStore, console: Console) -> None:
    """Show a builder refused an outcome for a session another builder has claimed."""
    claim = store.claim_next("builder-east", lease=LEASE)
    if claim is None:  # pragma: no cover - the demo always has a queue here
        return
    console.print(f"builder-east claimed [bold]{claim.session_identifier}[/]")
    try:
        store.advance(claim.session_identifier, "complete", actor="builder-west")
    except TransitionConflict as conflict:
        console.print(f"[yellow]conflict refused[/]: {conflict}")
    store.advance(claim.session_identifier, "complete", actor="builder-east")
    console.print("builder-east completed it")


def _drain(url: str, builders: int, outcomes: dict[str, str], console: Console) -> None:
    """Let builder processes drain the queue, and say who built what."""
    jobs = [
        {"url": url, "worker": f"builder-{n + 1}", "lease": LEASE, "outcomes": outcomes}
        for n in range(builders)
    ]
    for report in run_processes(build, jobs):
        built = ", ".join(f"{_short(sid)} {outcome}" for sid, outcome in report["built"])
        console.print(f"{report['name']} built {len(report['built'])}: {built or '-'}")


def _requeue(store: SessionLogStore, console: Console) -> str | None:
    """Requeue what can be built again, as an operator would; return one requeued session."""
    first = None
    for info in list(store.sessions()):
        sid, status = info.session_identifier, info.status
        if status in (RecordStatus.ERROR, RecordStatus.NO_RESERVATION):
            retry_on_conflict(_requeue_step(store, sid))
            first = first or sid
            console.print(f"operator requeued {sid} ({status.value})")
        elif status is RecordStatus.BUILT_NOT_EXPORTED:
            store.advance(sid, "complete", actor="exporter", expected=status)
            console.print(f"exporter exported {sid} later: COMPLETED")
    return first


def _requeue_step(store: SessionLogStore, sid: str) -> Callable[[], RecordStatus]:
    """Return a step that reads the status and retries from it (again after a conflict)."""

    def step() -> RecordStatus:
        return store.advance(sid, "retry", actor="operator", expected=store.status(sid))

    return step


def _short(sid: str) -> str:
    """Return a NEMO usage event URL as ``…?id=N`` for narrow tables."""
    return "…?id=" + sid.rsplit("=", 1)[-1] if sid.startswith(NEMO_USAGE_EVENT[:-2]) else sid


def _refused_move(store: SessionLogStore, console: Console, sid: str) -> None:
    """Try to requeue a COMPLETED session: the lifecycle refuses it."""
    try:
        store.advance(sid, "retry", actor="operator")
    except IllegalTransition as error:
        console.print(f"[red]refused[/]: {error}")
    else:  # pragma: no cover - only reprocess leaves COMPLETED
        msg = "the demo's illegal move was not refused"
        raise LifecycleError(msg)


def _sessions_table(store: SessionLogStore) -> Table:
    table = Table(
        title=f"sessions in session_log ({NEMO_USAGE_EVENT.format('N')})", box=box.SIMPLE_HEAD
    )
    for column in ("session", "instrument", "user", "status"):
        table.add_column(column, no_wrap=True)
    for info in store.sessions():
        status = "?" if info.status is None else info.status.value
        status += " (building)" if info.being_built else ""
        table.add_row(_short(info.session_identifier), info.instrument, info.user or "", status)
    return table


def _history_table(store: SessionLogStore, sid: str) -> Table:
    table = Table(title=f"status_history of {sid}", box=box.SIMPLE_HEAD)
    for column in ("seq", "at (UTC)", "event", "status after", "actor"):
        table.add_column(column, no_wrap=True)
    for entry in store.history(sid):
        at = entry.at.astimezone(UTC)
        table.add_row(
            str(entry.seq),
            at.strftime("%m-%d %H:%M"),
            entry.event,
            entry.to_status.value,
            entry.actor or "",
        )
    return table


def run(
    console: Console,
    path: Path = DEMO_DB,
    *,
    builders: int = 3,
    epilogue: Epilogue | None = None,
) -> None:
    """Run the SQLite demo from scratch and print what happened.

    Parameters
    ----------
    console
        Where to print.
    path
        The SQLite file to (re)create.
    builders
        How many builder processes drain the queue.
    epilogue
        A step to run at the end with the store and the console, e.g. an audit.
    """
    _fresh(path)
    now = datetime.now(UTC)
    with SessionLogStore(path) as store:
        store.init(wal=True)  # the demo's own file, written by several builders at once
        sids = _start_sessions(store, now)
        console.print(f"started {len(sids)} sessions in {path} ({RUNNING} still running)")
        _worker_conflict(store, console)
        outcomes = {sids[n]: event for n, event in FIRST_OUTCOMES.items()}
        _drain(str(path), builders, outcomes, console)
        requeued = _requeue(store, console)
        _drain(str(path), builders, {}, console)
        completed = next(iter(store.sessions(RecordStatus.COMPLETED))).session_identifier
        _refused_move(store, console, completed)
        console.print(_sessions_table(store))
        console.print(_history_table(store, requeued or sids[0]))
        if epilogue is not None:
            epilogue(store, console)


def build(
    *,
    url: str,
    worker: str,
    lease: float,
    outcomes: dict[str, str],
    barrier: Any,
    results: Any,
) -> None:
    """Claim and build sessions until the queue is empty.

    The outcome of each build is ``outcomes.get(sid, "complete")``. Reports
    ``{"name", "built": [[sid, outcome], ...], "conflicts"}``.
    """
    built: list[list[str]] = []
    conflicts = 0
    with SessionLogStore(url) as store:
        next(store.sessions(), None)  # connect before the start line
        barrier.wait()
        while (claim := store.claim_next(worker, lease=lease)) is not None:
            outcome = outcomes.get(claim.session_identifier, "complete")
            try:
                store.advance(claim.session_identifier, cast("EventName", outcome), actor=worker)
            except TransitionConflict:
                conflicts += 1
            else:
                built.append([claim.session_identifier, outcome])
    results.put({"name": worker, "built": built, "conflicts": conflicts})


def run_processes(
    target: Callable[..., None],
    jobs: list[dict[str, Any]],
    *,
    method: str = "spawn",
    timeout: float = 180.0,
) -> list[dict[str, Any]]:
    """Run ``target`` once per job, each in its own process, released together.

    Parameters
    ----------
    target
        The function each process runs (e.g. :func:`build`).
    jobs
        Keyword arguments for each process (``barrier`` and ``results`` are added).
    method
        ``"spawn"`` or ``"forkserver"``: never plain fork once engines exist.
    timeout
        Seconds to wait for each report before giving up on a hung worker.

    Returns
    -------
    list[dict]
        The workers' reports, sorted by name.

    Raises
    ------
    RuntimeError
        When a worker reported nothing in time or exited with an error.
    """
    context: Any = multiprocessing.get_context(method)
    barrier = context.Barrier(len(jobs))
    results = context.Queue()
    processes = [
        context.Process(target=target, kwargs={**job, "barrier": barrier, "results": results})
        for job in jobs
    ]
    for process in processes:
        process.start()
    reports: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(reports) < len(jobs):
            try:
                reports.append(results.get(timeout=0.2))
            except queue.Empty:
                crashed = any(p.exitcode not in (None, 0) for p in processes)
                if crashed or time.monotonic() > deadline:
                    msg = f"a worker reported nothing; exit codes {_codes(processes)}"
                    raise RuntimeError(msg) from None
    finally:
        for process in processes:
            process.join(timeout=timeout)
            if process.is_alive():
                process.kill()
    if any(code != 0 for code in _codes(processes)):
        msg = f"a worker failed; exit codes {_codes(processes)}"
        raise RuntimeError(msg)
    return sorted(reports, key=lambda report: str(report["name"]))


def _codes(processes: list[Any]) -> list[int | None]:
    return [process.exitcode for process in processes]
