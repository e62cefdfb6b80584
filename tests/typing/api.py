"""The README's API, type-checked by ``mypy --strict`` (not run by pytest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nexuslims_lifecycle import (
    IllegalTransition,
    RecordStatus,
    Session,
    allowed_events,
    can,
    next_status,
    replay,
    shortest_path,
)

session = Session("https://nemo.example.org/api/usage_events/?id=4711", instrument="FEI-Titan-TEM")
moved: bool = session.end(at=datetime.now(UTC))
status: RecordStatus = session.status
events: tuple[str, ...] = session.allowed_events()
waiting: bool = session.find_no_files(now=datetime.now(UTC), delay=timedelta(days=1))
legal: bool = can(RecordStatus.ERROR, "TO_BE_BUILT")
after: RecordStatus = next_status("TO_BE_BUILT", "fail")
path: list[str] | None = shortest_path("WAITING_FOR_END", "COMPLETED")
final: RecordStatus = replay(["end", "complete"])
out: tuple[str, ...] = allowed_events("ERROR")


def log_move(moved: Session, event: str, source: RecordStatus, dest: RecordStatus) -> None:
    """Print one move."""
    print(moved.session_identifier, event, source.value, dest.value)  # noqa: T201


remove = Session.add_listener(log_move)
remove()

try:
    session.retry()
except IllegalTransition as error:
    allowed: tuple[str, ...] = error.allowed
