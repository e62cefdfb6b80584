"""The lifecycle guard in the database: what it refuses, records and cascades, whoever writes.

Every write here is raw SQL, as NexusLIMS's code or an operator at a prompt sends it;
the store is only used to install the guard. Each test runs on SQLite and on a real
PostgreSQL server.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from _snapshot import dump

from nexuslims_lifecycle import legality
from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import StoreError
from nexuslims_lifecycle.rules import LIFECYCLE
from nexuslims_lifecycle.store import SessionLogStore, _guard

_COUNTER = itertools.count()
STATUSES = list(RecordStatus)
INSERT = sa.text(
    "INSERT INTO session_log (session_identifier, instrument, timestamp, event_type, "
    "record_status, \"user\") VALUES (:s, 'I', :t, :e, :r, :u)"
)
REFUSED = pytest.raises(sa.exc.IntegrityError, match="lifecycle guard")
EVENT_OF = {(source, rule.dest): rule.event for rule in LIFECYCLE.rules for source in rule.sources}


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def guarded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sa.Engine]:
    """Return an engine on one guarded database per backend (each test its own sessions)."""
    if request.param == "sqlite":
        url = str(tmp_path_factory.mktemp("guard") / "nexuslims.db")
    else:
        import _pg_cluster

        server = request.getfixturevalue("postgres_server")
        url = _pg_cluster.fresh_database(server, "guard_module")
    with SessionLogStore(url) as store:
        store.init()
        engine = sa.create_engine(store.url)
    yield engine
    engine.dispose()


def new_sid() -> str:
    return f"https://nemo.example.org/api/usage_events/?id={next(_COUNTER)}"


def run(engine: sa.Engine, *statements: tuple[sa.TextClause, dict[str, object]]) -> None:
    """Run ``statements`` in one transaction, as one writer's unit of work."""
    with engine.begin() as conn:
        for statement, values in statements:
            conn.execute(statement, values)


def row(sid: str, event: str, status: str, user: str = "ada") -> tuple[sa.TextClause, dict]:
    return INSERT, {"s": sid, "t": "2026-11-28T20:59:55-07:00", "e": event, "r": status, "u": user}


def update(sql: str, **values: object) -> tuple[sa.TextClause, dict[str, object]]:
    return sa.text(sql), values


def rows(engine: sa.Engine, sid: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [
            (str(e), str(s))
            for e, s in conn.execute(
                sa.text(
                    "SELECT event_type, record_status FROM session_log "
                    "WHERE session_identifier = :s ORDER BY id_session_log"
                ),
                {"s": sid},
            )
        ]


def history(engine: sa.Engine, sid: str) -> list[tuple[int, str | None, str, str]]:
    with engine.connect() as conn:
        return [
            (int(q), f, str(t), str(e))
            for q, f, t, e in conn.execute(
                sa.text(
                    "SELECT seq, from_status, to_status, event FROM status_history "
                    "WHERE session_identifier = :s ORDER BY seq"
                ),
                {"s": sid},
            )
        ]


def session_in(engine: sa.Engine, status: RecordStatus) -> str:
    """Write a session (START, END, build row) that reaches ``status`` by legal raw moves."""
    sid = new_sid()
    if status is RecordStatus.WAITING_FOR_END:
        run(engine, row(sid, "START", "WAITING_FOR_END"))
        return sid
    run(engine, row(sid, "START", "TO_BE_BUILT"))
    run(engine, row(sid, "END", "TO_BE_BUILT"))
    path = legality.shortest_path(RecordStatus.TO_BE_BUILT, status) or []
    if path:
        run(engine, row(sid, "RECORD_GENERATION", "WAITING_FOR_END", "nexuslims"))
    current = RecordStatus.TO_BE_BUILT
    for event in path:
        current = legality.next_status(current, event)
        run(engine, update(_WHOLE, s=sid, r=current.value))
    return sid


_WHOLE = "UPDATE session_log SET record_status = :r WHERE session_identifier = :s"


# --------------------------------------------------------------- every pair, once


@pytest.mark.parametrize(
    ("source", "dest"),
    [(a, b) for a in STATUSES for b in STATUSES],
    ids=lambda status: status.value,
)
def test_a_whole_session_update_passes_exactly_the_lifecycle_moves(
    guarded: sa.Engine, source: RecordStatus, dest: RecordStatus
) -> None:
    """UPDATE of a whole session from ``source`` to ``dest``: legal moves pass, once recorded."""
    sid = session_in(guarded, source)
    before_rows, before_history = rows(guarded, sid), history(guarded, sid)
    if source is dest or legality.can(source, dest):
        run(guarded, update(_WHOLE, s=sid, r=dest.value))
        assert {status for _e, status in rows(guarded, sid)} == {dest.value}
        added = history(guarded, sid)[len(before_history) :]
        expected = [] if source is dest else [(source.value, dest.value, EVENT_OF[source, dest])]
        assert [(f, t, e) for _q, f, t, e in added] == expected
    else:
        with REFUSED as refused:
            run(guarded, update(_WHOLE, s=sid, r=dest.value))
        assert f"{source.value} -> {dest.value} is not a lifecycle move" in str(refused.value)
        assert (rows(guarded, sid), history(guarded, sid)) == (before_rows, before_history)


def test_history_replays_to_the_rows_status(guarded: sa.Engine) -> None:
    """A session driven by raw SQL has a history that replays, from 'start', to its status."""
    sid = session_in(guarded, RecordStatus.BUILT_NOT_EXPORTED)
    run(guarded, update(_WHOLE, s=sid, r="COMPLETED"))
    entries = history(guarded, sid)
    assert [q for q, *_ in entries] == list(range(1, len(entries) + 1))
    assert entries[0][1:] == (None, "WAITING_FOR_END", "start")
    assert legality.replay(e for *_x, e in entries[1:]) is RecordStatus.COMPLETED


# ----------------------------------------------------------- NexusLIMS's own patterns


def test_the_harvester_inserts_start_then_end_in_two_transactions(guarded: sa.Engine) -> None:
    sid = new_sid()
    run(guarded, row(sid, "START", "TO_BE_BUILT"))
    assert [e for *_x, e in history(guarded, sid)] == ["start", "end"]
    run(guarded, row(sid, "END", "TO_BE_BUILT"))
    assert [e for *_x, e in history(guarded, sid)] == ["start", "end"]


@pytest.mark.parametrize("build_row_first", [False, True])
def test_the_builders_per_row_outcome_is_one_move(
    guarded: sa.Engine, build_row_first: bool
) -> None:
    """NexusLIMS's ORM sets each row by id in one transaction: one history entry, rows agree."""
    sid = session_in(guarded, RecordStatus.TO_BE_BUILT)
    run(guarded, row(sid, "RECORD_GENERATION", "WAITING_FOR_END", "nexuslims"))
    with guarded.connect() as conn:
        ids = [
            i
            for (i,) in conn.execute(
                sa.text(
                    "SELECT id_session_log FROM session_log WHERE session_identifier = :s "
                    "ORDER BY id_session_log"
                ),
                {"s": sid},
            )
        ]
    order = ids[::-1] if build_row_first else ids
    by_id = "UPDATE session_log SET record_status = 'COMPLETED' WHERE id_session_log = :i"
    run(guarded, *(update(by_id, i=i) for i in order))
    assert rows(guarded, sid) == [
        ("START", "COMPLETED"),
        ("END", "COMPLETED"),
        ("RECORD_GENERATION", "COMPLETED"),
    ]
    assert history(guarded, sid)[-1][1:] == ("TO_BE_BUILT", "COMPLETED", "complete")
    assert len(history(guarded, sid)) == 3


def test_the_build_row_is_deleted_and_revisions_pass(guarded: sa.Engine) -> None:
    sid = session_in(guarded, RecordStatus.TO_BE_BUILT)
    run(guarded, row(sid, "RECORD_GENERATION", "WAITING_FOR_END", "nexuslims"))
    run(
        guarded,
        update(
            "DELETE FROM session_log WHERE session_identifier = :s "
            "AND event_type = 'RECORD_GENERATION'",
            s=sid,
        ),
    )
    run(
        guarded,
        update(
            'UPDATE session_log SET timestamp = :t, "user" = :u WHERE session_identifier = :s',
            s=sid,
            t="2026-11-29T10:00:00-07:00",
            u="grace",
        ),
    )
    assert rows(guarded, sid) == [("START", "TO_BE_BUILT"), ("END", "TO_BE_BUILT")]
    assert len(history(guarded, sid)) == 2


def test_the_documented_date_range_recipe_moves_whole_sessions(guarded: sa.Engine) -> None:
    """The range catches START and END but not the later build row: the guard moves it too."""
    sid = session_in(guarded, RecordStatus.COMPLETED)
    run(
        guarded,
        update(
            "UPDATE session_log SET record_status = 'TO_BE_BUILT' "
            "WHERE session_identifier = :s AND event_type IN ('START', 'END')",
            s=sid,
        ),
    )
    assert {status for _e, status in rows(guarded, sid)} == {"TO_BE_BUILT"}
    assert history(guarded, sid)[-1][1:] == ("COMPLETED", "TO_BE_BUILT", "reprocess")
    assert [e for *_x, e in history(guarded, sid)].count("reprocess") == 1


def test_a_retry_of_a_session_being_built_resets_its_build_row_and_records_nothing(
    guarded: sa.Engine,
) -> None:
    sid = session_in(guarded, RecordStatus.TO_BE_BUILT)
    run(guarded, row(sid, "RECORD_GENERATION", "WAITING_FOR_END", "nexuslims"))
    before = history(guarded, sid)
    run(guarded, update(_WHOLE, s=sid, r="TO_BE_BUILT"))
    assert {status for _e, status in rows(guarded, sid)} == {"TO_BE_BUILT"}
    assert history(guarded, sid) == before


# ------------------------------------------------------------------------ inserts


@pytest.mark.parametrize("status", STATUSES, ids=lambda status: status.value)
def test_a_new_session_begins_waiting_or_to_be_built_only(
    guarded: sa.Engine, status: RecordStatus
) -> None:
    sid = new_sid()
    if status in (RecordStatus.WAITING_FOR_END, RecordStatus.TO_BE_BUILT):
        run(guarded, row(sid, "START", status.value))
        assert history(guarded, sid)[-1][2] == status.value
    else:
        with REFUSED:
            run(guarded, row(sid, "START", status.value))
        assert (rows(guarded, sid), history(guarded, sid)) == ([], [])


@pytest.mark.parametrize(
    ("session", "event", "status", "accepted"),
    [
        (RecordStatus.TO_BE_BUILT, "END", "TO_BE_BUILT", True),
        (RecordStatus.TO_BE_BUILT, "RECORD_GENERATION", "WAITING_FOR_END", True),
        (RecordStatus.TO_BE_BUILT, "RECORD_GENERATION", "COMPLETED", False),
        (RecordStatus.WAITING_FOR_END, "END", "TO_BE_BUILT", False),
        (RecordStatus.ERROR, "RECORD_GENERATION", "WAITING_FOR_END", False),
        (RecordStatus.ERROR, "RECORD_GENERATION", "ERROR", True),
    ],
)
def test_a_row_into_an_existing_session_carries_its_status(
    guarded: sa.Engine, session: RecordStatus, event: str, status: str, accepted: bool
) -> None:
    sid = session_in(guarded, session)
    before = (rows(guarded, sid), history(guarded, sid))
    if accepted:
        run(guarded, row(sid, event, status))
        assert history(guarded, sid) == before[1]
    else:
        with REFUSED as refused:
            run(guarded, row(sid, event, status))
        assert "must carry the session's record_status" in str(refused.value)
        assert (rows(guarded, sid), history(guarded, sid)) == before


def test_a_refused_statement_rolls_back_the_whole_transaction_it_ends(guarded: sa.Engine) -> None:
    """A legal move and an illegal one in one transaction: neither stays."""
    first, second = session_in(guarded, RecordStatus.ERROR), session_in(guarded, RecordStatus.ERROR)
    before = (rows(guarded, first), history(guarded, first))
    with REFUSED:
        run(
            guarded,
            update(_WHOLE, s=first, r="TO_BE_BUILT"),
            update(_WHOLE, s=second, r="COMPLETED"),
        )
    assert (rows(guarded, first), history(guarded, first)) == before


# ----------------------------------------------------------- who and when


def test_a_raw_write_is_stamped_now_in_the_local_offset(guarded: sa.Engine) -> None:
    """SQLite: the process's TZ (NexusLIMS runs in local time); PostgreSQL: the server's."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "America/Denver"
    time.tzset()
    try:
        engine = sa.create_engine(guarded.url)  # new connections see the new zone
        sid = new_sid()
        run(engine, row(sid, "START", "WAITING_FOR_END"))
        engine.dispose()
    finally:
        if previous is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = previous
        time.tzset()
    with guarded.connect() as conn:
        at, actor = conn.execute(
            sa.text("SELECT at, actor FROM status_history WHERE session_identifier = :s"),
            {"s": sid},
        ).one()
    from datetime import datetime

    stamped = datetime.fromisoformat(at)
    assert stamped.utcoffset() is not None
    if guarded.dialect.name == "sqlite":
        assert at.endswith(("-07:00", "-06:00"))
        assert actor is None
    else:
        assert actor == "postgres"  # current_user


# ------------------------------------------------------------ install, status, remove


@pytest.fixture
def fresh(db_url: str) -> Iterator[SessionLogStore]:
    with SessionLogStore(db_url) as store:
        store.init(guard=False)
        yield store


def test_install_status_remove_are_idempotent(fresh: SessionLogStore, db_url: str) -> None:
    assert fresh.guard_status().state == "absent"
    assert fresh.remove_guard() is False
    fresh.install_guard()
    status = fresh.guard_status()
    assert (status.state, status.version) == ("installed", _guard.version())
    before = dump(db_url)
    fresh.install_guard()
    assert dump(db_url) == before  # the current guard again: nothing changes
    assert fresh.remove_guard() is True
    assert fresh.guard_status().state == "absent"
    assert "lifecycle_guard" not in sa.inspect(fresh.engine).get_table_names()


def test_an_outdated_guard_is_reported_and_replaced(fresh: SessionLogStore) -> None:
    fresh.install_guard()
    with fresh.engine.begin() as conn:
        conn.execute(sa.text("UPDATE lifecycle_guard SET version = 'older'"))
    assert fresh.guard_status().state == "outdated"
    fresh.install_guard()
    assert fresh.guard_status().state == "installed"


def test_a_guard_missing_a_trigger_is_partial_and_repaired(fresh: SessionLogStore) -> None:
    fresh.install_guard()
    drop = "DROP TRIGGER lifecycle_guard_insert"
    if fresh.url.get_backend_name() == "postgresql":
        drop += " ON session_log"
    with fresh.engine.begin() as conn:
        conn.execute(sa.text(drop))
    assert fresh.guard_status().state == "partial"
    fresh.install_guard()
    assert fresh.guard_status().state == "installed"


def test_the_store_refuses_to_move_without_the_guard(fresh: SessionLogStore, db_url: str) -> None:
    before = dump(db_url)
    with pytest.raises(StoreError, match=r"has no lifecycle guard.*guard install"):
        fresh.start("s", instrument="I")
    assert dump(db_url) == before


def test_install_refuses_a_database_without_session_log(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    sa_engine = sa.create_engine(f"sqlite:///{path}")
    with sa_engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE other (a INTEGER)"))
    sa_engine.dispose()
    with SessionLogStore(path) as store, pytest.raises(StoreError, match="no session_log table"):
        store.install_guard()
    assert set(sa.inspect(sa.create_engine(f"sqlite:///{path}")).get_table_names()) == {"other"}


def test_install_refuses_a_read_only_file_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nexuslims.db"
    with SessionLogStore(path) as store:
        store.init(guard=False)
    before = dump(str(path))
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    with SessionLogStore(read_only) as store, pytest.raises(StoreError, match="cannot be written"):
        store.install_guard()
    assert dump(str(path)) == before


def test_install_refuses_a_role_that_may_not_create_and_writes_nothing(postgres_url: str) -> None:
    with SessionLogStore(postgres_url) as store:
        store.init(guard=False)
        with store.engine.begin() as conn:
            conn.execute(sa.text("DROP ROLE IF EXISTS clerk"))
            conn.execute(sa.text("CREATE ROLE clerk LOGIN"))
            conn.execute(sa.text("GRANT SELECT, INSERT, UPDATE ON session_log TO clerk"))
    before = dump(postgres_url)
    clerk = sa.make_url(postgres_url).set(username="clerk").render_as_string(hide_password=False)
    with SessionLogStore(clerk) as store, pytest.raises(StoreError, match="lacks a privilege"):
        store.install_guard()
    assert dump(postgres_url) == before
