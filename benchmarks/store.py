"""Committed transitions per second of the session_log store, with real writer processes.

Run: ``python benchmarks/store.py`` (add ``--quick`` for a short run). Each scenario
starts a fresh database, seeds sessions, releases N writer processes together, and
lets each make a fixed number of attempts on the shared sessions (read once, then
expect the status last seen: a race lost to another writer is a conflict). Then it
checks that nothing was lost: every committed move has exactly one history entry and
every session's rows agree.

PostgreSQL runs on a throwaway local cluster (Debian's ``postgresql`` package)
with its default durability (fsync on); pass ``--pg-async-commit`` to measure with
``synchronous_commit=off`` as well.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "store"))

# The throwaway PostgreSQL cluster and the process runner are shared with the tests.
import sqlalchemy as sa  # noqa: E402
from _pg_cluster import find_bindir, fresh_database, running_cluster  # noqa: E402
from _procs import run_workers  # noqa: E402

from nexuslims_lifecycle.store import SessionLogStore  # noqa: E402
from nexuslims_lifecycle.store import _workers as workers  # noqa: E402

HOT = 8  # sessions every writer races on


@dataclass
class Result:
    backend: str
    writers: int
    commits: int
    conflicts: int
    seconds: float
    lost: int

    @property
    def rate(self) -> float:
        return self.commits / self.seconds


def seed(url: str, count: int) -> list[str]:
    with SessionLogStore(url) as store:
        store.init()
        sids = [f"https://nemo.example.org/api/usage_events/?id={n}" for n in range(count)]
        for sid in sids:
            store.start(sid, instrument="FEI-Titan-TEM-635816", user="bench")
    return sids


def lost(url: str, sessions: int, commits: int) -> int:
    """Committed moves missing from (or extra in) the history, plus sessions whose rows disagree."""
    engine = SessionLogStore(url).engine
    with engine.connect() as conn:
        entries = conn.execute(sa.text("SELECT count(*) FROM status_history")).scalar_one()
        torn = conn.execute(
            sa.text(
                "SELECT count(*) FROM (SELECT session_identifier FROM session_log "
                "GROUP BY session_identifier HAVING count(DISTINCT record_status) > 1) t"
            )
        ).scalar_one()
    engine.dispose()
    return abs(entries - sessions - commits) + torn


def scenario(backend: str, url: str, writers: int, moves: int, sessions: int) -> Result:
    sids = seed(url, sessions)
    # Each writer mostly moves sessions of its own (a builder's claimed work) and every
    # tenth move races the others on a few shared sessions (an operator's requeue).
    hot, rest = sids[:HOT], sids[HOT:]
    jobs = [
        {"url": url, "name": f"w{n}", "own": rest[n::writers], "shared": hot, "moves": moves}
        for n in range(writers)
    ]
    reports = run_workers(workers.drive, jobs)
    commits = sum(r["commits"] for r in reports)
    return Result(
        backend,
        writers,
        commits,
        sum(r["conflicts"] for r in reports),
        max(r["seconds"] for r in reports),
        lost(url, sessions, commits),
    )


@contextmanager
def sqlite_file() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as directory:
        yield str(Path(directory) / "bench.db")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer moves per writer")
    parser.add_argument("--pg-async-commit", action="store_true")
    args = parser.parse_args()
    moves = 500 if args.quick else 3000
    sessions = 200
    results = []
    for writers in (1, 4):
        with sqlite_file() as url:
            results.append(scenario("SQLite file", url, writers, moves, sessions))
    if find_bindir() is None:
        print("PostgreSQL not installed: skipped (apt-get install postgresql)")
    else:
        settings = [("PostgreSQL", False)]
        if args.pg_async_commit:
            settings.append(("PostgreSQL (synchronous_commit=off)", True))
        for label, fast in settings:
            with running_cluster(fast=fast) as admin:
                for writers in (1, 8):
                    url = fresh_database(admin, f"bench{writers}")
                    results.append(scenario(label, url, writers, moves, sessions))
    print(f"{'backend':<38} {'writers':>7} {'committed':>9} {'conflicts':>9} "
          f"{'seconds':>8} {'commits/s':>9} {'lost':>4}")  # fmt: skip
    for r in results:
        print(f"{r.backend:<38} {r.writers:>7} {r.commits:>9} {r.conflicts:>9} "
              f"{r.seconds:>8.2f} {r.rate:>9.0f} {r.lost:>4}")  # fmt: skip
    return 1 if any(r.lost for r in results) else 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"(total {time.perf_counter() - started:.0f} s)")
    sys.exit(code)
