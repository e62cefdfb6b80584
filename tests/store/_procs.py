"""Run store workers in real processes (forkserver context) and collect their reports."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any

from nexuslims_lifecycle.cli._demo_store import run_processes

TIMEOUT = 180.0  # a hung worker fails the test instead of hanging CI


def process_context() -> Any:
    """Return the forkserver context, its server preloaded with the store (no engine yet).

    Forking from a server that has imported SQLAlchemy but opened nothing is safe and
    makes each worker start in milliseconds instead of a second of imports.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["_workers"])
    return context


def run_workers(target: Callable[..., None], jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Start one process per job, all released together; return their reports by name."""
    process_context()
    return run_processes(target, jobs, method="forkserver", timeout=TIMEOUT)
