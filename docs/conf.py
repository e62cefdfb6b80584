"""Sphinx configuration: the NexusLIMS docs stack, built with warnings as errors.

``make docs`` runs ``sphinx-build -W --keep-going -n``: every warning fails the build
and every cross-reference must resolve (nitpicky). No network is used, so there is no
intersphinx; the few names from other projects that our signatures mention are listed
in ``nitpick_ignore`` below, each with the reason.
"""

from __future__ import annotations

import sys
from importlib.metadata import version as _version
from pathlib import Path

_HERE = Path(__file__).parent
sys.path.insert(0, str(_HERE / "_ext"))  # numpydoc_parser, autodoc2_renderer, offline_mermaid

project = "nexuslims-lifecycle"
author = "nexuslims-lifecycle developers"
copyright = "nexuslims-lifecycle developers"
release = _version("nexuslims-lifecycle")
version = release

extensions = [
    "myst_parser",
    "autodoc2",
    "sphinx.ext.napoleon",  # only its config values: numpydoc_parser converts with it
    "sphinx_click",
    "sphinxcontrib.mermaid",
    "offline_mermaid",  # serves Mermaid from _static: no page needs the network
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
# lifecycle-table.md is included by lifecycle.md, not a page of its own.
exclude_patterns = ["_build", "_ext", "conftest.py", "lifecycle-table.md"]

# -- MyST --------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "fieldlist"]
myst_heading_anchors = 3
myst_fence_as_directive = ["mermaid"]  # ```mermaid fences render as diagrams

# -- Mermaid, offline ------------------------------------------------------------
# Laboratory networks often cannot reach the internet, so no page loads anything from
# outside the site: Mermaid comes from the npm package that `make mermaid-parser`
# installs (pinned in tests/mermaid/package-lock.json), copied into _static/mermaid/
# by docs/_ext/offline_mermaid.py, which also sets mermaid_use_local to it.
offline_mermaid_package = "../tests/mermaid/node_modules/mermaid"

# -- API reference: sphinx-autodoc2 ------------------------------------------
# The whole package is analysed, so a module another branch adds (diagrams, store,
# audit, testing...) appears with no change here. Each public submodule documents
# exactly its ``__all__``; the package itself documents only what it defines (its
# re-exports are documented once, where they are defined). Private modules, the
# ``__main__`` shim and private or inherited members stay out.
autodoc2_packages = [{"path": "../src/nexuslims_lifecycle", "module": "nexuslims_lifecycle"}]
autodoc2_output_dir = "reference/api"
autodoc2_index_template = None  # reference/api.md is the hand-written index
autodoc2_render_plugin = "autodoc2_renderer.Renderer"  # MyST, without "= None" values
autodoc2_module_all_regexes = [r"nexuslims_lifecycle\.[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*"]
autodoc2_skip_module_regexes = [r".*\._.*", r".*\.__main__"]
autodoc2_hidden_objects = ["private", "inherited", "dunder"]
autodoc2_docstring_parser_regexes = [(r".*", "numpydoc_parser")]
autodoc2_class_docstring = "merge"
autodoc2_sort_names = True  # the same page on every machine

napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True  # enum members are documented once, by autodoc2, not again by "Attributes"
napoleon_preprocess_types = False  # types stay as written: "tuple[str, ...]" is one type

# -- Nitpicky references -------------------------------------------------------
# Every reference must resolve. Names from outside this project cannot: their
# inventories would come through intersphinx, which needs the network. They are
# ignored here by package, each for the reason given; our own names never are.
_STDLIB = "|".join(sorted(sys.stdlib_module_names - {"__future__"}))
nitpicky = True
nitpick_ignore_regex = [
    # The standard library (datetime.datetime, collections.abc.Iterable, enum.Enum...):
    # signatures and base classes name it, and Python's inventory is online only.
    ("py:.*", rf"(?:{_STDLIB})(?:\..*)?"),
    # transitions publishes no Sphinx inventory: build_machine returns its Machine.
    ("py:.*", r"transitions(?:\..*)?"),
    # click and rich objects in the command line's signatures.
    ("py:.*", r"(?:click|rich)(?:\..*)?"),
    # The store's SQLAlchemy engines, connections and tables, and the psycopg driver.
    ("py:.*", r"(?:sqlalchemy|psycopg)(?:\..*)?"),
    # The testing module's Hypothesis strategies and stateful test base classes.
    ("py:.*", r"hypothesis(?:\..*)?"),
    # The diagrams' optional SVG/PNG renderer.
    ("py:.*", r"pygraphviz(?:\..*)?"),
    # Type variables of generic helpers (retry_on_conflict's T) have no page to link to.
    ("py:class", r"nexuslims_lifecycle\..*\.[A-Z]"),
    # Private base classes (errors._UnknownValue) are hidden from the reference on purpose.
    ("py:.*", r"nexuslims_lifecycle\.(?:\w+\.)*_\w+"),
]

# -- HTML ----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"nexuslims-lifecycle {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path: list[str] = []
# The theme's colour mode on a first visit. Left empty, its script logs
# "Got invalid theme mode" as a console error on every page (the browser test sees it).
html_context = {"default_mode": "auto"}
