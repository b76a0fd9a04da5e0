"""Admin inputs checked at the edge, before they reach PostgreSQL.

PostgreSQL refuses a NUL character and text that is not valid Unicode (a lone
surrogate), and timestamptz cannot hold a time whose UTC value falls outside
the years 1-9999 that Python's datetime can convert: such values used to
reach the driver and come back as 500. They are the caller's mistake: 400
naming the parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from litestar.exceptions import ValidationException

MAX_TEXT = 255  # the ledger's text columns are varchar(255)
MAX_LIST = 10_000


def text(name: str, value: str | None, max_length: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    if len(value) > max_length:
        raise ValidationException(f"parameter {name} is longer than {max_length} characters")
    if "\x00" in value or not _is_unicode(value):
        raise ValidationException(
            f"parameter {name} contains a NUL character or text that is not valid Unicode"
        )
    return value


def texts(name: str, values: Sequence[str]) -> list[str]:
    if len(values) > MAX_LIST:
        raise ValidationException(f"parameter {name} has more than {MAX_LIST} values")
    return [value for value in values if text(name, value) is not None]


def time(name: str, value: datetime | None) -> datetime | None:
    """`value` in UTC; 400 when it has no UTC equivalent a database could store."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC) if value.tzinfo is not None else value
    except OverflowError:
        raise ValidationException(
            f"parameter {name} is out of range (its UTC time is before year 1 or after 9999)"
        ) from None


def _is_unicode(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
