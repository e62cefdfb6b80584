"""Our store, audit and enums against what the real NexusLIMS 2.8.0 writes.

NexusLIMS's own code writes every ``session_log`` row here (its ``nexuslims db init``,
NEMO harvester and record builder, run by ``nexuslims_driver.py`` in its own virtual
environment), or an operator's documented SQL does; our library only reads, except
where a test says the store moves a session.
"""

from __future__ import annotations

import inspect
import json
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from _deployment import INSTRUMENT, Deployment, ago, sid

from nexuslims_lifecycle import enums
from nexuslims_lifecycle.audit import CODES, audit
from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import LifecycleError
from nexuslims_lifecycle.store import SessionLogStore

S, E, R = "START", "END", "RECORD_GENERATION"
ENDED = (ago(80), ago(76))  # ended more than NexusLIMS's default 2-day file delay ago

# One NexusLIMS run over one session per outcome: (event id, plan, status afterwards).
OUTCOMES = [
    (201, "built", RecordStatus.COMPLETED),
    (202, "error", RecordStatus.ERROR),
    (203, "invalid", RecordStatus.ERROR),
    (204, "no_files", RecordStatus.NO_FILES_FOUND),
    (205, "no_consent", RecordStatus.NO_CONSENT),
    (206, "no_reservation", RecordStatus.NO_RESERVATION),
    (207, "not_exported", RecordStatus.BUILT_NOT_EXPORTED),
]
EARLY_NO_FILES = 208  # ended an hour ago: no files yet, within the file delay


def clean(db: Path, **kwargs: object) -> list[tuple[str, str]]:
    """Return the audit's findings as (code, session) pairs: [] when it is clean."""
    return [(f.code, f.session_identifier) for f in audit(db, **kwargs).findings]  # type: ignore[arg-type]


def listing(db: Path) -> dict[str, tuple[RecordStatus, str | None, bool]]:
    """Return sessions() as {session: (status, user, being built)}."""
    with SessionLogStore(db) as store:
        return {
            info.session_identifier: (info.status, info.user, info.being_built)
            for info in store.sessions()
        }


def requeue(session: str) -> str:
    """Return the operator's SQL that sets every row of one session TO_BE_BUILT."""
    return (
        "UPDATE session_log SET record_status = 'TO_BE_BUILT' "
        f"WHERE session_identifier = '{session}'"
    )


def init_store(db: Path) -> None:
    """Add our tables to a NexusLIMS database with the store's defaults."""
    with SessionLogStore(db) as store:
        store.init()


def events(db: Path, session: str) -> list[str]:
    """Return the events of a session's status_history, oldest first."""
    with SessionLogStore(db) as store:
        return [entry.event for entry in store.history(session)]


def status_of(db: Path, session: str) -> RecordStatus:
    """Return the store's status of one session."""
    with SessionLogStore(db) as store:
        return store.status(session)


@pytest.fixture(scope="module")
def outcomes(nexuslims_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """A deployment where NexusLIMS built one session of each outcome in one run."""
    deployed = Deployment(nexuslims_python, tmp_path_factory.mktemp("outcomes"))
    deployed.init()
    deployed.guard()
    for event_id, plan, _status in OUTCOMES:
        deployed.usage_event(event_id, *ENDED, outcome=plan)
    deployed.usage_event(EARLY_NO_FILES, ago(3), ago(1), outcome="no_files")
    deployed.usage_event(209, ago(2), None)  # still running: NexusLIMS writes nothing
    deployed.harvest()
    deployed.build()
    return deployed


# ----------------------------------------------------------- what NexusLIMS writes


def test_harvester_writes_start_and_end_together_as_to_be_built(deployment: Deployment) -> None:
    """NexusLIMS's NEMO harvester writes no row for a running session, then START+END."""
    session = deployment.usage_event(101, ago(2), None)
    deployment.harvest()
    assert deployment.rows(session) == []
    deployment.usage_event(101, ago(2), ago(1))
    deployment.harvest()
    rows = deployment.rows(session)
    assert [(event, status, user) for event, status, _at, user in rows] == [
        (S, "TO_BE_BUILT", "ada"),
        (E, "TO_BE_BUILT", "ada"),
    ]
    for (_e, _s, at, _u), key in zip(rows, ("start", "end"), strict=True):
        sent = deployment.nemo["usage_events"][0][key]
        assert at == sent  # stored as NEMO sent it: ISO 8601 with the local offset
        assert datetime.fromisoformat(at).utcoffset() != timedelta(0)  # Denver, not UTC


@pytest.mark.parametrize(("event_id", "plan", "status"), OUTCOMES)
def test_each_outcome_sets_every_row_of_the_session(
    outcomes: Deployment, event_id: int, plan: str, status: RecordStatus
) -> None:
    """An outcome sets START, END and the RECORD_GENERATION row (user nexuslims) alike."""
    rows = outcomes.rows(sid(event_id))
    assert [(event, st) for event, st, _at, _user in rows] == [
        (S, status),
        (E, status),
        (R, status),
    ]
    assert rows[2][3] == "nexuslims"


def test_no_files_within_the_delay_leaves_no_trace(outcomes: Deployment) -> None:
    """Before the file delay NexusLIMS deletes its RECORD_GENERATION row again."""
    assert outcomes.statuses(sid(EARLY_NO_FILES)) == [(S, "TO_BE_BUILT"), (E, "TO_BE_BUILT")]
    assert outcomes.rows(sid(209)) == []


# ------------------------------------------------------------- what we read of it


def test_enums_equal_nexuslims_enums(deployment: Deployment) -> None:
    """Our three enums have NexusLIMS 2.8.0's members, values and docstrings."""
    theirs = deployment.run("enums")
    ours = {
        name: {
            "doc": inspect.cleandoc(getattr(enums, name).__doc__ or ""),
            "members": {member.name: member.value for member in getattr(enums, name)},
        }
        for name in theirs
    }
    assert ours == {
        name: {"doc": inspect.cleandoc(their["doc"]), "members": their["members"]}
        for name, their in theirs.items()
    }


def test_audit_finds_nothing_on_every_outcome(outcomes: Deployment) -> None:
    """The audit accepts every row pattern NexusLIMS's builder leaves behind."""
    assert clean(outcomes.db) == []


def test_store_reads_every_outcome(outcomes: Deployment) -> None:
    """status() and sessions() read each session: its status, the START row's user."""
    expected = {sid(event_id): status for event_id, _plan, status in OUTCOMES}
    expected[sid(EARLY_NO_FILES)] = RecordStatus.TO_BE_BUILT
    for session, status in expected.items():
        assert status_of(outcomes.db, session) is status
    assert listing(outcomes.db) == {
        session: (status, "ada", False) for session, status in expected.items()
    }


def test_reading_keeps_the_journal_mode(outcomes: Deployment) -> None:
    """Reading a NexusLIMS file with the store leaves it in journal_mode=delete."""
    assert outcomes.journal_mode() == "delete"
    with SessionLogStore(outcomes.db) as store:
        store.status(sid(201))
        list(store.sessions())
        store.history(sid(201))
    audit(outcomes.db)
    assert outcomes.journal_mode() == "delete"


def test_store_reads_every_session_during_a_build(deployment: Deployment) -> None:
    """Mid-run: built sessions wait for export, one is being built, one has failed.

    A session with a RECORD_GENERATION row in WAITING_FOR_END beside its TO_BE_BUILT
    rows reads as TO_BE_BUILT and "being built"; the audit accepts it.
    """
    built, failed, paused, pending = (
        deployment.usage_event(301, *ENDED),
        deployment.usage_event(302, *ENDED, outcome="error"),
        deployment.usage_event(303, *ENDED, pause=True),
        deployment.usage_event(304, *ENDED),
    )
    deployment.harvest()
    with deployment.building(paused_at=303):
        assert deployment.statuses(built) == [
            (S, "TO_BE_BUILT"),
            (E, "TO_BE_BUILT"),
            (R, "WAITING_FOR_END"),
        ]
        assert deployment.statuses(paused) == deployment.statuses(built)
        assert deployment.statuses(failed) == [(S, "ERROR"), (E, "ERROR"), (R, "ERROR")]
        assert deployment.statuses(pending) == [(S, "TO_BE_BUILT"), (E, "TO_BE_BUILT")]
        for session in (built, paused, pending):
            assert status_of(deployment.db, session) is RecordStatus.TO_BE_BUILT
        assert status_of(deployment.db, failed) is RecordStatus.ERROR
        assert listing(deployment.db) == {
            built: (RecordStatus.TO_BE_BUILT, "ada", True),
            failed: (RecordStatus.ERROR, "ada", False),
            paused: (RecordStatus.TO_BE_BUILT, "ada", True),
            pending: (RecordStatus.TO_BE_BUILT, "ada", False),
        }
        assert clean(deployment.db) == []
    assert {s: v[0] for s, v in listing(deployment.db).items()} == {
        built: RecordStatus.COMPLETED,
        failed: RecordStatus.ERROR,
        paused: RecordStatus.COMPLETED,
        pending: RecordStatus.COMPLETED,
    }
    assert clean(deployment.db) == []


def test_a_crashed_build_is_read_and_repaired_by_the_next_run(deployment: Deployment) -> None:
    """A builder killed mid-run leaves WAITING_FOR_END build rows; its next run repairs them."""
    before, crashed, after = (
        deployment.usage_event(401, *ENDED),
        deployment.usage_event(402, *ENDED, outcome="crash"),
        deployment.usage_event(403, *ENDED),
    )
    deployment.harvest()
    died = deployment.run("build", ok=False)
    assert died["returncode"] == 70
    # Built but never exported, crashed mid-build, never started:
    assert deployment.statuses(before) == [
        (S, "TO_BE_BUILT"),
        (E, "TO_BE_BUILT"),
        (R, "WAITING_FOR_END"),
    ]
    assert deployment.statuses(crashed) == deployment.statuses(before)
    assert deployment.statuses(after) == [(S, "TO_BE_BUILT"), (E, "TO_BE_BUILT")]
    assert listing(deployment.db) == {
        before: (RecordStatus.TO_BE_BUILT, "ada", True),
        crashed: (RecordStatus.TO_BE_BUILT, "ada", True),
        after: (RecordStatus.TO_BE_BUILT, "ada", False),
    }
    assert clean(deployment.db) == []  # a fresh build row is not a stalled build
    assert (deployment.workdir / "data" / ".builder.lock").exists()

    deployment.plan(402, "built")
    deployment.build()  # the lock file left behind does not stop it
    for session in (before, crashed):
        assert deployment.statuses(session) == [
            (S, "COMPLETED"),
            (E, "COMPLETED"),
            (R, "COMPLETED"),
            (R, "COMPLETED"),
        ]
    assert status_of(deployment.db, after) is RecordStatus.COMPLETED
    assert clean(deployment.db) == []


def test_a_stalled_build_row_is_reported_with_a_truthful_repair(deployment: Deployment) -> None:
    """Days after a crash the build row is a stalled build, and its repair is not a retry."""
    crashed = deployment.usage_event(451, *ENDED, outcome="crash")
    deployment.harvest()
    assert deployment.run("build", ok=False)["returncode"] == 70
    later = ago(0) + timedelta(days=3)
    report = audit(deployment.db, now=later)
    assert [(f.code, f.session_identifier) for f in report.findings] == [("stalled-build", crashed)]
    assert "retry" not in CODES["stalled-build"].repair  # the store refuses retry from TO_BE_BUILT


def test_a_revised_usage_event_updates_the_rows_it_wrote(deployment: Deployment) -> None:
    """Re-harvesting a revised NEMO event rewrites START/END time and user, until it is built."""
    session = deployment.usage_event(501, ago(90), ago(85), user=1)
    deployment.harvest()
    revised_start, revised_end = ago(88), ago(84)
    deployment.usage_event(501, revised_start, revised_end, user=2)
    deployment.harvest()
    rows = deployment.rows(session)
    assert [(event, status, user) for event, status, _at, user in rows] == [
        (S, "TO_BE_BUILT", "grace"),
        (E, "TO_BE_BUILT", "grace"),
    ]
    assert rows[0][2] == revised_start.isoformat()
    with SessionLogStore(deployment.db) as store:
        assert store.status(session) is RecordStatus.TO_BE_BUILT
        (info,) = store.sessions()
    assert (info.user, info.started_at) == ("grace", revised_start)
    assert info.started_at.utcoffset() == revised_start.utcoffset()  # NexusLIMS's own offset
    assert clean(deployment.db) == []

    deployment.build()
    deployment.usage_event(501, ago(87), ago(83), user=1)  # a revision after the build
    deployment.harvest()
    assert [(e, s, u) for e, s, _at, u in deployment.rows(session)] == [
        (S, "COMPLETED", "grace"),
        (E, "COMPLETED", "grace"),
        (R, "COMPLETED", "nexuslims"),
    ]
    assert clean(deployment.db) == []


def test_the_file_delay_is_nexuslims_setting(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NX_FILE_DELAY_DAYS (float days) decides NO_FILES_FOUND, for NexusLIMS and for the audit."""
    session = deployment.usage_event(601, ago(3), ago(1), outcome="no_files")
    deployment.build()
    assert deployment.statuses(session) == [(S, "TO_BE_BUILT"), (E, "TO_BE_BUILT")]
    deployment.build(env={"NX_FILE_DELAY_DAYS": "0.02"})  # 28.8 minutes
    assert deployment.statuses(session) == [
        (S, "NO_FILES_FOUND"),
        (E, "NO_FILES_FOUND"),
        (R, "NO_FILES_FOUND"),
    ]
    monkeypatch.setenv("NX_FILE_DELAY_DAYS", "0.02")
    assert clean(deployment.db) == []
    monkeypatch.delenv("NX_FILE_DELAY_DAYS")  # by the default 2 days, it gave up too early
    assert {code_session[1] for code_session in clean(deployment.db)} == {session}


# ----------------------------------------------------------------- operators


def test_operator_retry_by_session_is_built_again(deployment: Deployment) -> None:
    """The operator's UPDATE of one session requeues it; NexusLIMS builds it again."""
    session = deployment.usage_event(701, *ENDED, outcome="error")
    deployment.build()
    assert status_of(deployment.db, session) is RecordStatus.ERROR
    deployment.sql(requeue(session))
    assert status_of(deployment.db, session) is RecordStatus.TO_BE_BUILT
    assert clean(deployment.db) == []
    deployment.plan(701, "built")
    deployment.build()
    assert deployment.statuses(session) == [
        (S, "COMPLETED"),
        (E, "COMPLETED"),
        (R, "COMPLETED"),
        (R, "COMPLETED"),
    ]
    assert clean(deployment.db) == []


def test_operator_reprocess_by_session_rebuilds_a_completed_record(deployment: Deployment) -> None:
    """Reprocessing a COMPLETED session (an extractor was fixed) is read and built again."""
    session = deployment.usage_event(801, *ENDED)
    other = deployment.usage_event(802, *ENDED)
    deployment.build()
    deployment.sql(requeue(session))
    assert listing(deployment.db) == {
        session: (RecordStatus.TO_BE_BUILT, "ada", False),
        other: (RecordStatus.COMPLETED, "ada", False),
    }
    assert clean(deployment.db) == []
    deployment.build()
    assert deployment.statuses(session) == [
        (S, "COMPLETED"),
        (E, "COMPLETED"),
        (R, "COMPLETED"),
        (R, "COMPLETED"),
    ]
    assert deployment.statuses(other) == [(S, "COMPLETED"), (E, "COMPLETED"), (R, "COMPLETED")]
    assert clean(deployment.db) == []


def test_documented_date_range_reprocess_moves_whole_sessions(deployment: Deployment) -> None:
    """NexusLIMS's documented range UPDATE catches START/END but not the later build rows.

    The guard applies the move to the whole session (build rows too) and records one
    ``reprocess`` per session; NexusLIMS then builds them again.
    """
    first = deployment.usage_event(901, ago(100), ago(99))
    second = deployment.usage_event(902, ago(98), ago(97))
    kept = deployment.usage_event(903, ago(30), ago(29))
    deployment.build()
    low, high = ago(101).isoformat(), ago(96).isoformat()
    deployment.sql(
        "UPDATE session_log SET record_status = 'TO_BE_BUILT' "
        f"WHERE timestamp >= '{low}' AND timestamp <= '{high}'"
    )
    for session in (first, second):
        assert [st for _e, st in deployment.statuses(session)] == ["TO_BE_BUILT"] * 3
        assert events(deployment.db, session).count("reprocess") == 1
    assert clean(deployment.db) == []
    deployment.build()
    for session in (first, second):
        assert [st for _e, st in deployment.statuses(session)] == ["COMPLETED"] * 4
    assert deployment.statuses(kept) == [(S, "COMPLETED"), (E, "COMPLETED"), (R, "COMPLETED")]
    assert events(deployment.db, first) == ["start", "end", "complete", "reprocess", "complete"]
    assert clean(deployment.db) == []


def test_an_illegal_raw_update_is_refused_whole(deployment: Deployment) -> None:
    """An operator's ERROR -> COMPLETED by hand fails; nothing of it is written."""
    session = deployment.usage_event(1401, *ENDED, outcome="error")
    deployment.build()
    before = deployment.rows(session)
    refused = deployment.run(
        "sql",
        "UPDATE session_log SET record_status = 'COMPLETED' "
        f"WHERE session_identifier = '{session}'",
        ok=False,
    )
    assert refused["returncode"] != 0
    assert "ERROR -> COMPLETED is not a lifecycle move" in refused["stderr"]
    assert "retry -> TO_BE_BUILT" in refused["stderr"]
    assert deployment.rows(session) == before
    assert events(deployment.db, session) == ["start", "end", "fail"]
    assert clean(deployment.db) == []


def test_our_reprocess_by_date_moves_whole_sessions_nexuslims_then_builds(
    deployment: Deployment,
) -> None:
    """`nexuslims-lifecycle reprocess --from --to` requeues whole sessions, build rows included."""
    first = deployment.usage_event(951, ago(100), ago(99))
    second = deployment.usage_event(952, ago(98), ago(97), outcome="no_consent")
    kept = deployment.usage_event(953, ago(30), ago(29))
    deployment.build()
    init_store(deployment.db)
    low, high = ago(101).isoformat(), ago(96).isoformat()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nexuslims_lifecycle",
            "reprocess",
            str(deployment.db),
            "--from",
            low,
            "--to",
            high,
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    json.loads(done.stdout)
    for session in (first, second):
        assert [st for _e, st in deployment.statuses(session)] == ["TO_BE_BUILT"] * 3
    assert [st for _e, st in deployment.statuses(kept)] == ["COMPLETED"] * 3
    assert clean(deployment.db) == []
    deployment.plan(952, "built")  # consent came later
    deployment.build()
    for session in (first, second, kept):
        assert status_of(deployment.db, session) is RecordStatus.COMPLETED
    assert clean(deployment.db) == []  # the guard recorded NexusLIMS's own moves too


# ------------------------------------------------------------- the store beside NexusLIMS


def test_a_session_the_store_requeued_is_built_by_nexuslims(deployment: Deployment) -> None:
    """store.advance(sid, "retry") on a NexusLIMS ERROR session; NexusLIMS's next run builds it."""
    session = deployment.usage_event(1001, *ENDED, outcome="error")
    deployment.build()
    with SessionLogStore(deployment.db) as store:
        store.init()
        assert store.advance(session, "retry") is RecordStatus.TO_BE_BUILT
    assert [st for _e, st in deployment.statuses(session)] == ["TO_BE_BUILT"] * 3
    assert clean(deployment.db) == []
    deployment.plan(1001, "built")
    deployment.build()
    assert deployment.statuses(session) == [
        (S, "COMPLETED"),
        (E, "COMPLETED"),
        (R, "COMPLETED"),
        (R, "COMPLETED"),
    ]
    with SessionLogStore(deployment.db) as store:
        assert store.status(session) is RecordStatus.COMPLETED
        assert [entry.event for entry in store.history(session)] == [
            "start",
            "end",
            "fail",
            "retry",
            "complete",
        ]
    assert deployment.journal_mode() == "delete"


def test_a_session_the_store_recorded_is_built_by_nexuslims(deployment: Deployment) -> None:
    """record_usage() writes START+END as the harvester does; NexusLIMS then builds the session."""
    start, end = ago(80), ago(76)
    session = deployment.usage_event(1101, start, end)  # NEMO knows it too
    with SessionLogStore(deployment.db) as store:
        store.init()
        assert (
            store.record_usage(session, start, end, instrument=INSTRUMENT, user="ada")
            is RecordStatus.TO_BE_BUILT
        )
    rows = deployment.rows(session)
    assert [(e, s, u) for e, s, _at, u in rows] == [
        (S, "TO_BE_BUILT", "ada"),
        (E, "TO_BE_BUILT", "ada"),
    ]
    for (_e, _s, at, _u), moment in zip(rows, (start, end), strict=True):
        assert datetime.fromisoformat(at) == moment  # ISO 8601 with an offset, the same instant
        assert datetime.fromisoformat(at).utcoffset() is not None
    deployment.build()  # re-harvests the same usage event first: no duplicate rows
    assert deployment.statuses(session) == [(S, "COMPLETED"), (E, "COMPLETED"), (R, "COMPLETED")]
    assert clean(deployment.db) == []  # the guard recorded NexusLIMS's own moves too


def test_start_refuses_an_instrument_nexuslims_does_not_know(deployment: Deployment) -> None:
    """start() on a NexusLIMS database checks its instruments table and writes nothing."""
    with SessionLogStore(deployment.db) as store:
        store.init()
        with pytest.raises(LifecycleError, match="NOT-A-TOOL"):
            store.start(sid(1201), instrument="NOT-A-TOOL", user="ada")
    assert deployment.rows() == []


# ---------------------------------------------------------------- NexusLIMS's upgrades


def test_nexuslims_upgrade_after_init_backs_up_our_tables(deployment: Deployment) -> None:
    """`nexuslims db upgrade` works after store.init(); its backup holds our tables and moves."""
    session = deployment.usage_event(1301, *ENDED, outcome="error")
    deployment.build()
    with SessionLogStore(deployment.db) as store:
        store.init()
        store.advance(session, "retry")
    assert deployment.journal_mode() == "delete"
    upgraded = deployment.run("upgrade")
    assert upgraded["returncode"] == 0, upgraded["stderr"]
    (backup,) = upgraded["backups"]
    conn = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    try:
        tables = {
            name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        moves = list(conn.execute("SELECT event, to_status FROM status_history"))
        statuses = {st for (st,) in conn.execute("SELECT record_status FROM session_log")}
    finally:
        conn.close()
    assert {"session_log", "status_history", "build_claim"} <= tables
    assert moves == [
        ("start", "WAITING_FOR_END"),
        ("end", "TO_BE_BUILT"),
        ("fail", "ERROR"),
        ("retry", "TO_BE_BUILT"),
    ]
    assert statuses == {"TO_BE_BUILT"}
    assert deployment.run("check")["returncode"] == 0


def test_nexuslims_autogenerate_would_drop_our_tables_unless_filtered(
    nexuslims_python: Path, tmp_path: Path
) -> None:
    """Alembic autogenerate proposes dropping our tables; an include_object filter stops it."""
    deployment = Deployment(nexuslims_python, tmp_path / "pristine")
    deployment.init()  # NexusLIMS's alone, before our init
    pristine = deployment.run("autogenerate")
    assert pristine["plain"] == pristine["filtered"]
    init_store(deployment.db)
    proposed = deployment.run("autogenerate")
    extra = [p for p in proposed["plain"] if p not in pristine["plain"]]
    assert {p for p in extra if p.startswith("remove_table")} == {
        "remove_table status_history",
        "remove_table build_claim",
        "remove_table lifecycle_guard",
        "remove_table lifecycle_guard_context",
    }
    assert proposed["filtered"] == pristine["plain"]
