"""Helpers every command module shares: forgiving parameters, JSON, clean errors.

- :class:`LooseChoice` matches a choice whatever its case (and ``-`` for ``_``) and
  answers a typo with "did you mean ..." (exit 2); :data:`STATUS` and :data:`EVENT`
  are the two the lifecycle needs.
- :func:`json_option` adds the ``--json`` flag; :func:`emit_json` prints one object.
- :func:`exits_cleanly` turns library errors into a message and an exit status
  (2 for bad input, 1 otherwise), never a traceback.
- :func:`write_atomically` writes a file whole or not at all.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeVar

import click
from click.shell_completion import CompletionItem
from rich.console import Console

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import (
    InvalidArgument,
    InvalidConfiguration,
    LifecycleError,
    UnknownEvent,
    UnknownFormat,
    UnknownInstrument,
    UnknownSession,
    UnknownStatus,
)
from nexuslims_lifecycle.rules import EVENTS

__all__ = [
    "EVENT",
    "STATUS",
    "LooseChoice",
    "StatusType",
    "emit_json",
    "exits_cleanly",
    "json_option",
    "make_console",
    "write_atomically",
]

P = ParamSpec("P")
R = TypeVar("R")

BAD_INPUT: Final = (
    UnknownStatus,
    UnknownEvent,
    UnknownFormat,
    UnknownInstrument,
    UnknownSession,
    InvalidArgument,
    InvalidConfiguration,
)
"""Library errors that mean the input was wrong: a name, a value, a setting such as
``NX_FILE_DELAY_DAYS`` (exit 2, like click's own usage errors)."""


def _key(text: str) -> str:
    """Return the form two spellings of one choice share: case-folded, ``-`` as ``_``."""
    return text.strip().replace("-", "_").casefold()


class LooseChoice(click.ParamType):  # type: ignore[type-arg] # generic only in click >= 8.2
    """A choice matched regardless of case, with "did you mean" for near misses.

    Parameters
    ----------
    choices
        The canonical spellings; the converted value is always one of them.
    noun
        What a choice is, for messages (``"record status"``).
    """

    def __init__(self, choices: Iterable[str], noun: str) -> None:
        self.choices = tuple(choices)
        self.name = noun
        self._by_key = {_key(choice): choice for choice in self.choices}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Return the canonical spelling of ``value``, or fail with exit 2 and a hint."""
        choice = self._by_key.get(_key(value)) if isinstance(value, str) else None
        if choice is None:
            self.fail(self.describe_miss(value), param, ctx)
        return choice

    def describe_miss(self, value: object) -> str:
        """Return the message for a value that matches no choice."""
        msg = f"unknown {self.name} {value!r}: expected one of {', '.join(self.choices)}"
        close = difflib.get_close_matches(_key(str(value)), list(self._by_key), n=1, cutoff=0.6)
        return f"{msg}; did you mean {self._by_key[close[0]]!r}?" if close else msg

    def shell_complete(
        self,
        ctx: click.Context,  # noqa: ARG002 - click's signature
        param: click.Parameter,  # noqa: ARG002 - click's signature
        incomplete: str,
    ) -> list[CompletionItem]:
        """Offer the choices that start with what was typed, in any case."""
        return [
            CompletionItem(choice)
            for key, choice in self._by_key.items()
            if key.startswith(_key(incomplete))
        ]


class StatusType(LooseChoice):
    """A :class:`RecordStatus` typed in any case: ``to_be_built`` works."""

    def __init__(self) -> None:
        super().__init__((status.value for status in RecordStatus), "record status")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Return the :class:`RecordStatus` that ``value`` names."""
        if isinstance(value, RecordStatus):
            return value
        return RecordStatus(super().convert(value, param, ctx))


STATUS: Final = StatusType()
"""Parameter type for a record status (case-insensitive, "did you mean")."""

EVENT: Final = LooseChoice(EVENTS, "lifecycle event")
"""Parameter type for a lifecycle event name (case-insensitive, "did you mean")."""


def json_option(func: Callable[P, R]) -> Callable[P, R]:
    """Add ``--json`` (passed as ``as_json``) to a command."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print one JSON object instead of text (shapes in docs/cli.md).",
    )(func)


def emit_json(data: Mapping[str, object]) -> None:
    """Print ``data`` as indented JSON on stdout, keys in the order given."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def make_console() -> Console:
    """Return a console on the current stdout that adds no colour guesses of its own."""
    return Console(highlight=False)


def exits_cleanly(func: Callable[P, R]) -> Callable[P, R]:
    """Turn library errors raised by a command into a message and a non-zero exit.

    Bad input (:data:`BAD_INPUT`) exits 2, like click's usage errors; any other
    :class:`~nexuslims_lifecycle.errors.LifecycleError` exits 1.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except BAD_INPUT as error:
            ctx = click.get_current_context(silent=True)
            raise click.UsageError(str(error), ctx) from error
        except LifecycleError as error:
            raise click.ClickException(str(error)) from error

    return wrapper


def _mode_for(path: Path) -> int:
    """Return the permissions to give ``path``: its own if it exists, else rw-r--r--."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0o644


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (temporary file, then rename).

    Raises
    ------
    click.ClickException
        When the file cannot be written, naming the path and the reason (exit 1).
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    directory = path.parent if str(path.parent) else Path()
    try:
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise click.ClickException(f"cannot write {path}: {error.strerror or error}") from error
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            os.fchmod(stream.fileno(), _mode_for(path))
        Path(temporary).replace(path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise click.ClickException(f"cannot write {path}: {error.strerror or error}") from error
