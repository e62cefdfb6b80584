"""The audit guide documents every finding code, with its severity."""

from __future__ import annotations

from pathlib import Path

from nexuslims_lifecycle.audit import CODES

GUIDE = Path(__file__).parents[1] / "docs" / "guide" / "audit.md"


def test_every_code_has_a_section_with_its_severity() -> None:
    text = GUIDE.read_text()
    headings = [line for line in text.splitlines() if line.startswith("### ")]
    assert headings == [f"### {code.code} ({code.severity})" for code in CODES.values()]
