"""The store API as a user writes it; checked by ``mypy --strict``, never run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.store import (
    Claim,
    HistoryEntry,
    SessionLogStore,
    TransitionConflict,
    retry_on_conflict,
)


def build_one(store: SessionLogStore, worker: str) -> RecordStatus | None:
    """Claim one session, build it, report the outcome."""
    claim: Claim | None = store.claim_next(worker, lease=timedelta(minutes=10))
    if claim is None:
        return None
    return store.advance(claim.session_identifier, "complete", actor=claim.worker)


def requeue(store: SessionLogStore, sid: str) -> RecordStatus:
    """Retry a failed session, deciding again if another writer moved it first."""
    return retry_on_conflict(
        lambda: store.advance(sid, "retry", expected=store.status(sid)), attempts=3
    )


def log(store: SessionLogStore) -> list[str]:
    """Start a session and list every move of every TO_BE_BUILT session."""
    store.start("sid", instrument="FEI-Titan-TEM-635816", user=None, at=datetime.now(UTC))
    try:
        store.advance("sid", "end", now=datetime.now(UTC))
    except TransitionConflict as conflict:
        return [str(conflict.current)]
    entries: list[HistoryEntry] = [
        entry
        for info in store.sessions(RecordStatus.TO_BE_BUILT)
        for entry in store.history(info.session_identifier)
    ]
    return [entry.event for entry in entries]
