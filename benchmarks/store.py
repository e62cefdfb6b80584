"""Committed transitions per second of the session_log store, with real writer processes.

Run: ``python benchmarks/store.py`` (add ``--quick`` for a short run). Each scenario
starts a fresh database, seeds sessions (the rows ``start`` writes, inserted in bulk),
releases N writer processes together, and lets each make a fixed number of attempts.
Then it checks that nothing was lost: every committed move has exactly one history
entry and every session's rows agree.

Two workloads (``--workload``):

``lifecycle`` (the default; the targets are judged on it, and a miss exits 1)
    Each writer drives sessions of its own through whole NexusLIMS lifecycles
    (``_workers.PATHS``: mostly end then complete, some failing, retried, exported
    later, or without reservation or consent), and every tenth attempt races all
    the other writers on one shared session, expecting the status it read, so the
    losers see a conflict. Sessions keep the two to four rows real ones have.
``cycle``
    A stress case: every session goes round end, fail, retry, fail, ... for ever, so
    each fail adds a row and sessions grow to tens of rows, every one of which each
    move rewrites (NexusLIMS keeps the status on every row), and eight hot sessions
    take every tenth attempt of every writer.

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
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "store"))

# The throwaway PostgreSQL cluster and the process runner are shared with the tests.
import sqlalchemy as sa  # noqa: E402
from _pg_cluster import find_bindir, fresh_database, running_cluster  # noqa: E402
from _procs import run_workers  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
import _workers as workers  # noqa: E402

import _baselines  # noqa: E402
from nexuslims_lifecycle.enums import EventType, RecordStatus  # noqa: E402
from nexuslims_lifecycle.store import SessionLogStore  # noqa: E402
from nexuslims_lifecycle.store._schema import SESSION_LOG  # noqa: E402

HOT = 8  # sessions every writer races on in the cycle workload
SHARE_EVERY = 10  # every tenth attempt goes to a shared session
INSTRUMENT = "FEI-Titan-TEM-635816"
TARGETS = {("SQLite file", 4): 1000, ("PostgreSQL", 8): 2000}
"""Committed transitions/s each scenario must reach (issue 5), on the lifecycle workload."""
RATIO_TARGETS = {
    "PostgreSQL store / pgbench -N, 8 clients": 0.75,
    "SQLite store / bare sqlite3 loop, 4 writers": 0.5,
    "SQLite guarded / unguarded whole-session UPDATEs": 0.5,
    "PostgreSQL guarded / unguarded whole-session UPDATEs": 0.5,
}
"""Ratios to baselines measured in the same run (issue 12); a miss exits 1."""


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
    """Start ``count`` sessions in one transaction: the rows and entries ``start`` writes."""
    sids = [f"https://nemo.example.org/api/usage_events/?id={n}" for n in range(count)]
    at = datetime.now(UTC).isoformat()
    waiting = RecordStatus.WAITING_FOR_END.value
    with SessionLogStore(url) as store:
        store.init(wal=not url.startswith("postgresql"))  # the benchmark's own file
        with store.engine.begin() as conn:
            conn.execute(
                SESSION_LOG.insert(),
                [
                    {
                        "session_identifier": sid,
                        "instrument": INSTRUMENT,
                        "timestamp": at,
                        "event_type": EventType.START.value,
                        "record_status": waiting,
                        "user": "bench",
                    }
                    for sid in sids
                ],
            )
            # (the guard writes each session's first history entry)
        if store.engine.dialect.name == "postgresql":  # as autovacuum would after a bulk load
            with store.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
        assert store.status(sids[-1]) is RecordStatus.WAITING_FOR_END
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


def scenario(backend: str, url: str, writers: int, moves: int, workload: str) -> Result:
    if workload == "cycle":
        sessions = 200
        sids = seed(url, sessions)
        # Each writer mostly moves sessions of its own and every tenth move races the
        # others on a few shared sessions.
        hot, rest = sids[:HOT], sids[HOT:]
        jobs = [
            {"url": url, "name": f"w{n}", "own": rest[n::writers], "shared": hot, "moves": moves}
            for n in range(writers)
        ]
        target = workers.drive
    else:
        own = moves // 2 + 1  # the shortest path has two moves
        shared = writers * moves // SHARE_EVERY + 2
        sessions = writers * own + shared
        sids = seed(url, sessions)
        jobs = [
            {
                "url": url,
                "name": f"w{n}",
                "own": sids[n * own : (n + 1) * own],
                "shared": sids[writers * own :],
                "moves": moves,
                "share_every": SHARE_EVERY,
            }
            for n in range(writers)
        ]
        target = workers.live
    reports = run_workers(target, jobs)
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
    parser.add_argument("--workload", choices=("lifecycle", "cycle"), default="lifecycle")
    args = parser.parse_args()
    moves = 500 if args.quick else 3000
    results = []
    ratios: list[tuple[str, float, float]] = []  # (what, ours, baseline)
    for writers in (1, 4):
        with sqlite_file() as url:
            results.append(scenario("SQLite file", url, writers, moves, args.workload))
        with sqlite_file() as url:
            bare = _baselines.bare_sqlite(url, writers, moves)
        ratios.append(
            (f"SQLite store / bare sqlite3 loop, {writers} writers", results[-1].rate, bare)
        )
    with sqlite_file() as guarded, sqlite_file() as unguarded:
        ratios.append(
            (
                "SQLite guarded / unguarded whole-session UPDATEs",
                _baselines.whole_session_updates(guarded, guard=True, moves=moves),
                _baselines.whole_session_updates(unguarded, guard=False, moves=moves),
            )
        )
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
                    results.append(scenario(label, url, writers, moves, args.workload))
                    tps = _baselines.pgbench(
                        fresh_database(admin, f"pgbench{writers}"), writers, 5 if args.quick else 15
                    )
                    ratios.append(
                        (f"{label} store / pgbench -N, {writers} clients", results[-1].rate, tps)
                    )
                ratios.append(
                    (
                        f"{label} guarded / unguarded whole-session UPDATEs",
                        _baselines.whole_session_updates(
                            fresh_database(admin, "guarded"), guard=True, moves=moves
                        ),
                        _baselines.whole_session_updates(
                            fresh_database(admin, "unguarded"), guard=False, moves=moves
                        ),
                    )
                )
    judged = args.workload == "lifecycle" and not args.quick
    print(f"workload: {args.workload}, {moves} attempts per writer")
    print(f"{'backend':<38} {'writers':>7} {'committed':>9} {'conflicts':>9} "
          f"{'seconds':>8} {'commits/s':>9} {'lost':>4}  target")  # fmt: skip
    failed = False
    for r in results:
        target = TARGETS.get((r.backend, r.writers)) if judged else None
        verdict = ""
        if target is not None:
            verdict = f">= {target:,}/s: {'PASS' if r.rate >= target else 'FAIL'}"
            failed |= r.rate < target
        print(f"{r.backend:<38} {r.writers:>7} {r.commits:>9} {r.conflicts:>9} "
              f"{r.seconds:>8.2f} {r.rate:>9.0f} {r.lost:>4}  {verdict}")  # fmt: skip
    print()
    print(f"{'ratio (same run)':<56} {'ours/s':>8} {'baseline/s':>10} {'ratio':>6}  target")
    for what, ours, baseline in ratios:
        ratio = ours / baseline
        target = RATIO_TARGETS.get(what) if judged else None
        verdict = ""
        if target is not None:
            verdict = f">= {target:.2f}x: {'PASS' if ratio >= target else 'FAIL'}"
            failed |= ratio < target
        print(f"{what:<56} {ours:>8.0f} {baseline:>10.0f} {ratio:>5.2f}x  {verdict}")
    return 1 if failed or any(r.lost for r in results) else 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"(total {time.perf_counter() - started:.0f} s)")
    sys.exit(code)
