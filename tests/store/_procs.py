"""Run store workers in real processes (forkserver context) and collect their reports."""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable
from typing import Any

TIMEOUT = 180.0  # a hung worker fails the test instead of hanging CI


def process_context() -> Any:
    """Return the forkserver context, its server preloaded with the store (no engine yet).

    Forking from a server that has imported SQLAlchemy but opened nothing is safe and
    makes each worker start in milliseconds instead of a second of imports.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["nexuslims_lifecycle.store._workers"])
    return context


def run_workers(target: Callable[..., None], jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Start one process per job, all released together; return their reports by name."""
    context = process_context()
    barrier = context.Barrier(len(jobs))
    results = context.Queue()
    processes = [
        context.Process(target=target, kwargs={**job, "barrier": barrier, "results": results})
        for job in jobs
    ]
    for process in processes:
        process.start()
    reports = []
    try:
        for _ in jobs:
            reports.append(results.get(timeout=TIMEOUT))
    except queue.Empty:
        codes = [process.exitcode for process in processes]
        raise AssertionError(f"a worker reported nothing; exit codes {codes}") from None
    finally:
        for process in processes:
            process.join(timeout=TIMEOUT)
            if process.is_alive():
                process.kill()
    assert [process.exitcode for process in processes] == [0] * len(jobs)
    return sorted(reports, key=lambda report: report["name"])
