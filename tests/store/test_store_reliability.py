"""Real processes racing on one database: exactly one winner, nothing lost, nothing torn.

These tests start writer processes against a SQLite file and a real PostgreSQL
server (see ``conftest.py``). They are marked ``slow`` (a few seconds each) but run
in CI; deselect them locally with ``-m "not slow"``.
"""

from __future__ import annotations

import multiprocessing.connection
import os
import random
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta

import _workers as workers
import pytest
import sqlalchemy as sa
from _consistency import problems
from _procs import TIMEOUT, process_context, run_workers

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.store import SessionLogStore

pytestmark = pytest.mark.slow

WRITERS = 4
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
# Plans whose moves leave from distinct statuses, so "expected source" names one move.
PLAN_BUILD = [("end", "WAITING_FOR_END"), ("fail_export", "TO_BE_BUILT"),
              ("complete", "BUILT_NOT_EXPORTED")]  # fmt: skip
PLAN_RETRY = [("retry", "ERROR"), ("deny_consent", "TO_BE_BUILT")]


def _seed(url: str, waiting: int, failed: int, to_build: int = 0) -> dict[str, list[str]]:
    """Start sessions: some WAITING_FOR_END, some in ERROR, some TO_BE_BUILT."""
    groups: dict[str, list[str]] = {"waiting": [], "failed": [], "to_build": []}
    with SessionLogStore(url) as store:
        store.init()
        for group, count in (("waiting", waiting), ("failed", failed), ("to_build", to_build)):
            for number in range(count):
                sid = f"https://nemo.example.org/api/usage_events/?id={group}-{number}"
                store.start(sid, instrument="FEI-Titan-TEM-635816", user="ada", at=T0)
                if group != "waiting":
                    store.advance(sid, "end", at=T0 + timedelta(hours=1))
                if group == "failed":
                    store.advance(sid, "fail")
                groups[group].append(sid)
    return groups


def _history(url: str) -> list[tuple[str, int, str, str | None]]:
    engine = sa.create_engine(SessionLogStore(url).url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT session_identifier, seq, event, actor FROM status_history")
        ).all()
    engine.dispose()
    return [tuple(row) for row in rows]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_racing_writers_make_each_move_exactly_once(request, backend):
    """K writers try every move; each move has one winner and the history holds exactly those."""
    url = request.getfixturevalue(f"{backend}_url")
    groups = _seed(url, waiting=12, failed=12)
    plans = dict.fromkeys(groups["waiting"], PLAN_BUILD)
    plans |= dict.fromkeys(groups["failed"], PLAN_RETRY)
    reports = run_workers(
        workers.race, [{"url": url, "name": f"w{n}", "plans": plans} for n in range(WRITERS)]
    )
    wins = Counter((sid, event) for report in reports for sid, event in report["wins"])
    wanted = {(sid, event) for sid, plan in plans.items() for event, _ in plan}
    assert set(wins) == wanted
    assert set(wins.values()) == {1}
    moves = len(wanted)
    assert sum(report["conflicts"] for report in reports) == (WRITERS - 1) * moves
    winner = {(sid, event): r["name"] for r in reports for sid, event in r["wins"]}
    raced = [(sid, ev, actor) for sid, _, ev, actor in sorted(_history(url)) if actor != "ada"]
    assert {(sid, ev): actor for sid, ev, actor in raced if (sid, ev) in wanted} == winner
    assert problems(url) == []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_racing_writers_without_an_expected_status_still_move_once(request, backend):
    """Blind writers all retry the same ERROR sessions: one wins, the rest are refused."""
    url = request.getfixturevalue(f"{backend}_url")
    groups = _seed(url, waiting=0, failed=16)
    plans = {sid: [("retry", None)] for sid in groups["failed"]}
    reports = run_workers(
        workers.race, [{"url": url, "name": f"w{n}", "plans": plans} for n in range(WRITERS)]
    )
    wins = Counter(sid for report in reports for sid, _ in report["wins"])
    assert wins == Counter(groups["failed"])
    losses = sum(report["conflicts"] + report["refused"] for report in reports)
    assert losses == (WRITERS - 1) * len(groups["failed"])
    assert problems(url) == []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_builders_draining_the_queue_build_every_session_exactly_once(request, backend):
    """Four builder processes claim from one queue: every session is built once, by one."""
    url = request.getfixturevalue(f"{backend}_url")
    sessions = _seed(url, waiting=0, failed=0, to_build=40)["to_build"]
    outcomes = {sid: ("fail", "fail_export", "complete")[n % 3] for n, sid in enumerate(sessions)}
    jobs = [
        {"url": url, "worker": f"builder-{n}", "lease": 600.0, "outcomes": outcomes}
        for n in range(4)
    ]
    reports = run_workers(workers.build, jobs)
    built = Counter(sid for report in reports for sid, _ in report["built"])
    assert built == Counter(sessions)
    assert sum(report["conflicts"] for report in reports) == 0
    with SessionLogStore(url) as store:
        statuses = {info.session_identifier: info.status for info in store.sessions()}
        with store.engine.connect() as conn:
            attempts = conn.execute(
                sa.text(
                    "SELECT session_identifier, count(*) FROM session_log "
                    "WHERE event_type = 'RECORD_GENERATION' GROUP BY session_identifier"
                )
            ).all()
            claims = conn.execute(sa.text("SELECT count(*) FROM build_claim")).scalar_one()
    expected = {"fail": RecordStatus.ERROR, "fail_export": RecordStatus.BUILT_NOT_EXPORTED,
                "complete": RecordStatus.COMPLETED}  # fmt: skip
    assert statuses == {sid: expected[outcome] for sid, outcome in outcomes.items()}
    assert dict(attempts) == dict.fromkeys(sessions, 1)
    assert claims == 0
    assert problems(url) == []


def _kill_rounds(url: str, sessions: list[str], rounds: int, seed: int) -> None:
    """Start two stalling writers, SIGKILL them at a random moment, ``rounds`` times."""
    context = process_context()
    chance = random.Random(seed)  # noqa: S311 - test timing, not security
    for round_number in range(rounds):
        barrier = context.Barrier(3)
        results = context.Queue()
        writers = [
            context.Process(
                target=workers.drive,
                kwargs={
                    "url": url,
                    "name": f"r{round_number}w{n}",
                    "own": [],
                    "shared": sessions,
                    "moves": None,
                    "barrier": barrier,
                    "results": results,
                    "stall": 0.01,
                },
            )
            for n in range(2)
        ]
        for writer in writers:
            writer.start()
        barrier.wait(timeout=TIMEOUT)
        multiprocessing.connection.wait([], timeout=chance.uniform(0.05, 0.3))
        for writer in writers:
            os.kill(writer.pid, signal.SIGKILL)
        for writer in writers:
            writer.join(timeout=TIMEOUT)
            assert writer.exitcode == -signal.SIGKILL
        assert problems(url) == [], f"after round {round_number}"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_writers_killed_mid_transaction_leave_the_database_consistent(request, backend):
    """SIGKILL writers inside their transactions, again and again: no torn or lost move."""
    url = request.getfixturevalue(f"{backend}_url")
    sessions = _seed(url, waiting=6, failed=2)["waiting"]
    before = len(_history(url))
    _kill_rounds(url, sessions, rounds=8, seed=5)
    assert len(_history(url)) > before  # the writers did make moves between the kills
    with SessionLogStore(url) as store:
        if backend == "sqlite":
            with store.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        for sid in sessions:
            entries = store.history(sid)
            assert store.status(sid) is entries[-1].to_status


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_raw_sql_and_store_writers_racing_record_each_move_once(request, backend):
    """Operators' blind UPDATEs and store writers retry and then deny consent at once.

    Whoever wins a move, the guard records it exactly once: one ``retry`` and one
    ``deny_consent`` per session, no lost or doubled entry, rows agreeing.
    """
    url = request.getfixturevalue(f"{backend}_url")
    failed = _seed(url, waiting=0, failed=12)["failed"]
    accepted = 0
    for event, source, dest in (("retry", "ERROR", "TO_BE_BUILT"),
                                ("deny_consent", "TO_BE_BUILT", "NO_CONSENT")):  # fmt: skip
        store_plans = {sid: [(event, source)] for sid in failed}
        raw_plans = {sid: [dest] for sid in failed}
        jobs = [
            *(
                {"kind": "store", "url": url, "name": f"s{n}", "plans": store_plans}
                for n in range(2)
            ),
            *({"kind": "raw", "url": url, "name": f"r{n}", "plans": raw_plans} for n in range(2)),
        ]
        reports = run_workers(workers.mixed, jobs)
        accepted += sum(r.get("accepted", 0) for r in reports)
        # (a deadlock victim on PostgreSQL fails whole, which is fine: someone else won)
        assert sum(r.get("refused", 0) for r in reports) == 0
    assert accepted > 0
    events = Counter((sid, event) for sid, _seq, event, _actor in _history(url))
    for sid in failed:
        assert events[sid, "retry"] == 1
        assert events[sid, "deny_consent"] == 1
    with SessionLogStore(url) as store:
        assert {store.status(sid) for sid in failed} == {RecordStatus.NO_CONSENT}
    assert problems(url) == []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_raw_writers_killed_mid_statement_leave_nothing_half_written(request, backend):
    """SIGKILL operators' blind UPDATEs (retry, fail, retry...) at random: no torn move."""
    url = request.getfixturevalue(f"{backend}_url")
    failed = _seed(url, waiting=0, failed=6)["failed"]
    context = process_context()
    chance = random.Random(11)  # noqa: S311 - test timing, not security
    before = len(_history(url))
    for round_number in range(6):
        barrier = context.Barrier(3)
        results = context.Queue()
        writers = [
            context.Process(
                target=workers.raw_race,
                kwargs={
                    "url": url,
                    "name": f"r{round_number}w{n}",
                    "plans": {sid: ["TO_BE_BUILT", "ERROR"] for sid in failed},
                    "rounds": 0,
                    "barrier": barrier,
                    "results": results,
                },
            )
            for n in range(2)
        ]
        for writer in writers:
            writer.start()
        barrier.wait(timeout=TIMEOUT)
        multiprocessing.connection.wait([], timeout=chance.uniform(0.05, 0.3))
        for writer in writers:
            os.kill(writer.pid, signal.SIGKILL)
        for writer in writers:
            writer.join(timeout=TIMEOUT)
            assert writer.exitcode == -signal.SIGKILL
        assert problems(url) == [], f"after round {round_number}"
    assert len(_history(url)) > before  # the writers did move sessions between the kills
