"""Package hygiene: what importing the package does, and what it exports."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import nexuslims_lifecycle
from nexuslims_lifecycle import errors

ROOT = Path(__file__).resolve().parents[1]
NO_PSYCOPG = "import sys; sys.modules['psycopg'] = None; sys.modules['psycopg2'] = None\n"


def run(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env={**os.environ, **env},
    )


def test_every_public_error_is_exported_from_the_package() -> None:
    public = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value)
        and issubclass(value, errors.LifecycleError)
        and not name.startswith("_")
    }
    assert public <= set(nexuslims_lifecycle.__all__)
    assert all(getattr(nexuslims_lifecycle, name) is getattr(errors, name) for name in public)


def test_a_sqlite_store_works_without_psycopg(tmp_path: Path) -> None:
    done = run(
        NO_PSYCOPG + "from nexuslims_lifecycle.store import SessionLogStore\n"
        "store = SessionLogStore('x.db'); store.init()\n"
        "print(list(store.sessions()), store.engine.dialect.name)\n",
        tmp_path,
    )
    assert (done.returncode, done.stdout) == (0, "[] sqlite\n"), done.stderr


def test_a_postgresql_store_without_psycopg_names_the_extra(tmp_path: Path) -> None:
    done = run(
        NO_PSYCOPG + "from nexuslims_lifecycle import MissingExtra\n"
        "from nexuslims_lifecycle.store import SessionLogStore\n"
        "try:\n"
        "    SessionLogStore('postgresql://nobody@127.0.0.1:1/none')\n"
        "except MissingExtra as error:\n"
        "    print(error.package, error.extra)\n",
        tmp_path,
    )
    assert (done.returncode, done.stdout) == (0, "psycopg sql\n"), done.stderr


def test_the_version_is_known_in_a_checkout_that_is_not_installed(tmp_path: Path) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["hatch"]["version"]["path"] == "src/nexuslims_lifecycle/__init__.py"
    done = run(
        "import importlib.metadata as m\n"
        "def missing(name): raise m.PackageNotFoundError(name)\n"
        "m.version = missing\n"
        "import nexuslims_lifecycle; print(nexuslims_lifecycle.__version__)\n",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == nexuslims_lifecycle.__version__
    assert nexuslims_lifecycle.__version__.count(".") == 2


def test_an_audit_of_postgresql_without_psycopg_names_the_extra(tmp_path: Path) -> None:
    done = run(
        NO_PSYCOPG + "from nexuslims_lifecycle import MissingExtra\n"
        "from nexuslims_lifecycle.audit import audit\n"
        "try:\n"
        "    audit('postgresql://nobody@127.0.0.1:1/none')\n"
        "except MissingExtra as error:\n"
        "    print(error.package, error.extra)\n",
        tmp_path,
    )
    assert (done.returncode, done.stdout) == (0, "psycopg sql\n"), done.stderr


def test_only_the_sql_extras_packages_are_named_as_missing() -> None:
    found = errors.MissingExtra.of_sql_extra(ModuleNotFoundError(name="psycopg.pq"), "x")
    assert found is not None
    assert (found.package, found.extra) == ("psycopg", "sql")
    assert errors.MissingExtra.of_sql_extra(ModuleNotFoundError(name="yaml"), "x") is None
    assert errors.MissingExtra.of_sql_extra(ImportError("no name"), "x") is None
