"""Invariants of a store's database, checked straight from its tables."""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise

import sqlalchemy as sa

from nexuslims_lifecycle import legality
from nexuslims_lifecycle.enums import RecordStatus


def problems(url: str) -> list[str]:
    """Return every broken invariant: rows that disagree (a build in progress aside), history
    gaps or breaks, bad moves."""
    from nexuslims_lifecycle.store._engine import create_engine, to_url

    engine = create_engine(to_url(url))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT session_identifier, record_status, event_type FROM session_log")
        ).all()
        history = conn.execute(
            sa.text(
                "SELECT session_identifier, seq, from_status, to_status, event "
                "FROM status_history ORDER BY session_identifier, seq"
            )
        ).all()
    engine.dispose()
    statuses: dict[str, set[str]] = defaultdict(set)
    ends: dict[str, int] = defaultdict(int)
    for sid, status, kind in rows:
        # A build in progress (NexusLIMS's mark, and our claim's) moves with the outcome.
        if not (kind == "RECORD_GENERATION" and status == RecordStatus.WAITING_FOR_END.value):
            statuses[sid].add(status)
        ends[sid] += kind == "END"
    entries: dict[str, list[tuple[int, str | None, str, str]]] = defaultdict(list)
    for sid, seq, source, dest, event in history:
        entries[sid].append((seq, source, dest, event))
    found = [f"{sid}: rows disagree {sorted(s)}" for sid, s in statuses.items() if len(s) != 1]
    for sid, moves in entries.items():
        found += _history_problems(sid, moves, statuses.get(sid, set()), ends[sid])
    return found


def _history_problems(
    sid: str, moves: list[tuple[int, str | None, str, str]], statuses: set[str], ends: int
) -> list[str]:
    found = []
    if [seq for seq, *_ in moves] != list(range(1, len(moves) + 1)):
        found.append(f"{sid}: history sequence not 1..n: {[seq for seq, *_ in moves]}")
    if moves[0][1] is not None or moves[0][2] != RecordStatus.WAITING_FOR_END.value:
        found.append(f"{sid}: history does not begin with the start")
    for (_, _, dest, _), (seq, source, _, _) in pairwise(moves):
        if source != dest:
            found.append(f"{sid}: history broken at {seq}: {dest} then from {source}")
    for seq, source, dest, event in moves[1:]:
        if source is None or legality.next_status(source, event).value != dest:
            found.append(f"{sid}: illegal move at {seq}: {source} --{event}--> {dest}")
    if statuses != {moves[-1][2]}:
        found.append(f"{sid}: rows say {sorted(statuses)}, history ends at {moves[-1][2]}")
    if ends != sum(event == "end" for *_, event in moves):
        found.append(f"{sid}: {ends} END rows for {sum(e == 'end' for *_, e in moves)} ends")
    return found
