"""Shared test configuration: Hypothesis profiles (HYPOTHESIS_PROFILE=dev|ci), the built docs."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from docs_site import build_docs

# dev: quick feedback while editing. ci: thorough (stateful tests run 2,000 programs),
# no deadline (no timed assertions in tests), and a failure prints the blob that replays it.
settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile("ci", max_examples=2000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session")
def built_docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML docs, built once per test run as ``make docs`` builds them."""
    return build_docs(tmp_path_factory.mktemp("docs"))


@pytest.fixture(autouse=True)
def _nexuslims_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts from NexusLIMS's defaults, whatever the developer's shell sets."""
    monkeypatch.delenv("NX_FILE_DELAY_DAYS", raising=False)


@pytest.fixture
def denver_local_time() -> Iterator[None]:
    """The process's local time zone is America/Denver (-07:00 in winter), then as before.

    For the stored-time rule: a timestamp without an offset is read as local time.
    """
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "America/Denver"
    time.tzset()
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = previous
        time.tzset()
