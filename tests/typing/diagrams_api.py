"""The diagrams API as the README and docs use it: checked by ``mypy --strict``."""

from __future__ import annotations

from nexuslims_lifecycle import MissingExtra, RecordStatus, UnknownFormat
from nexuslims_lifecycle.diagrams import FORMATS, render

mermaid: str = render("mermaid")
dot: str = render("dot", highlight=RecordStatus.ERROR)
table: str = render("markdown", highlight="TO_BE_BUILT")
svg: str = render("svg")
png: bytes = render("png")
chosen: str | bytes = render(FORMATS[0])
errors: tuple[type[Exception], ...] = (MissingExtra, UnknownFormat)
