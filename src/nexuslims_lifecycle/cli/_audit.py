"""The ``audit`` command: check a session_log database against the lifecycle."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import timedelta
from typing import Final

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from nexuslims_lifecycle.audit import (
    CODES,
    DEFAULT_STUCK_AFTER,
    AuditReport,
    Finding,
    audit,
    count_rows,
)
from nexuslims_lifecycle.cli._common import (
    EXIT_NO,
    LooseChoice,
    emit_json,
    exits_cleanly,
    json_option,
    make_console,
)

_UNITS: Final = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
_DURATION: Final = re.compile(r"(\d+)([wdhms])")
_SHOWN_PER_CODE: Final = 20


def parse_duration(text: str) -> timedelta:
    """Return the duration written as ``7d``, ``12h``, ``1w2d``, ``90m`` or ``30s``.

    Parameters
    ----------
    text
        Whole numbers each followed by a unit: w, d, h, m or s.

    Returns
    -------
    timedelta
        The duration.

    Raises
    ------
    ValueError
        When ``text`` is not of that form.
    """
    cleaned = text.strip().lower()
    if not cleaned or _DURATION.sub("", cleaned):
        msg = f"not a duration: {text!r}; write e.g. 7d, 12h, 1w2d or 90m"
        raise ValueError(msg)
    parts: dict[str, int] = defaultdict(int)
    for amount, unit in _DURATION.findall(cleaned):
        parts[_UNITS[unit]] += int(amount)
    return timedelta(**parts)


class _Duration(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


def _summary(report: AuditReport) -> Table:
    table = Table(title="Findings by code")
    for column in ("code", "severity", "count", "what it means", "what to do"):
        table.add_column(column, overflow="fold")
    for code, count in sorted(report.counts.items()):
        info = CODES[code]
        style = "red" if info.severity == "error" else "yellow"
        table.add_row(code, f"[{style}]{info.severity}[/]", str(count), info.meaning, info.repair)
    return table


def _details(report: AuditReport) -> Table:
    table = Table(title="Findings")
    for column in ("code", "session", "rows", "message"):
        table.add_column(column, overflow="fold")
    grouped: dict[str, list[Finding]] = defaultdict(list)
    for finding in report.findings:
        grouped[finding.code].append(finding)
    for code in sorted(grouped):
        findings = grouped[code]
        for finding in findings[:_SHOWN_PER_CODE]:
            rows = ", ".join(map(str, finding.row_ids))
            table.add_row(code, finding.session_identifier, rows, finding.message)
        if len(findings) > _SHOWN_PER_CODE:
            more = len(findings) - _SHOWN_PER_CODE
            table.add_row(code, f"... and {more} more", "", "use --json for every finding")
    return table


def show_report(report: AuditReport, console: Console) -> None:
    """Print an audit report for people: a line when clean, else tables grouped by code.

    Parameters
    ----------
    report
        What :func:`~nexuslims_lifecycle.audit.audit` returned.
    console
        Where to print.
    """
    if report.clean:
        console.print(f"clean: {report.rows} rows in {report.sessions} sessions, no findings")
        return
    console.print(_summary(report))
    console.print(_details(report))
    counts = report.as_json()["summary"]
    console.print(
        f"{counts['error']} error(s), {counts['warning']} warning(s) in "
        f"{report.rows} rows of {report.sessions} sessions"
    )


def _run_with_progress(
    db: str, console: Console, *, stuck_after: timedelta, stalled_after: timedelta
) -> AuditReport:
    total = count_rows(db)
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("auditing rows", total=total)
        return audit(
            db,
            stuck_after=stuck_after,
            stalled_after=stalled_after,
            progress=lambda n: bar.advance(task, n),
        )


@click.command("audit")
@click.argument("db", envvar=["NEXUSLIMS_LIFECYCLE_DB", "NX_DB_PATH"])
@json_option
@click.option(
    "--stuck-after",
    type=_Duration(),
    default="7d",
    show_default=True,
    help="Report sessions WAITING_FOR_END for longer than this (e.g. 7d, 12h, 1w2d).",
)
@click.option(
    "--stalled-after",
    type=_Duration(),
    default="1d",
    show_default=True,
    help="Report build rows in progress (a crashed or long-gone build) older than this.",
)
@click.option(
    "--fail-on",
    type=LooseChoice(("error", "warning"), "severity"),
    default="error",
    show_default=True,
    help="Exit 1 when a finding of this severity or worse is found.",
)
@exits_cleanly
def audit_command(
    db: str, as_json: bool, stuck_after: timedelta, stalled_after: timedelta, fail_on: str
) -> None:
    """Check a session_log database (DB: a path or URL) against the lifecycle.

    Read-only. The file delay is NexusLIMS's NX_FILE_DELAY_DAYS (float days), else 2
    days. Exit 0 when clean (below --fail-on), 1 when findings reach --fail-on, 2 when
    the database or the configuration cannot be used.
    """
    out, err = make_console(), Console(stderr=True)
    if as_json or not err.is_terminal:
        report = audit(db, stuck_after=stuck_after, stalled_after=stalled_after)
    else:
        report = _run_with_progress(db, err, stuck_after=stuck_after, stalled_after=stalled_after)
    if as_json:
        emit_json(report.as_json())
    else:
        show_report(report, out)
    if report.reaches(fail_on):  # type: ignore[arg-type]
        raise SystemExit(EXIT_NO)


__all__ = ["DEFAULT_STUCK_AFTER", "audit_command", "parse_duration", "show_report"]
