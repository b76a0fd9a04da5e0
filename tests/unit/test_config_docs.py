"""docs/configuration.md documents exactly the variables app/config.py reads, with their defaults.

The variables read are found by watching load_settings() read an empty
environment; the documented ones are the rows of the table under "The
service's variables". A documented default is checked by setting the variable
to it: the settings must come out as if it were not set at all.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from app.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION = ROOT / "docs" / "configuration.md"
ENV_EXAMPLE = ROOT / ".env.example"

SERVICE_SECTION = "## The service's variables"
COMPOSE_SECTION = "## Compose only"
# A table row naming its variables in the first cell: | `NAME` | default | meaning |
_ROW = re.compile(r"^\|(?P<names>[^|]+)\|(?P<default>[^|]*)\|")
_NAME = re.compile(r"`([A-Z][A-Z0-9_]*)`")
# A default cell that starts with one literal value: `10485760`, `INFO`, `false`.
_LITERAL_DEFAULT = re.compile(r"^`(?P<value>[^`]+)`(\s*\(.*\))?$")
_ENV_ASSIGNMENT = re.compile(r"^#?\s*(?P<name>[A-Z][A-Z0-9_]*)=")


class _RecordingEnvironment(dict[str, str]):
    """An empty environment that remembers every name looked up in it."""

    def __init__(self) -> None:
        super().__init__()
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)


def variables_read() -> set[str]:
    environment = _RecordingEnvironment()
    load_settings(environment)
    return environment.read


def section(heading: str) -> list[str]:
    """The lines under a `## ` heading of docs/configuration.md, up to the next one."""
    lines = CONFIGURATION.read_text().splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def table(heading: str) -> dict[str, str]:
    """Each variable named in the section's table, with its default cell."""
    rows: dict[str, str] = {}
    for line in section(heading):
        match = _ROW.match(line)
        if match is None:
            continue
        for name in _NAME.findall(match.group("names")):
            rows[name] = match.group("default").strip()
    return rows


def test_the_table_is_found() -> None:
    assert {"DATABASE_URL", "SHOPIFY_API_SECRET", "WEB_CONCURRENCY"} <= set(table(SERVICE_SECTION))


def test_every_variable_the_code_reads_is_documented_and_no_other() -> None:
    documented = set(table(SERVICE_SECTION))
    read = variables_read()
    assert not read - documented, f"add to docs/configuration.md: {sorted(read - documented)}"
    assert not documented - read, f"not read by app/config.py: {sorted(documented - read)}"


def test_documented_defaults_are_the_defaults() -> None:
    unset = load_settings({})
    checked = []
    for name, default in table(SERVICE_SECTION).items():
        literal = _LITERAL_DEFAULT.match(default)
        if literal is None:
            continue  # "unset: ...", "(required ...)", or a computed default
        assert load_settings({name: literal.group("value")}) == unset, (name, default)
        checked.append(name)
    assert {"MAX_BODY_BYTES", "LOG_LEVEL", "SHOPIFY_API_VERSION", "CONSOLE_ENABLED"} <= set(checked)


def test_a_wrong_default_would_be_noticed() -> None:
    assert load_settings({"DB_POOL_SIZE": "11"}) != load_settings({})


def test_env_example_documents_the_same_variables() -> None:
    in_env_example = {
        match.group("name")
        for line in ENV_EXAMPLE.read_text().splitlines()
        if (match := _ENV_ASSIGNMENT.match(line.strip()))
    }
    documented = set(table(SERVICE_SECTION)) | set(table(COMPOSE_SECTION))
    assert in_env_example == documented, (
        f".env.example only: {sorted(in_env_example - documented)}; "
        f"docs/configuration.md only: {sorted(documented - in_env_example)}"
    )
