"""The ``guard`` commands: install, inspect and remove the database's lifecycle guard.

DB is a file path (SQLite) or a SQLAlchemy URL, or comes from
``NEXUSLIMS_LIFECYCLE_DB`` / ``NX_DB_PATH``. Every failure to install or remove (no
``session_log``, a read-only file, a role that may not create functions) is bad
input for these commands: a message saying what to do, exit 2, nothing changed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

import click

from nexuslims_lifecycle.cli._common import emit_json
from nexuslims_lifecycle.cli._store import split_db
from nexuslims_lifecycle.errors import LifecycleError

if TYPE_CHECKING:
    from nexuslims_lifecycle.store import SessionLogStore

__all__ = ["guard"]

_STATES: Final = {
    "installed": "installed, matching this version's lifecycle",
    "outdated": "installed, from another version: run `guard install` to replace it",
    "partial": "partly installed (triggers missing): run `guard install` to repair it",
    "absent": "not installed: run `guard install` to install it",
}


@contextmanager
def _opened(db: str) -> Iterator[SessionLogStore]:
    """Open the store at ``db``; any library error ends the command with exit 2."""
    try:
        from nexuslims_lifecycle.store import SessionLogStore  # noqa: PLC0415 - the sql extra

        with SessionLogStore(db) as store:
            yield store
    except (LifecycleError, ImportError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


@click.group()
def guard() -> None:
    """Install, inspect or remove the lifecycle guard of a session log database.

    The guard (triggers generated from the lifecycle) refuses any status change
    that is not a lifecycle move and records every move in status_history,
    whoever writes: this library, NexusLIMS, or SQL typed by hand.
    """


@guard.command("install")
@click.argument("args", nargs=-1, metavar="[DB]")
def guard_install(args: tuple[str, ...]) -> None:
    """Install the guard (or replace an older one), in one transaction."""
    db, _ = split_db(args, ())
    with _opened(db) as store:
        before = store.guard_status()
        store.install_guard()
    if before.state == "installed":
        click.echo(f"the lifecycle guard of {db} is already installed ({before.version})")
    else:
        click.echo(f"installed the lifecycle guard on {db} ({before.expected})")


@guard.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.argument("args", nargs=-1, metavar="[DB]")
def guard_status(args: tuple[str, ...], *, as_json: bool) -> None:
    """Say whether the guard is installed and matches this version (exit 1 if not)."""
    db, _ = split_db(args, ())
    with _opened(db) as store:
        found = store.guard_status()
    if as_json:
        emit_json(
            {
                "state": found.state,
                "version": found.version,
                "installed_at": found.installed_at,
                "expected": found.expected,
            }
        )
    else:
        click.echo(f"{db}: lifecycle guard {_STATES[found.state]}")
        if found.version is not None:
            click.echo(f"version {found.version} (this version: {found.expected})")
    if found.state != "installed":
        sys.exit(1)


@guard.command("remove")
@click.argument("args", nargs=-1, metavar="[DB]")
def guard_remove(args: tuple[str, ...]) -> None:
    """Remove the guard; the rows and their history stay as they are."""
    db, _ = split_db(args, ())
    with _opened(db) as store:
        had = store.remove_guard()
    click.echo(f"removed the lifecycle guard from {db}" if had else f"{db} had no lifecycle guard")
