"""The npm Mermaid package and the built documentation site, for the tests that need them.

Mermaid (pinned in ``tests/mermaid/package-lock.json``) is both the parser the diagram
tests run and the copy the docs serve from their own ``_static``. The site is built
the way ``make docs`` builds it (warnings as errors, every reference resolved), into
a directory of the test run, so the tests always look at the current pages.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
MERMAID_DIR = Path(__file__).parent / "mermaid"


def install_mermaid() -> str:
    """Install the npm packages of ``tests/mermaid`` if missing; return the node binary.

    Skips when Node.js or npm is not on PATH (saying what to install); fails when
    ``npm ci`` fails.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip(
            "node/npm not on PATH: Mermaid (an npm package) cannot be installed; "
            "install Node.js >= 20 and npm to run this check"
        )
    if not (MERMAID_DIR / "node_modules" / "mermaid" / "package.json").is_file():
        install = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=MERMAID_DIR,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if install.returncode != 0:
            pytest.fail(
                f"npm ci in {MERMAID_DIR} failed (run `make mermaid-parser`):\n"
                f"{install.stderr[-3000:]}"
            )
    return node


def build_docs(outdir: Path) -> Path:
    """Build the HTML docs as ``make docs`` does, into ``outdir``; return the HTML root."""
    install_mermaid()
    html = outdir / "html"
    flags = ["-E", "-W", "--keep-going", "-n", "-q", "-d", str(outdir / "doctrees")]
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", *flags, "-b", "html", str(ROOT / "docs"), str(html)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"the docs do not build:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return html
