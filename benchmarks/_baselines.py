"""Baselines the store's benchmark is judged against, measured on the same machine and run.

- :func:`pgbench` runs PostgreSQL's own ``pgbench -N`` (an UPDATE, a SELECT and an
  INSERT per transaction: the shape of a move) on the store's cluster.
- :func:`bare_sqlite` runs processes that each loop ``BEGIN IMMEDIATE``, the UPDATE of
  a session's rows, the history INSERT and ``COMMIT`` with the standard ``sqlite3``
  module: a move with nothing but the database's own cost.
- :func:`whole_session_updates` measures NexusLIMS-style ``UPDATE session_log SET
  record_status = ? WHERE session_identifier = ?`` per second on one connection, to
  compare a guarded database with an unguarded one.
"""

from __future__ import annotations

import multiprocessing
import re
import sqlite3
import subprocess
import time
from typing import Any

import sqlalchemy as sa

from nexuslims_lifecycle.store import SessionLogStore

_SESSIONS = 200
_ROWS = ("START", "END", "RECORD_GENERATION")


def pgbench(url: str, clients: int, seconds: int) -> float:
    """Return ``pgbench -N``'s transactions/s with ``clients`` clients on ``url``'s cluster."""
    where = sa.make_url(url)
    common = ["-h", str(where.host), "-p", str(where.port), "-U", str(where.username)]
    database = str(where.database)
    subprocess.run(["pgbench", *common, "-i", "-q", "-s", "8", database], check=True,
                   capture_output=True)  # fmt: skip
    done = subprocess.run(
        ["pgbench", *common, "-N", "-c", str(clients), "-j", str(clients), "-T", str(seconds),
         database],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    found = re.search(r"tps = ([0-9.]+)", done.stdout)
    if found is None:
        msg = f"no tps in pgbench's output: {done.stdout}"
        raise RuntimeError(msg)
    return float(found.group(1))


def _bare_writer(path: str, sids: list[str], moves: int, start: Any, results: Any) -> None:
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    start.wait()
    began = time.perf_counter()
    for n in range(moves):
        sid = sids[n % len(sids)]
        old, new = ("ERROR", "TO_BE_BUILT") if (n // len(sids)) % 2 else ("TO_BE_BUILT", "ERROR")
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError:
                time.sleep(0.0002)
        conn.execute(
            "UPDATE session_log SET record_status = ? WHERE session_identifier = ? "
            "AND record_status = ?",
            (new, sid, old),
        )
        conn.execute(
            "INSERT INTO status_history (session_identifier, seq, from_status, to_status, "
            "event, actor, at) SELECT ?, coalesce(max(seq), 0) + 1, ?, ?, 'fail', 'bench', ? "
            "FROM status_history WHERE session_identifier = ?",
            (sid, old, new, "2026-01-01T00:00:00+00:00", sid),
        )
        conn.execute("COMMIT")
    results.put(time.perf_counter() - began)
    conn.close()


def bare_sqlite(path: str, writers: int, moves: int) -> float:
    """Return the moves/s of ``writers`` bare ``sqlite3`` processes on a fresh WAL file."""
    with SessionLogStore(path) as store:
        store.init(wal=True, guard=False)
    conn = sqlite3.connect(path, isolation_level=None)
    sids = [f"bare-{n}" for n in range(_SESSIONS)]
    conn.executemany(
        "INSERT INTO session_log (session_identifier, instrument, timestamp, event_type, "
        "record_status) VALUES (?, 'I', 't', ?, 'TO_BE_BUILT')",
        [(sid, kind) for sid in sids for kind in _ROWS[:2]],
    )
    conn.close()
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    processes = [
        context.Process(target=_bare_writer, args=(path, sids[n::writers], moves, start, results))
        for n in range(writers)
    ]
    for process in processes:
        process.start()
    time.sleep(1.0)  # (the children import and connect)
    start.set()
    seconds = max(results.get(timeout=600) for _ in processes)
    for process in processes:
        process.join()
    return writers * moves / seconds


def whole_session_updates(url: str, *, guard: bool, moves: int) -> float:
    """Return NexusLIMS-style whole-session UPDATEs/s (retry, fail, ...) on one connection."""
    with SessionLogStore(url) as store:
        store.init(guard=guard)
        engine = store.engine
    sids = [f"whole-{n}" for n in range(_SESSIONS)]
    insert = sa.text(
        "INSERT INTO session_log (session_identifier, instrument, timestamp, event_type, "
        "record_status) VALUES (:s, 'I', 't', :e, 'TO_BE_BUILT')"
    )
    with engine.begin() as conn:
        for sid in sids:
            for kind in _ROWS:
                conn.execute(insert, {"s": sid, "e": kind})
    update = sa.text("UPDATE session_log SET record_status = :r WHERE session_identifier = :s")
    with engine.connect() as conn:
        began = time.perf_counter()
        for n in range(moves):
            status = "ERROR" if (n // _SESSIONS) % 2 == 0 else "TO_BE_BUILT"
            conn.execute(update, {"r": status, "s": sids[n % _SESSIONS]})
            conn.commit()
        seconds = time.perf_counter() - began
    engine.dispose()
    return moves / seconds
