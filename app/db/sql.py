"""SQL text with named parameters, compiled once to asyncpg's numbered ones.

The webhook statements are long CTE chains with a dozen parameters; `:name`
reads better there than `$7`, and lets statements share fragments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# `:name`, but not the second colon of a `::type` cast.
_PARAMETER = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")


class Statement:
    def __init__(self, text: str) -> None:
        self.names: list[str] = []

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.names:
                self.names.append(name)
            return f"${self.names.index(name) + 1}"

        self.text = _PARAMETER.sub(number, text)

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        """The positional arguments, in placeholder order; a missing name is a KeyError."""
        return [values[name] for name in self.names]
