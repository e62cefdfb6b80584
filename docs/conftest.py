"""Collect only the Markdown pages here as doctests, not the Sphinx machinery."""

from __future__ import annotations

# conf.py and the docstring parser are Sphinx configuration, not library code;
# _build holds the HTML output and reference/api the pages autodoc2 generates from
# docstrings that --doctest-modules already runs in src/.
collect_ignore = ["conf.py", "_ext"]
collect_ignore_glob = ["_build/*", "reference/api/*"]
