"""The ``demo`` job: realistic sessions driven through the lifecycle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Table

from nexuslims_lifecycle.diagrams import render
from nexuslims_lifecycle.errors import IllegalTransition, LifecycleError
from nexuslims_lifecycle.machine import Session

NEMO_USAGE_EVENT = "https://nemo.example.org/api/usage_events/?id={}"
INSTRUMENTS = ("FEI-Titan-TEM-635816", "JEOL-JEM3010-TEM-565989", "FEI-Quanta200-ESEM-633137")
USERS = ("ada", "grace", "rosalind", "marie")

# Each plan: the events a record builder (or operator) fires, in order.
PLANS: tuple[tuple[str, ...], ...] = (
    ("end", "complete"),
    ("end", "fail", "retry", "complete"),
    ("end", "fail_export"),
    ("end", "fail_export", "complete"),
    ("end", "find_no_files"),
    ("end", "deny_consent"),
    ("end", "find_no_reservation", "retry", "complete"),
    ("end", "complete", "retry"),  # refused: only reprocess leaves COMPLETED
    (),  # still running
    ("end",),  # waiting for the builder
    ("end", "fail"),
    ("end", "find_no_files", "retry", "fail_export", "complete"),
)


@dataclass
class Outcome:
    """What happened to one demo session."""

    session: Session
    steps: list[str]
    refused: str | None = None


def drive(now: datetime | None = None) -> list[Outcome]:
    """Drive one session per plan and return what happened to each.

    Parameters
    ----------
    now
        The demo's clock; the current time by default.

    Returns
    -------
    list[Outcome]
        One outcome per plan, in order.
    """
    now = datetime.now(UTC) if now is None else now
    outcomes = []
    for number, plan in enumerate(PLANS):
        session = Session(
            NEMO_USAGE_EVENT.format(4711 + number),
            instrument=INSTRUMENTS[number % len(INSTRUMENTS)],
            user=USERS[number % len(USERS)],
        )
        outcome = Outcome(session, [])
        for event in plan:
            trigger = getattr(session, event)
            try:
                moved = trigger(at=now - timedelta(days=3)) if event == "end" else trigger()
            except IllegalTransition as error:
                outcome.refused = str(error)
                break
            outcome.steps.append(event if moved else f"{event} (not yet)")
        outcomes.append(outcome)
    return outcomes


def outcome_table(outcomes: list[Outcome]) -> Table:
    """Return a rich table of the demo outcomes.

    Parameters
    ----------
    outcomes
        What :func:`drive` returned.

    Returns
    -------
    rich.table.Table
        One row per session.
    """
    table = Table(title="Sessions driven through the lifecycle")
    for column in ("session", "instrument", "events", "status", "refused move"):
        table.add_column(column)
    for outcome in outcomes:
        session = outcome.session
        table.add_row(
            session.session_identifier,
            session.instrument or "",
            " -> ".join(outcome.steps) or "(none yet)",
            session.status.value,
            outcome.refused or "",
        )
    return table


def run(console: Console) -> None:
    """Run the in-memory demo and print its results.

    Parameters
    ----------
    console
        Where to print.

    Raises
    ------
    LifecycleError
        Never for the built-in plans; a failure here is a bug.
    """
    outcomes = drive()
    console.print(outcome_table(outcomes))
    console.rule("The lifecycle they followed (Mermaid: nexuslims-lifecycle diagram)")
    console.print(render("mermaid"), markup=False, highlight=False, soft_wrap=True, end="")
    if not any(outcome.refused for outcome in outcomes):
        msg = "the demo's illegal move was not refused"
        raise LifecycleError(msg)
