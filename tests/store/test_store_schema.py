"""The store's schema: NexusLIMS-compatible session_log, our own tables, init that never alters."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from _snapshot import dump

from nexuslims_lifecycle.enums import EventType, RecordStatus
from nexuslims_lifecycle.errors import InvalidArgument, StoreError, UnknownSession
from nexuslims_lifecycle.store import SessionLogStore
from nexuslims_lifecycle.store._engine import BUSY_TIMEOUT

# The session_log of NexusLIMS's own SQLite creation script (no CHECKs in old versions).
NEXUSLIMS_SESSION_LOG = """
CREATE TABLE instruments (instrument_pid VARCHAR(100) PRIMARY KEY NOT NULL);
CREATE TABLE session_log (
    id_session_log INTEGER NOT NULL,
    session_identifier VARCHAR(36) NOT NULL,
    instrument VARCHAR(100) NOT NULL,
    timestamp DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now', 'localtime')),
    event_type TEXT NOT NULL,
    record_status TEXT NOT NULL DEFAULT 'WAITING_FOR_END',
    user VARCHAR(50),
    PRIMARY KEY(id_session_log AUTOINCREMENT),
    FOREIGN KEY(instrument) REFERENCES instruments(instrument_pid)
);
INSERT INTO instruments VALUES ('FEI-Titan-TEM-635816');
INSERT INTO session_log (session_identifier, instrument, timestamp, event_type,
                         record_status, user)
VALUES ('a1b2', 'FEI-Titan-TEM-635816', '2021-03-01T10:00:00-05:00', 'START',
        'TO_BE_BUILT', 'ada'),
       ('a1b2', 'FEI-Titan-TEM-635816', '2021-03-01T12:00:00-05:00', 'END',
        'TO_BE_BUILT', 'ada');
"""


def _nexuslims_db(path: Path, extra: str = "") -> str:
    with sqlite3.connect(path) as conn:
        conn.executescript(NEXUSLIMS_SESSION_LOG + extra)
    conn.close()
    return str(path)


def _schema_sql(path: str) -> dict[str, str]:
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall()
    conn.close()
    return dict(rows)


def test_init_creates_session_log_with_checks_from_the_enums_and_an_index(db_url):
    with SessionLogStore(db_url) as store:
        store.init()
        inspector = sa.inspect(store.engine)
        checks = {c["name"]: c["sqltext"] for c in inspector.get_check_constraints("session_log")}
        indexed = [i["column_names"] for i in inspector.get_indexes("session_log")]
        tables = set(inspector.get_table_names())
    on_sqlite = not db_url.startswith("postgresql")
    guard = {"lifecycle_guard"} | ({"lifecycle_guard_context"} if on_sqlite else set())
    assert tables == {"session_log", "status_history", "build_claim"} | guard
    assert all(f"'{kind.value}'" in checks["check_event_type"] for kind in EventType)
    assert all(f"'{status.value}'" in checks["check_record_status"] for status in RecordStatus)
    assert ["session_identifier"] in indexed


def test_the_check_constraints_refuse_values_outside_the_enums(db_url):
    with SessionLogStore(db_url) as store:
        store.init()
        with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO session_log (session_identifier, instrument, timestamp, "
                    "event_type, record_status) VALUES ('s', 'i', 't', 'START', 'DONE')"
                )
            )
        assert dump(db_url)["session_log"] == []


def test_init_twice_changes_nothing(db_url):
    with SessionLogStore(db_url) as store:
        store.init()
        store.start("s", instrument="I")
        before = dump(db_url)
        store.init()
    assert dump(db_url) == before


def test_init_on_a_nexuslims_database_keeps_session_log_and_adds_only_our_tables(tmp_path):
    path = _nexuslims_db(tmp_path / "nexuslims_db.sqlite")
    schema_before, rows_before = _schema_sql(path), dump(path)
    with SessionLogStore(path) as store:
        store.init()
        assert store.status("a1b2") is RecordStatus.TO_BE_BUILT
        assert store.history("a1b2") == []
        assert store.advance("a1b2", "complete", actor="builder") is RecordStatus.COMPLETED
    schema_after = _schema_sql(path)
    assert {k: v for k, v in schema_after.items() if k in schema_before} == schema_before
    assert set(schema_after) - set(schema_before) >= {"status_history", "build_claim"}
    assert not any(
        "session_log" in sql
        for k, sql in schema_after.items()
        if k not in schema_before and not k.startswith("lifecycle_guard")
    )
    assert dump(path)["instruments"] == rows_before["instruments"]


def test_init_refuses_a_session_log_that_is_not_nexuslims_shaped(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE session_log (id INTEGER PRIMARY KEY, note TEXT)")
    conn.close()
    with (
        SessionLogStore(path) as store,
        pytest.raises(StoreError, match=r"lacks column\(s\) id_session_log, session_identifier"),
    ):
        store.init()


def test_unknown_status_values_already_in_the_table_are_a_clear_error(tmp_path):
    path = _nexuslims_db(
        tmp_path / "n.sqlite",
        "UPDATE session_log SET record_status = 'REBUILD_ME';",
    )
    with SessionLogStore(path) as store:
        store.init()
        before = dump(path)
        with pytest.raises(StoreError, match=r"record_status 'REBUILD_ME' .* not a RecordStatus"):
            store.advance("a1b2", "complete")
        with pytest.raises(StoreError, match="REBUILD_ME"):
            store.status("a1b2")
        (listed,) = store.sessions()
        assert (listed.status, listed.being_built) == (None, False)
        assert listed.problem is not None
        assert "REBUILD_ME" in listed.problem
    assert dump(path) == before


def test_rows_that_disagree_on_the_status_are_a_clear_error(tmp_path):
    path = _nexuslims_db(
        tmp_path / "n.sqlite",
        "UPDATE session_log SET record_status = 'COMPLETED' WHERE event_type = 'END';",
    )
    with SessionLogStore(path) as store:
        store.init()
        before = dump(path)
        with pytest.raises(StoreError, match=r"disagree on record_status \(COMPLETED, TO_BE"):
            store.advance("a1b2", "complete")
        (listed,) = store.sessions()
        assert listed.status is None
        assert listed.problem is not None
        assert "disagree on record_status (COMPLETED, TO_BE_BUILT)" in listed.problem
        assert list(store.sessions("COMPLETED")) == []
        assert list(store.sessions("TO_BE_BUILT")) == []
    assert dump(path) == before


def test_an_uninitialised_database_says_to_run_init(sqlite_url):
    sqlite3.connect(sqlite_url).close()  # an empty file: no tables
    with (
        SessionLogStore(sqlite_url) as store,
        pytest.raises(StoreError, match=r"is not initialised .*run `init` on it first"),
    ):
        store.status("s")


def test_an_uninitialised_postgresql_database_says_to_run_init(postgres_url):
    with (
        SessionLogStore(postgres_url) as store,
        pytest.raises(StoreError, match=r"is not initialised .*run `init` on it first"),
    ):
        store.status("s")


def test_a_file_in_a_missing_directory_is_a_store_error(tmp_path):
    with (
        SessionLogStore(tmp_path / "missing" / "x.db") as store,
        pytest.raises(StoreError, match=r"cannot use sqlite.*unable to open database file"),
    ):
        store.init()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "unsupported database 'mysql://u@h/db'"),
        ("sqlite://", "an in-memory SQLite database cannot be shared"),
        ("", "empty database path"),
        ("postgresql://u:p@h:notaport/db", "cannot parse database URL"),
    ],
)
def test_unusable_urls_are_refused_with_what_is_expected(url, message):
    with pytest.raises(StoreError, match=message):
        SessionLogStore(url)


def test_a_password_never_shows_in_the_store_repr():
    store = SessionLogStore("postgresql://nexus:s3cret@db.example.org/nexuslims")
    assert "s3cret" not in repr(store)
    assert "postgresql+psycopg://nexus:***@db.example.org/nexuslims" in repr(store)


def _pragmas(url: str) -> tuple[str, int, int]:
    """Return journal_mode, busy_timeout and synchronous of a store connection."""
    with SessionLogStore(url) as store, store.engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        timeout = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
        synchronous = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    return mode, timeout, synchronous


def test_init_keeps_the_journal_mode_and_sets_a_busy_timeout(sqlite_url):
    with SessionLogStore(sqlite_url) as store:
        store.init()
    assert _pragmas(sqlite_url) == ("delete", int(BUSY_TIMEOUT * 1000), 2)  # FULL


def test_init_with_wal_switches_the_file_to_wal_for_good(sqlite_url):
    with SessionLogStore(sqlite_url) as store:
        store.init(wal=True)
    assert _pragmas(sqlite_url) == ("wal", int(BUSY_TIMEOUT * 1000), 1)  # NORMAL


def test_wal_is_refused_on_postgresql(postgres_url):
    with (
        SessionLogStore(postgres_url) as store,
        pytest.raises(InvalidArgument, match=r"wal.*SQLite files only"),
    ):
        store.init(wal=True)


def test_a_nexuslims_file_never_initialised_reads_with_an_empty_history(tmp_path):
    path = _nexuslims_db(tmp_path / "n.sqlite")
    before = dump(path)
    with SessionLogStore(path) as store:
        assert store.history("a1b2") == []
        assert store.status("a1b2") is RecordStatus.TO_BE_BUILT
        with pytest.raises(UnknownSession, match="unknown session 'nope'"):
            store.history("nope")
    assert dump(path) == before


def test_reading_and_moving_never_change_a_nexuslims_files_journal_mode(tmp_path):
    path = _nexuslims_db(tmp_path / "n.sqlite")
    with SessionLogStore(path) as store:
        store.status("a1b2")
        store.init()
        store.status("a1b2")
        store.history("a1b2")
        list(store.sessions())
        store.advance("a1b2", "fail")
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert not Path(f"{path}-wal").exists()


def test_reading_a_missing_file_creates_nothing_and_says_what_to_do(tmp_path):
    path = tmp_path / "typo.sqlite"
    with SessionLogStore(path) as store:
        for read in (
            lambda: store.status("s"),
            lambda: store.history("s"),
            lambda: list(store.sessions()),
            lambda: store.advance("s", "end"),
            lambda: store.claim_next("w", lease=60),
        ):
            with pytest.raises(StoreError, match=r"typo.sqlite': the file does not exist"):
                read()
    assert not path.exists()


def test_the_core_imports_without_sqlalchemy_and_the_store_says_which_extra():
    code = (
        "import sys; sys.modules['sqlalchemy'] = None\n"
        "import nexuslims_lifecycle, nexuslims_lifecycle.cli\n"
        "try:\n    import nexuslims_lifecycle.store\n"
        "except ImportError as error:\n    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "install the 'sql' extra with: pip install 'nexuslims-lifecycle[sql]'" in done.stdout
