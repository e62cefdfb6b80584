"""Serve Mermaid from the built site, so diagrams render without the network.

sphinxcontrib-mermaid imports Mermaid from a CDN unless ``mermaid_use_local`` names
a file under ``_static``. This extension copies Mermaid's ES module build from the
npm package pinned in ``tests/mermaid/package-lock.json`` (``make mermaid-parser``
installs it; the tests use the same package to parse our diagrams) into
``_static/mermaid/`` of every HTML build, and points ``mermaid_use_local`` at it.
Only the minified module and the chunks it imports are copied (no source maps),
with Mermaid's licence.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)
ENTRY = "mermaid.esm.min.mjs"
CHUNKS = Path("chunks") / "mermaid.esm.min"
TARGET = Path("_static") / "mermaid"


def _package(app: Sphinx) -> Path:
    return Path(app.confdir, app.config.offline_mermaid_package).resolve()


def check_package(app: Sphinx) -> None:
    """Fail the build at once, saying what to run, when Mermaid is not installed."""
    if app.builder.format != "html":
        return
    package = _package(app)
    if not (package / "dist" / ENTRY).is_file():
        msg = (
            f"Mermaid is not installed at {package}: the docs serve it from the built "
            "site, copied from the npm package the tests use. Run `make mermaid-parser` "
            "(npm ci in tests/mermaid; needs Node.js and npm), then build again."
        )
        raise ConfigError(msg)
    version = json.loads((package / "package.json").read_text(encoding="utf-8"))["version"]
    LOGGER.info("serving Mermaid %s from _static/mermaid/", version)


def use_local_mermaid(_app: Sphinx, config: Config) -> None:
    """Point sphinxcontrib-mermaid at the copy in ``_static`` instead of its CDN."""
    config.mermaid_use_local = f"mermaid/{ENTRY}"


def copy_mermaid(app: Sphinx, exception: BaseException | None) -> None:
    """Copy Mermaid's module, its chunks and its licence into ``_static/mermaid``."""
    if exception is not None or app.builder.format != "html":
        return
    dist = _package(app) / "dist"
    target = Path(app.outdir) / TARGET
    (target / CHUNKS).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(dist / ENTRY, target / ENTRY)
    shutil.copyfile(dist.parent / "LICENSE", target / "LICENSE")
    for chunk in sorted((dist / CHUNKS).glob("*.mjs")):
        shutil.copyfile(chunk, target / CHUNKS / chunk.name)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the configuration value and the build hooks."""
    app.add_config_value("offline_mermaid_package", "", "html", types=[str])
    app.connect("config-inited", use_local_mermaid)
    app.connect("builder-inited", check_package)
    app.connect("build-finished", copy_mermaid)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
