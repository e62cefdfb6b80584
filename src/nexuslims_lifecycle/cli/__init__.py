"""The ``nexuslims-lifecycle`` command line.

Every command prints for people by default and takes ``--json`` for scripts (but
``demo``, a show for people). Statuses and events are read the same way everywhere
(any case, ``-`` for ``_``, "did you mean"), and every command exits the same way:
0 yes/done, 1 no (or findings, or a refusal), 2 bad input, 3 conflict; never a
traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from rich.console import Console

from nexuslims_lifecycle import __version__
from nexuslims_lifecycle.cli._audit import audit_command
from nexuslims_lifecycle.cli._common import exits_cleanly

if TYPE_CHECKING:
    from nexuslims_lifecycle.store import SessionLogStore
from nexuslims_lifecycle.cli._query import can, diagram, explain, replay
from nexuslims_lifecycle.cli._reprocess import reprocess_command

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="nexuslims-lifecycle")
def main() -> None:
    """Drive, query, draw and audit the NexusLIMS record lifecycle."""


@main.command()
@click.option("--in-memory", is_flag=True, help="Drive in-memory sessions only (no database).")
@click.option(
    "--db",
    type=click.Path(dir_okay=False),
    default="demo.db",
    show_default=True,
    help="The SQLite file to recreate.",
)
@click.option("--builders", type=click.IntRange(1, 16), default=3, show_default=True)
@exits_cleanly
def demo(in_memory: bool, db: str, builders: int) -> None:
    """Drive twenty NEMO sessions through a SQLite session log with builder processes."""
    if in_memory:
        from nexuslims_lifecycle.cli import _demo  # noqa: PLC0415 - keep start-up fast

        _demo.run(Console())
        return
    from pathlib import Path  # noqa: PLC0415

    from nexuslims_lifecycle.cli import _demo_store  # noqa: PLC0415 - needs the sql extra

    _demo_store.run(Console(), Path(db), builders=builders, epilogue=_demo_epilogue)


def _demo_epilogue(store: SessionLogStore, console: Console) -> None:
    """End the demo with the lifecycle the sessions followed, then an audit of the file."""
    from nexuslims_lifecycle.audit import audit  # noqa: PLC0415 - keep start-up fast
    from nexuslims_lifecycle.cli._audit import show_report  # noqa: PLC0415 - start-up
    from nexuslims_lifecycle.diagrams import render  # noqa: PLC0415 - keep start-up fast

    console.rule("The lifecycle they followed (nexuslims-lifecycle diagram)")
    console.print(render("mermaid"), markup=False, highlight=False, soft_wrap=True, end="")
    console.rule("Audit of the demo database (nexuslims-lifecycle audit)")
    show_report(audit(store.url.render_as_string(hide_password=False)), console)


def _add_store_commands() -> None:
    """Register the session log commands (init, start, advance, status, history, sessions)."""
    from nexuslims_lifecycle.cli._guard import guard  # noqa: PLC0415 - keep start-up fast
    from nexuslims_lifecycle.cli._store import COMMANDS  # noqa: PLC0415 - keep start-up fast

    for command in COMMANDS:
        main.add_command(command)
    main.add_command(guard)


for _command in (diagram, can, explain, replay, audit_command):
    main.add_command(_command)
_add_store_commands()
main.add_command(reprocess_command)
