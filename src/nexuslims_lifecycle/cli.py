"""The ``nexuslims-lifecycle`` command line.

Every command prints for people by default; query commands take ``--json`` for
scripts. Bad input ends with a clear message and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import click
from rich.console import Console

from nexuslims_lifecycle import __version__

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


def _register() -> None:
    """Attach the command modules to ``main``."""
    from nexuslims_lifecycle._cli_audit import audit_command  # noqa: PLC0415 - after main exists

    main.add_command(audit_command)


_register()
