"""The ``nexuslims-lifecycle`` command line.

Every command prints for people by default; query commands take ``--json`` for
scripts. Bad input ends with a clear message and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import click
from rich.console import Console

from nexuslims_lifecycle import __version__
from nexuslims_lifecycle._cli_audit import audit_command
from nexuslims_lifecycle._cli_query import can, diagram, explain, replay

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="nexuslims-lifecycle")
def main() -> None:
    """Drive, query, draw and audit the NexusLIMS record lifecycle."""


@main.command()
def demo() -> None:
    """Drive a dozen realistic NEMO sessions through the lifecycle and show the result."""
    from nexuslims_lifecycle import _demo  # noqa: PLC0415 - keep start-up fast

    _demo.run(Console())


for _command in (diagram, can, explain, replay, audit_command):
    main.add_command(_command)
