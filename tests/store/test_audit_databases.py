"""The audit on databases the store wrote, SQLite and a real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from _snapshot import dump

from nexuslims_lifecycle import audit as audit_module
from nexuslims_lifecycle.audit import audit
from nexuslims_lifecycle.errors import UnusableDatabase
from nexuslims_lifecycle.store import SessionLogStore

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
PLANS = [
    [],
    ["end"],
    ["end", "complete"],
    ["end", "fail", "retry", "fail_export", "complete"],
    ["end", "find_no_reservation"],
    ["end", "deny_consent"],
]


def fill(url: str) -> list[str]:
    """Drive one session per plan through the store; return their identifiers."""
    sids = []
    with SessionLogStore(url) as store:
        store.init()
        for number, plan in enumerate(PLANS):
            sid = f"https://nemo.example.org/api/usage_events/?id={7000 + number}"
            store.start(sid, instrument="FEI-Titan-TEM-635816", user="ada", at=T0)
            for step, event in enumerate(plan, start=1):
                store.advance(sid, event, actor="builder-1", at=T0 + timedelta(hours=step))
            sids.append(sid)
        worker = store.claim_next("builder-2", lease=timedelta(hours=1), now=NOW)
        assert worker is not None
    return sids


def test_whatever_the_store_writes_audits_clean(db_url: str) -> None:
    """Moves, retries and a build claimed but not finished: nothing to report."""
    fill(db_url)
    report = audit(SessionLogStore(db_url).url.render_as_string(hide_password=False), now=NOW)
    assert report.findings == ()
    assert report.sessions == len(PLANS)
    assert report.history_entries == len(PLANS) + sum(map(len, PLANS))


def test_a_bypassing_writer_is_refused_by_the_guard(db_url: str) -> None:
    """An illegal UPDATE by hand (COMPLETED -> ERROR) fails whole: the audit stays clean."""
    sids = fill(db_url)
    url = SessionLogStore(db_url).url
    before = dump(db_url)
    engine = sa.create_engine(url)
    refused = pytest.raises(sa.exc.IntegrityError, match=r"COMPLETED -> ERROR is not a lifecycle")
    with refused, engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE session_log SET record_status = 'ERROR' WHERE session_identifier = :s"),
            {"s": sids[2]},
        )
    engine.dispose()
    assert dump(db_url) == before
    report = audit(url.render_as_string(hide_password=False), now=NOW)
    assert not {"history-mismatch", "mixed-status"} & set(report.counts)


def test_a_bypassing_writer_without_the_guard_is_caught(db_url: str) -> None:
    """Without the guard, an unconditional UPDATE shows as a history mismatch."""
    sids = fill(db_url)
    SessionLogStore(db_url).remove_guard()
    url = SessionLogStore(db_url).url
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE session_log SET record_status = 'ERROR' WHERE session_identifier = :s"),
            {"s": sids[2]},
        )
    engine.dispose()
    report = audit(url.render_as_string(hide_password=False), now=NOW)
    mismatch = [f for f in report.findings if f.code == "history-mismatch"]
    assert report.counts["history-mismatch"] == 1
    assert mismatch[0].session_identifier == sids[2]
    assert mismatch[0].message == "history ends in COMPLETED, rows say ERROR"


def test_the_audit_connection_refuses_writes(db_url: str) -> None:
    """The audit's own engine cannot write, whatever the code above it did."""
    url = db_url
    fill(url)
    shown = SessionLogStore(url).url.render_as_string(hide_password=False)
    engine = audit_module._read_only_engine(shown)
    try:
        refused = pytest.raises(sa.exc.DBAPIError, match=r"readonly database|read-only transaction")
        with engine.connect() as conn, refused:
            conn.execute(sa.text("DELETE FROM session_log"))
    finally:
        engine.dispose()
    assert audit(shown, now=NOW).sessions == len(PLANS)


def test_postgres_without_session_log_is_unusable(postgres_url: str) -> None:
    with pytest.raises(UnusableDatabase, match="no session_log table"):
        audit(SessionLogStore(postgres_url).url.render_as_string(hide_password=False))
