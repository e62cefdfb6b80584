"""The query commands: ``diagram``, ``can``, ``explain`` and ``replay``.

Each answers from :mod:`nexuslims_lifecycle.legality` and
:mod:`nexuslims_lifecycle.diagrams`, prints for people by default and one JSON
object with ``--json`` (shapes in ``docs/cli.md``). Exit status: 0 for yes or
done, 1 for a no (an illegal move), 2 for bad input.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Final, cast

import click
from rich.console import Console
from rich.markup import escape

from nexuslims_lifecycle import legality
from nexuslims_lifecycle.cli._common import (
    EVENT,
    EXIT_NO,
    STATUS,
    LooseChoice,
    emit_json,
    exits_cleanly,
    json_option,
    make_console,
    write_atomically,
)
from nexuslims_lifecycle.diagrams import FORMATS, render
from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import IllegalTransition
from nexuslims_lifecycle.rules import LIFECYCLE, EventName

__all__ = ["can", "diagram", "explain", "replay"]

_FORMAT: Final = LooseChoice(FORMATS, "diagram format")


def _moves_out(status: RecordStatus) -> list[dict[str, str | None]]:
    """Return the legal moves from ``status``: event, destination, guard, meaning."""
    moves: list[dict[str, str | None]] = []
    for event in LIFECYCLE.allowed(status):
        rule = LIFECYCLE.moves[status, event]
        moves.append(
            {
                "event": event,
                "to": rule.dest.value,
                "by": rule.by,
                "guard": rule.guard,
                "meaning": rule.meaning,
            }
        )
    return moves


def _ways_in(status: RecordStatus) -> list[dict[str, str | None]]:
    """Return the legal moves into ``status``, in table order: event, source, who, guard, why."""
    return [
        {
            "event": event,
            "from": source.value,
            "by": rule.by,
            "guard": rule.guard,
            "meaning": rule.meaning,
        }
        for (source, event), rule in LIFECYCLE.moves.items()
        if rule.dest is status
    ]


def _describe(move: dict[str, str | None]) -> str:
    """Return ``event -> DEST`` with the guard, for a line of text."""
    guard = f" (guarded by {move['guard']})" if move["guard"] else ""
    return f"{move['event']} -> {move['to']}{guard}"


def _stdout_is_terminal() -> bool:
    """Return whether stdout is a terminal (where PNG bytes must not go)."""
    return sys.stdout.isatty()


@click.command()
@click.option(
    "--format",
    "-f",
    "fmt",
    type=_FORMAT,
    default="mermaid",
    show_default=True,
    metavar="|".join(FORMATS),
    help="What to draw. svg and png need the 'render' extra.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to FILE (whole or not at all) instead of stdout.",
)
@click.option("--highlight", type=STATUS, metavar="STATUS", help="Mark STATUS as the current one.")
@json_option
@exits_cleanly
def diagram(fmt: str, output: Path | None, highlight: RecordStatus | None, as_json: bool) -> None:
    """Draw the lifecycle (Mermaid by default) from the rules."""
    if fmt == "png" and output is None and not as_json and _stdout_is_terminal():
        raise click.UsageError("png is binary and stdout is a terminal: pass -o FILE")
    data = render(fmt, highlight=highlight)
    if output is not None:
        write_atomically(output, data)
    if as_json:
        binary = isinstance(data, bytes)
        content = base64.b64encode(data).decode("ascii") if isinstance(data, bytes) else data
        emit_json(
            {
                "format": fmt,
                "highlight": highlight.value if highlight else None,
                "output": str(output) if output is not None else None,
                "encoding": "base64" if binary else "utf-8",
                "content": None if output is not None else content,
            }
        )
    elif output is not None:
        click.echo(f"wrote {fmt} diagram to {output}", err=True)
    else:
        click.echo(data, nl=False)


@click.command()
@click.argument("source", metavar="FROM", type=STATUS)
@click.argument("dest", metavar="TO", type=STATUS)
@json_option
@click.pass_context
@exits_cleanly
def can(ctx: click.Context, source: RecordStatus, dest: RecordStatus, as_json: bool) -> None:
    """Say whether one event moves a session from FROM to TO.

    Exit 0 and name the event if so; exit 1 and list the moves legal from FROM if not.

    Guards are not evaluated: find_no_files counts as a legal move.
    """
    moves = _moves_out(source)
    between = LIFECYCLE.event_between(source, dest)
    events: list[str | None] = [] if between is None else [between]
    path = legality.shortest_path(source, dest)
    if as_json:
        emit_json(
            {
                "from": source.value,
                "to": dest.value,
                "legal": bool(events),
                "events": events,
                "legal_moves": moves,
                "shortest_path": path,
            }
        )
    else:
        _print_can(source, dest, events, moves, path)
    ctx.exit(0 if events else EXIT_NO)


def _print_can(
    source: RecordStatus,
    dest: RecordStatus,
    events: list[str | None],
    moves: list[dict[str, str | None]],
    path: list[str] | None,
) -> None:
    """Print the human answer of ``can``."""
    if events:
        guarded = [move for move in moves if move["to"] == dest.value and move["guard"]]
        click.echo(f"yes: {' or '.join(map(repr, events))} moves {source.value} to {dest.value}")
        for move in guarded:
            click.echo(
                f"note: {move['event']} is guarded by {move['guard']}: until that holds, "
                f"it returns False and the status stays {source.value}"
            )
        return
    click.echo(f"no: no single event moves {source.value} to {dest.value}")
    click.echo(f"legal from {source.value}:")
    for move in moves:
        click.echo(f"  {_describe(move)}")
    if path:
        click.echo(f"shortest way there: {', '.join(path)}")


@click.command()
@click.argument("status", type=STATUS)
@json_option
@exits_cleanly
def explain(status: RecordStatus, as_json: bool) -> None:
    """Explain STATUS: meaning, moves out and in, shortest path there."""
    out, into = _moves_out(status), _ways_in(status)
    path = legality.shortest_path(LIFECYCLE.initial, status)
    if as_json:
        emit_json(
            {
                "status": status.value,
                "meaning": status.description,
                "initial": status is LIFECYCLE.initial,
                "final": legality.is_final(status),
                "events_out": out,
                "ways_in": into,
                "shortest_path_from_initial": path,
            }
        )
        return
    console = make_console()
    console.print(f"[bold]{status.value}[/bold]: {escape(status.description)}")
    if status is LIFECYCLE.initial:
        console.print("initial: every session starts here")
    if legality.is_final(status):
        console.print("final: the builder is done; only an operator moves a session on")
    _print_moves(console, "events out", "->", "to", out)
    _print_moves(console, "ways in", "from", "from", into, empty="no event leads here")
    reach = ", ".join(path) if path else "(none needed: it is the initial status)"
    console.print(f"shortest path from {LIFECYCLE.initial.value}: {escape(reach)}")


def _print_moves(
    console: Console,
    title: str,
    arrow: str,
    other: str,
    moves: list[dict[str, str | None]],
    *,
    empty: str | None = None,
) -> None:
    """Print a titled list of moves, one per line, never cut short (lines soft-wrap)."""
    if moves or empty:
        console.print(f"[bold]{title}[/bold]:")
    if not moves and empty:
        console.print(f"  {empty}")
    for move in moves:
        guard = f" (guard: {move['guard']})" if move["guard"] else ""
        line = (
            f"  {move['event']} {arrow} {move[other]}{guard}, by the {move['by']}: "
            f"{move['meaning']}"
        )
        console.print(escape(line), soft_wrap=True)


@click.command()
@click.argument("events", metavar="EVENT...", nargs=-1, required=True, type=EVENT)
@click.option(
    "--from",
    "start",
    type=STATUS,
    default=LIFECYCLE.initial.value,
    show_default=True,
    metavar="STATUS",
    help="The status the session starts in.",
)
@json_option
@click.pass_context
@exits_cleanly
def replay(ctx: click.Context, events: tuple[str, ...], start: RecordStatus, as_json: bool) -> None:
    """Fire EVENT... in order and say where the session ends.

    Print the final status (exit 0) or the first illegal step (exit 1).

    Guards are not evaluated: find_no_files counts as a legal move.
    """
    steps: list[dict[str, str]] = []
    status, failed = start, None
    for event in events:
        try:
            dest = legality.next_status(status, cast("EventName", event))  # EVENT parsed it
        except IllegalTransition as illegal:
            failed = illegal
            break
        steps.append({"event": event, "from": status.value, "to": dest.value})
        status = dest
    if as_json:
        emit_json(_replay_json(start, events, status, steps, failed))
    else:
        for number, step in enumerate(steps, start=1):
            click.echo(f"{number}. {step['event']}: {step['from']} -> {step['to']}")
        if failed is None:
            click.echo(f"final status: {status.value}")
        else:
            click.echo(f"illegal step {len(steps) + 1} of {len(events)}: {failed}")
    ctx.exit(0 if failed is None else EXIT_NO)


def _replay_json(
    start: RecordStatus,
    events: tuple[str, ...],
    status: RecordStatus,
    steps: list[dict[str, str]],
    failed: IllegalTransition | None,
) -> dict[str, object]:
    """Return the ``--json`` answer of ``replay``."""
    error = failed and {
        "index": len(steps),
        "status": failed.status,
        "event": failed.event,
        "allowed": list(failed.allowed),
        "message": str(failed),
    }
    return {
        "from": start.value,
        "events": list(events),
        "legal": failed is None,
        "final": status.value if failed is None else None,
        "steps": steps,
        "error": error,
    }
