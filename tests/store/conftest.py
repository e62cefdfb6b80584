"""Fixtures for the store tests: a SQLite file per test, and a real PostgreSQL server.

The PostgreSQL server is one throwaway cluster per test run (started on first use,
stopped at the end), with a fresh database per test. Where no PostgreSQL is installed
the PostgreSQL tests skip, saying how to enable them, unless
``NEXUSLIMS_LIFECYCLE_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) makes that a failure.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy", reason="the store tests need the 'sql' extra")

import _pg_cluster

_COUNTER = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Start one throwaway PostgreSQL cluster on loopback; yield its admin URL."""
    if _pg_cluster.find_bindir() is None:
        if os.environ.get("NEXUSLIMS_LIFECYCLE_REQUIRE_POSTGRES") == "1":
            pytest.fail(_pg_cluster.HOW_TO_ENABLE)
        pytest.skip(_pg_cluster.HOW_TO_ENABLE)
    with _pg_cluster.running_cluster() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """Return the URL of a fresh, empty PostgreSQL database."""
    return _pg_cluster.fresh_database(postgres_server, f"test_{next(_COUNTER)}")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """Return the path of a SQLite file that does not exist yet."""
    return str(tmp_path / "nexuslims.db")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Return an empty database of each kind in turn."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))
