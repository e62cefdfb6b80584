"""The store commands of the command line: init, start, advance, status, history, sessions.

DB is a file path (SQLite) or a SQLAlchemy URL; it may be left out when
``NEXUSLIMS_LIFECYCLE_DB`` (or NexusLIMS's own ``NX_DB_PATH``) names it. Statuses and
events are read as every command reads them (any case, ``-`` for ``_``, "did you
mean"). Errors end with a one-line message and the exit status every command uses:
2 for bad input (an unknown session, status, event or instrument, an unusable
setting or database), 1 for a refusal or a database that cannot be written, 3 for a
conflict (read and try again). Each command takes ``--json`` (shapes in docs/cli.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, Final, cast

import click

from nexuslims_lifecycle.cli._common import (
    EVENT,
    STATUS,
    LooseChoice,
    convert,
    emit_json,
    exits_cleanly,
    json_option,
    open_store,
)
from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.rules import EVENTS, EventName

__all__ = ["COMMANDS", "DB_ENV_VARS", "split_db"]

DB_ENV_VARS: Final = ("NEXUSLIMS_LIFECYCLE_DB", "NX_DB_PATH")
"""Where DB comes from when the command line leaves it out, first found wins."""

_KINDS: Final[dict[str, LooseChoice]] = {"EVENT": EVENT}
"""How a positional value of a store command is read, by its name (others: as typed)."""


def split_db(args: tuple[str, ...], names: tuple[str, ...]) -> tuple[str, list[str]]:
    """Return (DB, the other positional values): DB first, or from the environment."""
    if len(args) == len(names) + 1:
        return args[0], list(args[1:])
    from_env = next((os.environ[var] for var in DB_ENV_VARS if os.environ.get(var)), None)
    if len(args) == len(names) and from_env:
        return from_env, list(args)
    usage = " ".join(["DB", *names])
    msg = (
        f"expected {usage} (got {len(args)} value(s)); DB may be left out when "
        f"{' or '.join(DB_ENV_VARS)} is set"
    )
    raise click.UsageError(msg)


def _db_command(*names: str) -> Callable[[Callable[..., None]], click.Command]:
    """Declare a command taking ``[DB] NAMES...`` as positional arguments.

    A value named ``EVENT`` is read as every command reads an event; the command runs
    under :func:`~nexuslims_lifecycle.cli._common.exits_cleanly`.
    """

    def decorate(function: Callable[..., None]) -> click.Command:
        def callback(args: tuple[str, ...], **options: Any) -> None:
            db, values = split_db(args, names)
            typed = [
                convert(_KINDS[name], value, name) if name in _KINDS else value
                for name, value in zip(names, values, strict=True)
            ]
            function(db, *typed, **options)

        callback.__doc__ = function.__doc__
        command = click.command(name=function.__name__.removeprefix("cmd_"))(
            exits_cleanly(callback)
        )
        argument = click.Argument(["args"], nargs=-1, metavar=" ".join(["[DB]", *names]))
        command.params.insert(0, argument)
        return command

    return decorate


def _moved(sid: str, status: RecordStatus, **more: str) -> dict[str, str]:
    """Return the ``--json`` answer of a command that moved (or read) one session."""
    return {"session_identifier": sid, **more, "status": status.value}


@json_option
@click.option(
    "--wal",
    is_flag=True,
    help="Switch a SQLite file to WAL for good (for files only the store writes; "
    "not for a NexusLIMS database, whose backups copy the file alone).",
)
@click.option(
    "--no-guard",
    "no_guard",
    is_flag=True,
    help="Leave the lifecycle guard out (the store's moves need it: "
    "`nexuslims-lifecycle guard install DB` later).",
)
@_db_command()
def cmd_init(db: str, *, wal: bool, no_guard: bool, as_json: bool) -> None:
    """Create the session log tables that are missing and install the lifecycle guard.

    Never alters existing tables or rows. A SQLite file keeps its journal mode
    unless --wal.
    """
    with open_store(db) as store:
        store.init(wal=wal, guard=not no_guard)
    if as_json:
        emit_json({"db": db, "wal": wal, "guard": not no_guard})
        return
    notes = [note for note, on in (("WAL", wal), ("no guard", no_guard)) if on]
    click.echo(f"initialised {db}" + (f" ({', '.join(notes)})" if notes else ""))


@json_option
@click.option("--user", default=None, help="The user's name.")
@click.option("--instrument", required=True, help="The instrument's identifier.")
@_db_command("SID")
def cmd_start(db: str, sid: str, *, instrument: str, user: str | None, as_json: bool) -> None:
    """Start session SID: write its START row (WAITING_FOR_END)."""
    with open_store(db) as store:
        status = store.start(sid, instrument=instrument, user=user)
    if as_json:
        emit_json(_moved(sid, status, event="start"))
    else:
        click.echo(status.value)


@json_option
@click.option(
    "--expected",
    type=STATUS,
    default=None,
    metavar="STATUS",
    help="The status you read; if it moved on since, this is a conflict (exit 3).",
)
@click.option("--actor", default=None, help="Who moves it (a builder: its worker name).")
@_db_command("SID", "EVENT")
def cmd_advance(
    db: str,
    sid: str,
    event: str,
    *,
    actor: str | None,
    expected: RecordStatus | None,
    as_json: bool,
) -> None:
    """Move session SID by EVENT (one of: end, complete, fail_export, fail, ...)."""
    with open_store(db) as store:
        status = store.advance(sid, cast("EventName", event), actor=actor, expected=expected)
    if as_json:
        emit_json(_moved(sid, status, event=event))
    else:
        click.echo(status.value)


cmd_advance.help = f"Move session SID by EVENT, one of: {', '.join(EVENTS)}."


@json_option
@_db_command("SID")
def cmd_status(db: str, sid: str, *, as_json: bool) -> None:
    """Print the record status of session SID."""
    with open_store(db) as store:
        status = store.status(sid)
    if as_json:
        emit_json(_moved(sid, status))
    else:
        click.echo(status.value)


@json_option
@_db_command("SID")
def cmd_history(db: str, sid: str, *, as_json: bool) -> None:
    """Print every move of session SID, oldest first."""
    with open_store(db) as store:
        entries = store.history(sid)
    rows = [
        {
            "seq": entry.seq,
            "from": None if entry.from_status is None else entry.from_status.value,
            "to": entry.to_status.value,
            "event": entry.event,
            "actor": entry.actor,
            "at": entry.at.isoformat(),
        }
        for entry in entries
    ]
    if as_json:
        emit_json({"session_identifier": sid, "entries": rows})
        return
    for row in rows:
        source = row["from"] or "-"
        click.echo(
            f"{row['seq']:>3}  {row['at']}  {source:>18} -> {row['to']:<18} "
            f"{row['event']:<20} {row['actor'] or ''}".rstrip()
        )


@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
@click.option(
    "--status", type=STATUS, default=None, metavar="STATUS", help="Only sessions in this status."
)
@_db_command()
def cmd_sessions(db: str, *, status: RecordStatus | None, as_json: bool) -> None:
    """List the sessions, oldest first, as they are read (streamed).

    A session being built (NexusLIMS's builder, or a claim, has its build row in
    progress) shows TO_BE_BUILT with "building"; one whose rows disagree shows "?"
    and the problem (the audit says how to repair it).
    """
    with open_store(db) as store:
        for info in store.sessions(status):
            shown = "?" if info.status is None else info.status.value
            if as_json:
                record = {
                    "session_identifier": info.session_identifier,
                    "instrument": info.instrument,
                    "user": info.user,
                    "status": None if info.status is None else info.status.value,
                    "being_built": info.being_built,
                    "started_at": None if info.started_at is None else info.started_at.isoformat(),
                    "problem": info.problem,
                }
                click.echo(json.dumps(record, ensure_ascii=False))
            else:
                mark = "building" if info.being_built else ("rows disagree" if info.problem else "")
                click.echo(
                    f"{shown:<18} {mark:<13} {info.instrument:<26} {info.user or '-':<10} "
                    f"{info.session_identifier}".rstrip()
                )


COMMANDS: Final = (cmd_init, cmd_start, cmd_advance, cmd_status, cmd_history, cmd_sessions)
"""The store commands, to be added to the ``nexuslims-lifecycle`` group."""
