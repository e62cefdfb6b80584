"""The sphinx-autodoc2 MyST renderer, without the ``None`` it shows for unknown values.

autodoc2 reads values statically. For a dataclass field or a class attribute that is
only annotated (``dest: RecordStatus``), and for a value it cannot read (a ``Literal``
alias), it has no value, and the stock renderer then prints ``= None``: a default that
does not exist. This renderer leaves the value out instead. ``conf.py`` selects it
through ``autodoc2_render_plugin``.
"""

from __future__ import annotations

from collections.abc import Iterable

from autodoc2.render.myst_ import MystRenderer
from autodoc2.utils import ItemData


class Renderer(MystRenderer):
    """Render MyST pages, printing a data item's value only when it has one."""

    def render_data(self, item: ItemData) -> Iterable[str]:
        """Yield the lines for a data item or attribute, without a value of ``None``.

        Parameters
        ----------
        item
            The item, as autodoc2's static analysis recorded it.
        """
        lines = iter(super().render_data(item))
        for line in lines:
            if item.get("value") is None and line == ":value: >":
                next(lines)  # the indented value line that follows
                continue
            yield line
