"""Settings from the environment: NX_FILE_DELAY_DAYS as NexusLIMS reads it."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

import nexuslims_lifecycle
from nexuslims_lifecycle.config import FILE_DELAY_VARIABLE, file_delay
from nexuslims_lifecycle.errors import InvalidConfiguration, LifecycleError
from nexuslims_lifecycle.rules import FILE_DELAY


def test_unset_means_nexuslims_default_of_two_days() -> None:
    assert file_delay({}) == FILE_DELAY == timedelta(days=2)
    assert file_delay({"NX_OTHER": "5"}) == FILE_DELAY


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2", timedelta(days=2)),
        ("0.5", timedelta(hours=12)),
        ("3.25", timedelta(days=3, hours=6)),
        (" 1 ", timedelta(days=1)),
        ("1e-3", timedelta(seconds=86.4)),
        ("+7", timedelta(days=7)),
    ],
)
def test_float_days_are_read(text: str, expected: timedelta) -> None:
    assert file_delay({FILE_DELAY_VARIABLE: text}) == expected


def test_the_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NX_FILE_DELAY_DAYS", "4.5")
    assert file_delay() == timedelta(days=4, hours=12)
    monkeypatch.delenv("NX_FILE_DELAY_DAYS")
    assert file_delay() == FILE_DELAY


@pytest.mark.parametrize(
    "text",
    ["", "abc", "2 days", "0", "0.0", "-1", "-0.5", "nan", "inf", "-inf", "1e300", "1,5"],
)
def test_unusable_values_are_refused_naming_variable_value_and_expectation(text: str) -> None:
    """Not a number, not finite, <= 0 (NexusLIMS's gt=0) or beyond timedelta: refused."""
    environ = {FILE_DELAY_VARIABLE: text}
    with pytest.raises(InvalidConfiguration) as caught:
        file_delay(environ)
    error = caught.value
    assert (error.name, error.value) == ("NX_FILE_DELAY_DAYS", text)
    assert error.expected.startswith("a number of days greater than 0")
    assert str(error) == (
        f"invalid configuration NX_FILE_DELAY_DAYS={text!r}: expected a number of days "
        "greater than 0, e.g. 2 or 0.5 (as NexusLIMS reads it); unset it for the default "
        "of 2 days"
    )
    assert environ == {FILE_DELAY_VARIABLE: text}


def test_refused_value_in_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NX_FILE_DELAY_DAYS", "two")
    with pytest.raises(InvalidConfiguration, match=r"NX_FILE_DELAY_DAYS='two'"):
        file_delay()
    assert os.environ["NX_FILE_DELAY_DAYS"] == "two"


def test_the_error_is_a_lifecycle_value_error_exported_by_the_package() -> None:
    assert issubclass(InvalidConfiguration, LifecycleError)
    assert issubclass(InvalidConfiguration, ValueError)
    assert nexuslims_lifecycle.InvalidConfiguration is InvalidConfiguration
    assert "InvalidConfiguration" in nexuslims_lifecycle.__all__
