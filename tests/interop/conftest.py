"""The interop suite needs NexusLIMS 2.8.0 in its own virtual environment.

``make interop`` builds it (``.venv-nexuslims``, from tests/interop/requirements.txt)
and runs this suite; elsewhere the suite is skipped when that environment is absent,
unless ``NEXUSLIMS_LIFECYCLE_REQUIRE_NEXUSLIMS=1`` (set by ``make interop`` and
``.ci/run``) makes the absence a failure. ``NEXUSLIMS_PYTHON`` points at another
interpreter that has ``nexuslims==2.8.0``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _deployment import Deployment

ROOT = Path(__file__).resolve().parents[2]
HOW_TO_ENABLE = (
    "NexusLIMS 2.8.0's virtual environment (.venv-nexuslims) is missing: run `make interop` "
    "(or set NEXUSLIMS_PYTHON to a python that has nexuslims==2.8.0)"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this directory ``interop``."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.interop)


@pytest.fixture(scope="session")
def nexuslims_python() -> Path:
    """Return the python of the NexusLIMS environment, or skip (fail in CI) without it."""
    python = Path(os.environ.get("NEXUSLIMS_PYTHON", ROOT / ".venv-nexuslims" / "bin" / "python"))
    if not python.exists():
        if os.environ.get("NEXUSLIMS_LIFECYCLE_REQUIRE_NEXUSLIMS") == "1":
            pytest.fail(HOW_TO_ENABLE)
        pytest.skip(HOW_TO_ENABLE)
    return python


@pytest.fixture
def deployment(nexuslims_python: Path, tmp_path: Path) -> Deployment:
    """Return a fresh NexusLIMS deployment: ``nexuslims db init``, then our ``init`` (the guard).

    Every row NexusLIMS writes afterwards passes the lifecycle guard.
    """
    deployed = Deployment(nexuslims_python, tmp_path / "nexuslims")
    deployed.init()
    deployed.guard()
    return deployed
