"""Settings read from the environment, as NexusLIMS reads them.

NexusLIMS configures its record builder with environment variables; the ones that
change what the lifecycle allows are read here, with NexusLIMS's defaults and
validation, so the store, the audit and NexusLIMS itself judge a session alike.

Examples
--------
>>> from nexuslims_lifecycle.config import file_delay
>>> file_delay({})
datetime.timedelta(days=2)
>>> file_delay({"NX_FILE_DELAY_DAYS": "0.5"})
datetime.timedelta(seconds=43200)
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Final

from nexuslims_lifecycle.errors import InvalidConfiguration
from nexuslims_lifecycle.rules import FILE_DELAY

__all__ = ["FILE_DELAY_VARIABLE", "file_delay"]

FILE_DELAY_VARIABLE: Final = "NX_FILE_DELAY_DAYS"
"""The environment variable NexusLIMS reads its file delay from (float days, > 0)."""

_EXPECTED: Final = (
    "a number of days greater than 0, e.g. 2 or 0.5 (as NexusLIMS reads it); "
    f"unset it for the default of {FILE_DELAY.days} days"
)


def file_delay(environ: Mapping[str, str] | None = None) -> timedelta:
    """Return how long after a session's END ``find_no_files`` must wait.

    That is ``NX_FILE_DELAY_DAYS`` (float days, greater than 0, as NexusLIMS's own
    settings require) when it is set, else :data:`~nexuslims_lifecycle.rules.FILE_DELAY`
    (2 days, NexusLIMS's default).

    Parameters
    ----------
    environ
        Where to read the variable; the process environment (``os.environ``) by default.

    Returns
    -------
    timedelta
        The file delay.

    Raises
    ------
    InvalidConfiguration
        When the variable is set to something other than a finite number of days
        greater than 0 (or to more days than a ``timedelta`` holds).
    """
    env = os.environ if environ is None else environ
    text = env.get(FILE_DELAY_VARIABLE)
    if text is None:
        return FILE_DELAY
    try:
        days = float(text)
    except ValueError:
        raise InvalidConfiguration(FILE_DELAY_VARIABLE, text, _EXPECTED) from None
    if not math.isfinite(days) or days <= 0:
        raise InvalidConfiguration(FILE_DELAY_VARIABLE, text, _EXPECTED)
    try:
        return timedelta(days=days)
    except OverflowError:
        raise InvalidConfiguration(FILE_DELAY_VARIABLE, text, _EXPECTED) from None
