"""The design's lifecycle as lookups, derived from the hand-written copy in design_table."""

from __future__ import annotations

from design_table import EVENTS, MOVES
from nexuslims_lifecycle.enums import RecordStatus as S

EXPECTED = {(S(source), event): S(dest) for event, source, dest in MOVES}
ALL_PAIRS = [(status, event) for status in S for event in EVENTS]
