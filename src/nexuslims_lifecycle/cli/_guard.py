"""The ``guard`` commands: install, inspect and remove the database's lifecycle guard.

DB is a file path (SQLite) or a SQLAlchemy URL, or comes from
``NEXUSLIMS_LIFECYCLE_DB`` / ``NX_DB_PATH``. Errors exit as every command's do: 2
for a database that cannot be used (no ``session_log``, a missing file), 1 when the
guard cannot be written (a read-only file, a role that may not create functions),
nothing changed either way.
"""

from __future__ import annotations

import sys
from typing import Final

import click

from nexuslims_lifecycle.cli._common import (
    EXIT_NO,
    emit_json,
    exits_cleanly,
    json_option,
    open_store,
)
from nexuslims_lifecycle.cli._store import split_db

__all__ = ["guard"]

_STATES: Final = {
    "installed": "installed, matching this version's lifecycle",
    "outdated": "installed, from another version: run `guard install` to replace it",
    "partial": "partly installed (triggers missing): run `guard install` to repair it",
    "absent": "not installed: run `guard install` to install it",
}


@click.group()
def guard() -> None:
    """Install, inspect or remove the lifecycle guard of a session log database.

    The guard (triggers generated from the lifecycle) refuses any status change
    that is not a lifecycle move and records every move in status_history,
    whoever writes: this library, NexusLIMS, or SQL typed by hand.
    """


@guard.command("install")
@click.argument("args", nargs=-1, metavar="[DB]")
@json_option
@exits_cleanly
def guard_install(args: tuple[str, ...], *, as_json: bool) -> None:
    """Install the guard (or replace an older one), in one transaction."""
    db, _ = split_db(args, ())
    with open_store(db) as store:
        before = store.guard_status()
        store.install_guard()
    if as_json:
        emit_json({"db": db, "before": before.state, "version": before.expected})
    elif before.state == "installed":
        click.echo(f"the lifecycle guard of {db} is already installed ({before.version})")
    else:
        click.echo(f"installed the lifecycle guard on {db} ({before.expected})")


@guard.command("status")
@click.argument("args", nargs=-1, metavar="[DB]")
@json_option
@exits_cleanly
def guard_status(args: tuple[str, ...], *, as_json: bool) -> None:
    """Say whether the guard is installed and matches this version (exit 1 if not)."""
    db, _ = split_db(args, ())
    with open_store(db) as store:
        found = store.guard_status()
    installed_at = None if found.installed_at is None else found.installed_at.isoformat()
    if as_json:
        emit_json(
            {
                "state": found.state,
                "version": found.version,
                "installed_at": installed_at,
                "expected": found.expected,
            }
        )
    else:
        click.echo(f"{db}: lifecycle guard {_STATES[found.state]}")
        if found.version is not None:
            click.echo(f"version {found.version} (this version: {found.expected})")
    if found.state != "installed":
        sys.exit(EXIT_NO)


@guard.command("remove")
@click.argument("args", nargs=-1, metavar="[DB]")
@json_option
@exits_cleanly
def guard_remove(args: tuple[str, ...], *, as_json: bool) -> None:
    """Remove the guard; the rows and their history stay as they are."""
    db, _ = split_db(args, ())
    with open_store(db) as store:
        had = store.remove_guard()
    if as_json:
        emit_json({"db": db, "removed": had})
        return
    click.echo(f"removed the lifecycle guard from {db}" if had else f"{db} had no lifecycle guard")
