"""A docutils parser that reads numpy-style docstrings for sphinx-autodoc2.

sphinx-autodoc2 parses docstrings as plain reStructuredText, so the numpy sections
(``Parameters``, ``Returns``, ``Raises``, ``Examples``) would be read as section
titles. This parser converts a docstring with Sphinx's napoleon first, then parses
the reStructuredText it produces. ``conf.py`` selects it through
``autodoc2_docstring_parser_regexes``; docutils finds it by module name (this
directory is on ``sys.path``) and takes its ``Parser`` attribute.
"""

from __future__ import annotations

from docutils import nodes
from docutils.parsers import rst
from sphinx.ext.napoleon.docstring import NumpyDocstring


class Parser(rst.Parser):
    """Parse a numpy-style docstring: napoleon to reStructuredText, then docutils."""

    def parse(self, inputstring: str, document: nodes.document) -> None:
        """Convert ``inputstring`` with napoleon and parse the result into ``document``.

        Parameters
        ----------
        inputstring
            The docstring, as autodoc2 extracted it.
        document
            The docutils document to fill; its settings carry the Sphinx environment,
            whose config holds the ``napoleon_*`` options.
        """
        config = document.settings.env.config
        super().parse(str(NumpyDocstring(inputstring, config)), document)
