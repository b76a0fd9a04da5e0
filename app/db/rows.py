"""Typed rows: a msgspec Struct's fields as a SELECT list, and a Struct built from a row."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

S = TypeVar("S", bound=msgspec.Struct)


def columns(struct: type[msgspec.Struct], *, raw_json: tuple[str, ...] = ()) -> str:
    """The SELECT list for a struct's fields; `raw_json` columns come back as JSON text."""
    return ", ".join(
        f"{name}::text AS {name}" if name in raw_json else name for name in struct.__struct_fields__
    )


def from_row(struct: type[S], row: Any, *, raw_json: tuple[str, ...] = ()) -> S:
    """A struct from a database row; `raw_json` text columns embedded as raw JSON."""
    values = dict(row)
    for name in raw_json:
        text = values.get(name)
        values[name] = None if text is None else msgspec.Raw(text.encode())
    return struct(**values)
