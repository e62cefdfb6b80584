"""The ``reprocess`` command: requeue whole sessions for another build, as an operator.

Exit status: 0 when at least one session moved (or, with ``--dry-run``, would move);
1 when every selected session was skipped, or the database could not be written;
2 for bad input (no selection, an unparsable date, a range ending before it starts,
an unknown status or session, a selection that matches nothing, a database that
cannot be used), with nothing written.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Final

import click
from rich.table import Table

from nexuslims_lifecycle.cli._common import (
    EXIT_NO,
    STATUS,
    BadInput,
    emit_json,
    exits_cleanly,
    json_option,
    make_console,
    open_store,
)
from nexuslims_lifecycle.cli._store import DB_ENV_VARS
from nexuslims_lifecycle.errors import InvalidArgument

if TYPE_CHECKING:
    from datetime import datetime

    from rich.console import Console

    from nexuslims_lifecycle.enums import RecordStatus
    from nexuslims_lifecycle.store import ReprocessReport

__all__ = ["reprocess_command"]

_OPTION_OF: Final = {
    "started_from": "--from",
    "started_to": "--to",
    "session_identifier": "--session",
    "actor": "--actor",
}


def _run(
    db: str,
    bounds: tuple[str | None, str | None],
    statuses: tuple[RecordStatus, ...],
    sessions: tuple[str, ...],
    *,
    dry_run: bool,
    actor: str,
) -> ReprocessReport:
    """Reprocess in the store at ``db``; a bad argument is named by its option."""
    try:
        with open_store(db) as store:
            return store.reprocess(
                started_from=bounds[0],
                started_to=bounds[1],
                statuses=statuses,
                sessions=sessions,
                dry_run=dry_run,
                actor=actor,
            )
    except InvalidArgument as error:
        option = _OPTION_OF.get(error.name, error.name)
        msg = f"invalid {option} {error.value!r}: expected {error.expected}"
        raise BadInput(msg) from error


def _when(moment: datetime | None) -> str:
    """Return a START time for a table cell: ISO 8601 with its offset, or "-"."""
    return "-" if moment is None else moment.isoformat()


def _status(value: RecordStatus | None) -> str:
    return "rows disagree" if value is None else value.value


def _show(report: ReprocessReport, console: Console) -> None:
    """Print the report for people: a table of moves, one of skips, and a summary."""
    verb = "would move" if report.dry_run else "moved"
    if report.moved:
        moved = Table(title=f"Sessions {verb} to TO_BE_BUILT")
        for column in ("session", "started", "from", "event"):
            moved.add_column(column, overflow="fold", no_wrap=column != "session")
        for item in report.moved:
            moved.add_row(
                item.session_identifier, _when(item.started_at), item.before.value, item.event
            )
        console.print(moved)
    if report.skipped:
        skipped = Table(title="Sessions skipped")
        for column in ("session", "started", "status", "why"):
            skipped.add_column(column, overflow="fold", no_wrap=column in ("started", "status"))
        for skip in report.skipped:
            skipped.add_row(
                skip.session_identifier, _when(skip.started_at), _status(skip.status), skip.message
            )
        console.print(skipped)
    ending = "; dry run: nothing was written" if report.dry_run else ""
    console.print(
        f"{verb} {len(report.moved)} session(s), skipped {len(report.skipped)}{ending}",
        markup=False,
    )


@click.command("reprocess")
@click.argument("db", envvar=list(DB_ENV_VARS))
@click.option(
    "--from",
    "started_from",
    metavar="DATE",
    help="Sessions whose START is on or after DATE: 2024-01-31 (its local date), "
    "2024-01-31T14:00 (local time) or 2024-01-31T14:00-07:00 (an instant).",
)
@click.option(
    "--to",
    "started_to",
    metavar="DATE",
    help="Sessions whose START is on or before DATE (a date takes in that whole day).",
)
@click.option(
    "--status",
    "statuses",
    type=STATUS,
    multiple=True,
    help="Only sessions now in this status (repeat for several).",
)
@click.option(
    "--session",
    "sessions",
    metavar="SID",
    multiple=True,
    help="Only this session (repeat for several); an unknown one is an error.",
)
@click.option("--all", "everything", is_flag=True, help="Every session (instead of a selection).")
@click.option("--dry-run", is_flag=True, help="Show what would move; write nothing.")
@click.option(
    "--actor",
    default="operator",
    show_default=True,
    help="Who is recorded in status_history as making the moves.",
)
@json_option
@exits_cleanly
def reprocess_command(
    db: str,
    *,
    started_from: str | None,
    started_to: str | None,
    statuses: tuple[RecordStatus, ...],
    sessions: tuple[str, ...],
    everything: bool,
    dry_run: bool,
    actor: str,
    as_json: bool,
) -> None:
    """Requeue whole sessions of DB for another build (after an extractor was fixed...).

    A session is chosen by its START time, read in its own UTC offset, by its status
    and by its identifier (criteria combine with AND); give at least one, or --all.
    Each chosen session moves to TO_BE_BUILT by the operator move its status allows:
    retry (ERROR, NO_FILES_FOUND, NO_RESERVATION, BUILT_NOT_EXPORTED) or reprocess
    (COMPLETED, NO_CONSENT), every row of it at once. Sessions already queued, being
    built, not ended, or whose rows disagree are skipped with the reason.

    Exit 0 when a session moved (or would, with --dry-run), 1 when every selected
    session was skipped, 2 for bad input (nothing is written then).
    """
    selection = (started_from, started_to, statuses, sessions)
    if everything and any(selection):
        msg = "--all selects every session: leave out --from, --to, --status and --session"
        raise click.UsageError(msg)
    if not everything and not any(selection):
        msg = "choose the sessions: give --from/--to, --status or --session (or --all)"
        raise click.UsageError(msg)
    bounds = (started_from, started_to)
    report = _run(db, bounds, statuses, sessions, dry_run=dry_run, actor=actor)
    if as_json:
        emit_json(report.as_json())
    else:
        _show(report, make_console())
    if not report.moved:
        sys.exit(EXIT_NO)
