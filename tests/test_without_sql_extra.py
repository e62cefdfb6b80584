"""Without the 'sql' extra the core still works, and the database features say what to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BLOCK = "import sys; sys.modules['sqlalchemy'] = None; sys.modules['psycopg'] = None\n"


def python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK + code], capture_output=True, text=True, check=False, cwd=cwd
    )


def test_the_core_imports_and_works(tmp_path: Path) -> None:
    done = python(
        "import nexuslims_lifecycle, nexuslims_lifecycle.cli, nexuslims_lifecycle.audit\n"
        "from nexuslims_lifecycle import Session, replay\n"
        "s = Session('x'); s.end(); s.complete()\n"
        "print(s.status.value, replay(['end', 'fail']).value)\n",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "COMPLETED ERROR\n"


def test_the_library_names_the_extra(tmp_path: Path) -> None:
    done = python(
        "from nexuslims_lifecycle.errors import MissingExtra\n"
        "from nexuslims_lifecycle.audit import audit\n"
        "from nexuslims_lifecycle.testing.fixtures import build_database\n"
        "for call in (lambda: audit('x.db'), lambda: build_database('y.db', sessions=1)):\n"
        "    try:\n"
        "        call()\n"
        "    except MissingExtra as error:\n"
        "        print(error.package, error.extra)\n"
        "try:\n"
        "    import nexuslims_lifecycle.store\n"
        "except MissingExtra as error:\n"
        "    print(error)\n",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["sqlalchemy sql", "sqlalchemy sql"]
    assert lines[2] == (
        "the session log store needs sqlalchemy, which is not installed: install the 'sql' "
        "extra with: pip install 'nexuslims-lifecycle[sql]'"
    )
    assert not (tmp_path / "y.db").exists()


def test_the_command_line_names_the_extra_without_a_traceback(tmp_path: Path) -> None:
    for args in (["audit", "x.db"], ["init", "x.db"], ["status", "x.db", "sid"]):
        done = python(
            f"import sys; sys.argv = ['nexuslims-lifecycle', *{args!r}]\n"
            "from nexuslims_lifecycle.cli import main\n"
            "main()\n",
            tmp_path,
        )
        assert done.returncode == 1, (args, done.stderr)
        assert "pip install 'nexuslims-lifecycle[sql]'" in done.stderr
        assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []
