"""Audit speed and memory on a large SQLite session_log, side by side with a plain scan.

Run: ``python benchmarks/audit.py [--rows 1000000] [--json FILE]``. The database is
generated once into ``benchmarks/.cache/`` and reused. Target (issue 6): 1,000,000
rows audited in <= 10 s here; memory flat as the database grows.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from nexuslims_lifecycle.audit import audit
from nexuslims_lifecycle.testing.fixtures import build_database

CACHE = Path(__file__).parent / ".cache"
ROWS_PER_SESSION = 3.34  # what the generator averages (START, END, build attempts)
FIXTURES = "nx28"  # the generator's shapes: a new tag when they change, so no stale cache
NOW = datetime(2026, 11, 28, tzinfo=UTC)


def database(rows: int) -> Path:
    """Return a generated database of about ``rows`` rows, building it once."""
    sessions = int(rows / ROWS_PER_SESSION)
    path = CACHE / f"audit-{FIXTURES}-{sessions}.db"
    if not path.exists():
        CACHE.mkdir(exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        build_database(partial, sessions=sessions, seed=1, now=NOW)
        partial.rename(path)
    return path


def plain_scan(path: Path) -> float:
    """Seconds to read every column of every row once, in table order."""
    start = time.perf_counter()
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        for _ in conn.execute("SELECT * FROM session_log"):
            pass
    return time.perf_counter() - start


def timed_audit(path: Path) -> tuple[float, int]:
    """Seconds to audit the database, and the rows it read."""
    start = time.perf_counter()
    report = audit(path, now=NOW)
    if not report.clean:
        sys.exit(f"generated database not clean: {report.counts}")
    return time.perf_counter() - start, report.rows


def peak_memory(path: Path) -> int:
    """Peak bytes allocated (tracemalloc) while auditing."""
    tracemalloc.start()
    audit(path, now=NOW)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> int:
    """Measure and print; exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    big, small = database(args.rows), database(args.rows // 10)
    scans, audits = [], []
    for _ in range(args.repeats):  # alternate so both see the same machine load
        scans.append(plain_scan(big))
        seconds, rows = timed_audit(big)
        audits.append(seconds)
    scan, best = min(scans), min(audits)
    small_peak, big_peak = peak_memory(small), peak_memory(big)
    results = {
        "rows": rows,
        "audit_seconds": round(best, 2),
        "plain_scan_seconds": round(scan, 2),
        "ratio_to_scan": round(best / scan, 1),
        "peak_bytes_at_10pct": small_peak,
        "peak_bytes_at_full": big_peak,
        "memory_growth": round(big_peak / small_peak, 2),
    }
    print(f"audit of {rows:,} rows: {best:.2f} s (target <= 10 s)")
    print(f"plain full scan of the same table: {scan:.2f} s; audit / scan = {best / scan:.1f}x")
    print(
        f"peak memory: {small_peak / 1e6:.1f} MB at {rows // 10:,} rows, "
        f"{big_peak / 1e6:.1f} MB at {rows:,} rows ({big_peak / small_peak:.2f}x for 10x rows)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    ok = best <= 10 * args.rows / 1_000_000 and big_peak < 2 * small_peak
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
