"""Calls to the database's SQL functions, with named arguments.

The delivery functions take a dozen or more arguments; naming them in the call
(`p_shop => $2`) keeps Python and SQL in step, and a missing value is a KeyError
rather than an argument in the wrong place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class SqlFunction:
    """`SELECT <columns> FROM name(p_a => $1, p_b => $2, ...)` for the given parameter names."""

    def __init__(self, name: str, parameters: Sequence[str], columns: str = "*") -> None:
        self.name = name
        self.parameters = tuple(parameters)
        arguments = ", ".join(
            f"p_{parameter} => ${number}" for number, parameter in enumerate(self.parameters, 1)
        )
        # Names come from this code base, never from input.
        self.sql = f"SELECT {columns} FROM {name}({arguments})"  # noqa: S608

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        """The positional arguments for `sql`, taken by name from `values`."""
        return [values[parameter] for parameter in self.parameters]
