"""Differential test of the guard: random writes in NexusLIMS's shapes against a model.

Each example drives a few sessions with random raw SQL (the harvester's inserts, the
builder's build row insert and delete, its per-row outcome in one transaction,
whole-session and date-range updates by operators, illegal updates among them) and
random store calls, on a guarded SQLite file and a guarded PostgreSQL database. The
model accepts a status change exactly when :func:`legality.can` does, and inserts by
the guard's documented rules. After every step the database holds the model's rows,
its history is the model's, replays legally to the rows' status, and a refused write
left nothing behind.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nexuslims_lifecycle import legality
from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import LifecycleError
from nexuslims_lifecycle.rules import EVENTS, LIFECYCLE
from nexuslims_lifecycle.store import SessionLogStore

TBB, WFE = RecordStatus.TO_BE_BUILT.value, RecordStatus.WAITING_FOR_END.value
RG = "RECORD_GENERATION"
STATUSES = [status.value for status in RecordStatus]
EVENT_OF = {
    (source.value, rule.dest.value): rule.event
    for rule in LIFECYCLE.rules
    for source in rule.sources
}
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=30)  # far past any file delay
_COUNTER = itertools.count()
INSERT = sa.text(
    "INSERT INTO session_log (session_identifier, instrument, timestamp, event_type, "
    "record_status, \"user\") VALUES (:s, 'I', :t, :e, :r, 'ada')"
)


@dataclass
class Model:
    """One session as the guard promises to keep it: its rows and its history."""

    rows: list[list[str]] = field(default_factory=list)  # [event_type, status] in id order
    history: list[tuple[str | None, str, str]] = field(default_factory=list)

    def building(self, row: list[str]) -> bool:
        return row[0] == RG and row[1] == WFE

    def status(self) -> str | None:
        settled = {r[1] for r in self.rows if not self.building(r)}
        if any(self.building(r) for r in self.rows):
            if settled <= {TBB}:
                return TBB
            settled |= {WFE}
        return next(iter(settled)) if len(settled) == 1 else None

    def record(self, source: str | None, dest: str, event: str) -> None:
        if not self.history or self.history[-1][1] != dest:
            self.history.append((source, dest, event))

    def insert(self, event_type: str, status: str) -> bool:
        settled = {r[1] for r in self.rows if not self.building(r)}
        if not self.rows:
            if status not in (WFE, TBB):
                return False
            self.record(None, WFE, "start")
            if status == TBB:
                self.history.append((WFE, TBB, "end"))
        elif not (event_type == RG and status == WFE and TBB in settled) and not settled <= {
            status
        }:
            return False
        self.rows.append([event_type, status])
        return True

    def move(self, source: str, dest: str, index: int | None) -> bool:
        """Apply a change of one row (or, index None, of every row) from ``source``."""
        if source == dest:
            if index is None:
                for r in self.rows:
                    r[1] = dest
            else:
                self.rows[index][1] = dest
            return True
        if not legality.can(source, dest):
            return False
        self.record(source, dest, EVENT_OF[source, dest])
        for position, r in enumerate(self.rows):
            if (
                index is None
                or position == index
                or r[1] == source
                or (source == TBB and self.building(r))
            ):
                r[1] = dest
        return True

    def row_source(self, index: int, dest: str) -> str:
        """The status a change of row ``index`` moves its session from (see the guard)."""
        row = self.rows[index]
        others = [r for n, r in enumerate(self.rows) if n != index]
        if self.building(row):
            if any(r[1] == TBB for r in others):
                return TBB
            if others and all(r[1] == dest for r in others if not self.building(r)):
                return dest
        return row[1]


@dataclass(frozen=True)
class Step:
    kind: str
    session: int
    status: str
    index: int
    event: str


steps = st.lists(
    st.builds(
        Step,
        kind=st.sampled_from(
            [
                "harvest",
                "start",
                "build_row",
                "delete_build_row",
                "whole",
                "whole",
                "range",
                "per_row",
                "one_row",
                "store",
                "store",
            ]
        ),
        session=st.integers(0, 2),
        status=st.sampled_from(STATUSES),
        index=st.integers(0, 9),
        event=st.sampled_from(EVENTS),
    ),
    max_size=25,
)


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SessionLogStore]:
    if request.param == "sqlite":
        url = str(tmp_path_factory.mktemp("differential") / "nexuslims.db")
    else:
        import _pg_cluster

        url = _pg_cluster.fresh_database(request.getfixturevalue("postgres_server"), "differential")
    with SessionLogStore(url) as opened:
        opened.init()
        yield opened


def _attempt(engine: sa.Engine, statements: list[tuple[sa.TextClause, dict[str, object]]]) -> bool:
    """Run ``statements`` in one transaction; return whether the database accepted them."""
    refused = ""
    try:
        with engine.begin() as conn:
            for statement, values in statements:
                conn.execute(statement, values)
    except sa.exc.IntegrityError as error:
        refused = str(error.orig)
    assert refused == "" or "lifecycle guard" in refused
    return refused == ""


def _ids(engine: sa.Engine, sid: str) -> list[int]:
    with engine.connect() as conn:
        query = "SELECT id_session_log FROM session_log WHERE session_identifier = :s ORDER BY 1"
        return [int(i) for (i,) in conn.execute(sa.text(query), {"s": sid})]


def _apply(store: SessionLogStore, engine: sa.Engine, sid: str, model: Model, step: Step) -> None:
    def ins(event_type: str, status: str) -> tuple[sa.TextClause, dict[str, object]]:
        return INSERT, {"s": sid, "t": T0.isoformat(), "e": event_type, "r": status}

    def upd(sql: str, **values: object) -> tuple[sa.TextClause, dict[str, object]]:
        return sa.text(sql), {"s": sid, **values}

    status = model.status()
    if step.kind == "harvest":  # START then END, two transactions, as NexusLIMS does
        for event_type in ("START", "END"):
            expected = model.insert(event_type, TBB)
            assert _attempt(engine, [ins(event_type, TBB)]) is expected
    elif step.kind == "start":
        expected = model.insert("START", WFE)
        assert _attempt(engine, [ins("START", WFE)]) is expected
    elif step.kind == "build_row" and model.rows:  # NexusLIMS adds it to a harvested session
        expected = model.insert(RG, WFE)
        assert _attempt(engine, [ins(RG, WFE)]) is expected
    elif step.kind == "delete_build_row":
        sql = (
            "DELETE FROM session_log WHERE session_identifier = :s AND event_type = "
            f"'{RG}' AND record_status = '{WFE}'"
        )
        assert _attempt(engine, [upd(sql)])
        model.rows = [r for r in model.rows if not model.building(r)]
    elif step.kind == "store" and status is not None and model.rows:
        _store_move(store, sid, model, step.event)
    elif status is not None and model.rows and step.kind in ("whole", "range"):
        _apply_update(engine, sid, model, step, status)
    elif status is not None and model.rows:
        _apply_rows(engine, sid, model, step)


def _apply_update(engine: sa.Engine, sid: str, model: Model, step: Step, status: str) -> None:
    """Apply an UPDATE of a whole session (or of its START/END rows) to it and the model."""
    sql = "UPDATE session_log SET record_status = :r WHERE session_identifier = :s"
    if step.kind == "range":  # the documented recipe catches START/END only
        sql += " AND event_type IN ('START', 'END')"
    before = [r[:] for r in model.rows], list(model.history)
    if step.kind == "range" and status == step.status:
        expected = True
        for r in model.rows:
            r[1] = step.status if r[0] in ("START", "END") else r[1]
    else:
        expected = model.move(status, step.status, None)
    if not expected:
        model.rows, model.history = before
    assert _attempt(engine, [(sa.text(sql), {"s": sid, "r": step.status})]) is expected


def _apply_rows(engine: sa.Engine, sid: str, model: Model, step: Step) -> None:
    """Apply NexusLIMS's per-row UPDATEs (all rows, or one) in one transaction."""
    ids = _ids(engine, sid)
    order = range(len(ids)) if step.kind == "per_row" else [step.index % len(ids)]
    if step.kind == "per_row" and step.index % 2:
        order = range(len(ids) - 1, -1, -1)  # build row first
    before = [r[:] for r in model.rows], list(model.history)
    expected = True
    for position in order:
        if model.rows[position][1] == step.status:
            continue
        source = model.row_source(position, step.status)
        if source == step.status:
            model.rows[position][1] = step.status
        elif not model.move(source, step.status, position):
            expected = False
            break
    if not expected:
        model.rows, model.history = before
    by_id = "UPDATE session_log SET record_status = :r WHERE id_session_log = :i"
    statements = [(sa.text(by_id), {"r": step.status, "i": ids[p]}) for p in order]
    assert _attempt(engine, statements) is expected


def _store_move(store: SessionLogStore, sid: str, model: Model, event: str) -> None:
    status = model.status()
    assert status is not None
    try:
        dest = legality.next_status(status, event).value
    except LifecycleError:
        dest = None
    if event == "find_no_files" and not any(r[0] == "END" for r in model.rows):
        dest = None  # no END time: the file delay cannot be judged
    try:
        moved = store.advance(sid, event, at=LATER)
    except LifecycleError:
        assert dest is None
        return
    assert moved.value == dest
    being_built = any(model.building(r) for r in model.rows)
    model.record(status, dest, event)
    for r in model.rows:
        if r[1] == status or (status == TBB and model.building(r)):
            r[1] = dest
    if event == "end":
        model.rows.append(["END", dest])
    elif status == TBB and not being_built:
        model.rows.append([RG, dest])


def _check(engine: sa.Engine, sid: str, model: Model) -> None:
    with engine.connect() as conn:
        rows = [
            [str(e), str(s)]
            for e, s in conn.execute(
                sa.text(
                    "SELECT event_type, record_status FROM session_log "
                    "WHERE session_identifier = :s ORDER BY id_session_log"
                ),
                {"s": sid},
            )
        ]
        history = [
            (f, str(t), str(e), int(q))
            for q, f, t, e in conn.execute(
                sa.text(
                    "SELECT seq, from_status, to_status, event FROM status_history "
                    "WHERE session_identifier = :s ORDER BY seq"
                ),
                {"s": sid},
            )
        ]
    assert rows == model.rows
    assert [h[:3] for h in history] == model.history
    assert [h[3] for h in history] == list(range(1, len(history) + 1))
    if model.rows:
        status = model.status()
        assert status is not None  # the rows agree (a build row in progress aside)
        assert history[0][:3] == (None, WFE, "start")
        assert legality.replay([h[2] for h in history[1:]]).value == status


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(script=steps)
def test_the_guard_accepts_exactly_what_the_lifecycle_accepts(
    store: SessionLogStore, script: list[Step]
) -> None:
    engine = store.engine
    run = next(_COUNTER)
    sids = [f"https://nemo.example.org/api/usage_events/?id={run}-{n}" for n in range(3)]
    models = [Model() for _ in sids]
    for step in script:
        sid, model = sids[step.session], models[step.session]
        _apply(store, engine, sid, model, step)
        _check(engine, sid, model)
