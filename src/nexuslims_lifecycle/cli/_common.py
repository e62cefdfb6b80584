"""Helpers every command module shares: forgiving parameters, JSON, clean errors.

- :class:`LooseChoice` matches a choice whatever its case (and ``-`` for ``_``) and
  answers a typo with "did you mean ..." (exit 2); :data:`STATUS` and :data:`EVENT`
  are the two the lifecycle needs, used by every command that takes a status or an
  event (options and positional values alike, see :func:`convert`).
- :func:`json_option` adds the ``--json`` flag; :func:`emit_json` prints one object.
- :func:`exits_cleanly` (and :func:`library_errors`) turn library errors into a
  message and one exit status for every command: :data:`EXIT_NO` (1),
  :data:`EXIT_BAD_INPUT` (2), :data:`EXIT_CONFLICT` (3); never a traceback.
- :func:`open_store` opens the session log, importing the ``sql`` extra lazily.
- :func:`write_atomically` writes a file whole or not at all.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

import click
from click.shell_completion import CompletionItem
from rich.console import Console

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import (
    EmptySelection,
    InvalidArgument,
    InvalidConfiguration,
    LifecycleError,
    MissingExtra,
    TransitionConflict,
    UnknownEvent,
    UnknownFormat,
    UnknownInstrument,
    UnknownSession,
    UnknownStatus,
    UnusableDatabase,
)
from nexuslims_lifecycle.rules import EVENTS

if TYPE_CHECKING:
    from nexuslims_lifecycle.store import SessionLogStore

__all__ = [
    "BAD_INPUT",
    "EVENT",
    "EXIT_BAD_INPUT",
    "EXIT_CONFLICT",
    "EXIT_NO",
    "STATUS",
    "BadInput",
    "CommandError",
    "Conflict",
    "LooseChoice",
    "StatusType",
    "convert",
    "emit_json",
    "exits_cleanly",
    "json_option",
    "library_errors",
    "make_console",
    "open_store",
    "write_atomically",
]

EXIT_NO: Final = 1
"""A "no": an illegal move, findings, a refusal, or work that could not be done."""
EXIT_BAD_INPUT: Final = 2
"""Bad input: nothing was done (click's own usage errors exit 2 too)."""
EXIT_CONFLICT: Final = 3
"""Another writer moved the session since it was read: read again and retry."""

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any] | click.Command)

BAD_INPUT: Final = (
    UnknownStatus,
    UnknownEvent,
    UnknownFormat,
    UnknownInstrument,
    UnknownSession,
    InvalidArgument,
    InvalidConfiguration,
    UnusableDatabase,
    EmptySelection,
)
"""Library errors that mean the input was wrong: a name, a value, a setting such as
``NX_FILE_DELAY_DAYS``, a database that cannot be used, a selection of nothing (exit 2,
like click's own usage errors)."""


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


def json_option(func: F) -> F:
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


class CommandError(click.ClickException):
    """A library error as a command ends with it: ``error: ...`` on stderr, exit 1.

    :class:`BadInput` (exit 2) and :class:`Conflict` (exit 3) are the other two.

    Parameters
    ----------
    message
        What went wrong and what to do.
    """

    exit_code = EXIT_NO
    prefix = "error"

    def show(self, file: IO[Any] | None = None) -> None:
        """Print ``prefix: message`` on stderr (or ``file``), without click's usage line."""
        click.echo(f"{self.prefix}: {self.format_message()}", file=file, err=file is None)


class BadInput(CommandError):
    """Bad input that only the library could see (an unknown session...): exit 2."""

    exit_code = EXIT_BAD_INPUT


class Conflict(CommandError):
    """Another writer moved the session first: ``conflict: ...``, exit 3."""

    exit_code = EXIT_CONFLICT
    prefix = "conflict"


@contextmanager
def library_errors() -> Iterator[None]:
    """Turn the library's errors raised inside into :class:`CommandError`.

    A conflict exits 3, bad input (:data:`BAD_INPUT`) 2, any other
    :class:`~nexuslims_lifecycle.errors.LifecycleError` (a refusal, a missing extra, a
    database that could not be written) 1. An :class:`ImportError` becomes the ``sql``
    extra's message only when it is about that extra; any other one propagates.
    """
    try:
        yield
    except TransitionConflict as error:
        raise Conflict(str(error)) from error
    except BAD_INPUT as error:
        raise BadInput(str(error)) from error
    except LifecycleError as error:
        raise CommandError(str(error)) from error
    except ImportError as error:
        missing = MissingExtra.of_sql_extra(error, "the session log store")
        if missing is None:
            raise
        raise CommandError(str(missing)) from error


def exits_cleanly(func: Callable[P, R]) -> Callable[P, R]:
    """Run a command inside :func:`library_errors`: a message and an exit status, no traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with library_errors():
            return func(*args, **kwargs)

    return wrapper


@contextmanager
def open_store(db: str) -> Iterator[SessionLogStore]:
    """Open the session log at ``db`` (a path or URL), importing the ``sql`` extra only now.

    Use inside :func:`library_errors` (or a command under :func:`exits_cleanly`), which
    turns a missing extra into its message.
    """
    from nexuslims_lifecycle.store import SessionLogStore  # noqa: PLC0415 - the sql extra

    with SessionLogStore(db) as store:
        yield store


def convert(kind: LooseChoice, value: str, hint: str) -> Any:
    """Convert a positional ``value`` read by hand as click would (exit 2 and a hint if bad).

    Parameters
    ----------
    kind
        :data:`STATUS`, :data:`EVENT` or another :class:`LooseChoice`.
    value
        What was typed.
    hint
        The argument's name for the message (``EVENT``).
    """
    ctx = click.get_current_context(silent=True)
    try:
        return kind.convert(value, None, ctx)
    except click.BadParameter as error:
        raise click.BadParameter(error.message, ctx, param_hint=hint) from None


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
