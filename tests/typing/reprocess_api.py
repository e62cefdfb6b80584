"""Operator reprocessing as a user writes it; checked by ``mypy --strict``, never run."""

from __future__ import annotations

from datetime import UTC, date, datetime

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.store import (
    EmptySelection,
    ReprocessReport,
    ReprocessSkip,
    SessionLogStore,
    reprocess,
)


def rebuild_january(store: SessionLogStore) -> list[str]:
    """Requeue January's finished and failed sessions; name those moved."""
    report: ReprocessReport = store.reprocess(
        started_from=date(2024, 1, 1),
        started_to="2024-01-31",
        statuses=[RecordStatus.COMPLETED, "ERROR"],
    )
    return [item.session_identifier for item in report.moved]


def what_would_move(store: SessionLogStore, sid: str) -> list[ReprocessSkip] | None:
    """Dry-run one session since an instant; None when the selection is empty."""
    try:
        report = reprocess(
            store, started_from=datetime(2024, 1, 1, tzinfo=UTC), sessions=[sid], dry_run=True
        )
    except EmptySelection:
        return None
    return list(report.skipped)
