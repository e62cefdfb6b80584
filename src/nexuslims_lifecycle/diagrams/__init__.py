"""Draw the lifecycle: Mermaid, Graphviz DOT, a Markdown table, SVG and PNG.

Every format is drawn from the same rules (:data:`~nexuslims_lifecycle.rules.LIFECYCLE`),
reduced first to one small intermediate form, then handed to one renderer per
format. Output is deterministic: the same bytes on every run. Each format shows the
initial status, the final statuses, the guard on ``find_no_files``, the moves only
an operator makes and, when asked, the session's current status.

SVG and PNG need the ``render`` extra (pygraphviz, whose wheels bundle Graphviz):
``pip install 'nexuslims-lifecycle[render]'``. The text formats need nothing.

Examples
--------
>>> from nexuslims_lifecycle.diagrams import render
>>> print(render("mermaid").splitlines()[4])
    direction LR
>>> "TO_BE_BUILT --> NO_FILES_FOUND : find_no_files [file_delay_elapsed]" in render("mermaid")
True
>>> print(render("markdown", highlight="ERROR").splitlines()[1])
Current status: **ERROR**.
"""

from __future__ import annotations

from typing import Final, Literal, overload

from nexuslims_lifecycle.diagrams._image import render_image
from nexuslims_lifecycle.diagrams._model import build_model
from nexuslims_lifecycle.diagrams._text import render_dot, render_markdown, render_mermaid
from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import UnknownFormat
from nexuslims_lifecycle.rules import LIFECYCLE, Lifecycle

__all__ = ["FORMATS", "DiagramFormat", "render"]

DiagramFormat = Literal["mermaid", "dot", "markdown", "svg", "png"]
"""The name of a diagram format."""

FORMATS: Final[tuple[DiagramFormat, ...]] = ("mermaid", "dot", "markdown", "svg", "png")
"""Every format :func:`render` draws, text formats first."""

_TEXT_RENDERERS: Final = {"mermaid": render_mermaid, "dot": render_dot, "markdown": render_markdown}


@overload
def render(
    fmt: Literal["png"],
    *,
    highlight: RecordStatus | str | None = None,
    lifecycle: Lifecycle = LIFECYCLE,
) -> bytes: ...
@overload
def render(
    fmt: Literal["mermaid", "dot", "markdown", "svg"],
    *,
    highlight: RecordStatus | str | None = None,
    lifecycle: Lifecycle = LIFECYCLE,
) -> str: ...
@overload
def render(
    fmt: str, *, highlight: RecordStatus | str | None = None, lifecycle: Lifecycle = LIFECYCLE
) -> str | bytes: ...
def render(
    fmt: str, *, highlight: RecordStatus | str | None = None, lifecycle: Lifecycle = LIFECYCLE
) -> str | bytes:
    """Return the lifecycle drawn in ``fmt``.

    Parameters
    ----------
    fmt
        One of :data:`FORMATS`: ``mermaid`` (``stateDiagram-v2``), ``dot``,
        ``markdown`` (a table of event, from, to, meaning), ``svg`` or ``png``.
    highlight
        A status to mark as the current one (a member or its exact value).
    lifecycle
        The lifecycle to draw; :data:`~nexuslims_lifecycle.rules.LIFECYCLE` by default.

    Returns
    -------
    str or bytes
        Text for every format but ``png``, which is the image's bytes. Text ends
        with a newline.

    Raises
    ------
    UnknownFormat
        When ``fmt`` is not one of :data:`FORMATS`.
    UnknownStatus
        When ``highlight`` is not a status.
    MissingExtra
        For ``svg`` and ``png`` when pygraphviz (the ``render`` extra) is missing.

    Examples
    --------
    >>> render("dot").splitlines()[0]
    'digraph lifecycle {'
    >>> render("gif")
    Traceback (most recent call last):
    ...
    nexuslims_lifecycle.errors.UnknownFormat: unknown diagram format 'gif': expected one of mermaid, dot, markdown, svg, png
    """  # noqa: E501 - a doctest's expected line cannot wrap
    if fmt not in FORMATS:
        raise UnknownFormat(fmt, FORMATS)
    model = build_model(lifecycle, highlight)
    if fmt == "png":
        return render_image(render_dot(model), "png")
    if fmt == "svg":
        return render_image(render_dot(model), "svg").decode("utf-8")
    return _TEXT_RENDERERS[fmt](model)
