"""Reading the deployment files: Dockerfile, docker-compose.yml, .env.example, .dockerignore.

Just enough of each format for the tests to compare them with the harness
(app/devtools/stack.py): Dockerfile instructions with continuation lines,
Compose's `${VAR}` interpolation, and `NAME=value` lines.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from app.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"


# --- Dockerfile -------------------------------------------------------------


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arguments for name, arguments in self.instructions if name == keyword]

    def last(self, keyword: str) -> str | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        """Every `ENV KEY=value ...` of the stage, in order."""
        values: dict[str, str] = {}
        for arguments in self.all("ENV"):
            for pair in shlex.split(arguments):
                key, _, value = pair.partition("=")
                values[key] = value
        return values


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction; comments dropped, `\\` continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def dockerfile_stages(text: str | None = None) -> list[Stage]:
    text = DOCKERFILE.read_text() if text is None else text
    stages: list[Stage] = []
    for keyword, arguments in dockerfile_instructions(text):
        if keyword == "FROM":
            words = [word for word in arguments.split() if not word.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image=words[0], name=name))
        elif stages:
            stages[-1].instructions.append((keyword, arguments))
    return stages


def exec_form(arguments: str) -> list[str]:
    """The JSON array of an exec-form CMD / ENTRYPOINT / HEALTHCHECK CMD."""
    value = json.loads(arguments)
    assert isinstance(value, list), f"not exec form: {arguments}"
    assert all(isinstance(item, str) for item in value)
    return value


def healthcheck_command(stage: Stage) -> list[str]:
    """The exec-form command of the stage's HEALTHCHECK (options before CMD skipped)."""
    arguments = stage.last("HEALTHCHECK")
    assert arguments is not None, "no HEALTHCHECK"
    _options, keyword, command = arguments.partition("CMD ")
    assert keyword, f"HEALTHCHECK without CMD: {arguments}"
    return exec_form(command)


def image_reference(image: str) -> tuple[str, str | None]:
    """(repository, tag) of an image reference; the tag is None when absent."""
    reference = image.split("@", 1)[0]
    repository, _, tag = reference.rpartition(":")
    if not repository or "/" in tag:
        return reference, None
    return repository, tag


# --- docker-compose.yml -----------------------------------------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})"
)


class MissingVariable(Exception):
    pass


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation of one string: $$, ${X}, ${X:-d}, ${X-d}, ${X:?e}, ${X?e}."""

    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        current = env.get(name)
        missing = current is None or (op is not None and op.startswith(":") and current == "")
        if op in (":-", "-"):
            return arg if missing else str(current)
        if op in (":?", "?"):
            if missing:
                raise MissingVariable(f"{name}: {arg}")
            return str(current)
        return current or ""

    return _VARIABLE.sub(substitute, value)


def variables(value: str) -> Iterator[tuple[str, str | None, str | None]]:
    """(name, operator, argument) of every ${...} in a string."""
    for match in _VARIABLE.finditer(value):
        if match.group("name"):
            yield match.group("name"), match.group("op"), match.group("arg")


def compose_raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def compose_rendered(env: Mapping[str, str]) -> dict[str, Any]:
    """The compose file with every string interpolated from `env` (as from .env)."""

    def render(node: Any) -> Any:
        if isinstance(node, str):
            return interpolate(node, env)
        if isinstance(node, dict):
            return {key: render(value) for key, value in node.items()}
        if isinstance(node, list):
            return [render(item) for item in node]
        return node

    rendered: dict[str, Any] = render(compose_raw())
    return rendered


def service_environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's `environment`, in its mapping or its list form."""
    environment = service.get("environment", {})
    if isinstance(environment, list):
        return dict(item.partition("=")[::2] for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


def command(service: Mapping[str, Any]) -> list[str] | None:
    value = service.get("command")
    if value is None or isinstance(value, list):
        return value
    return shlex.split(value)


# --- .env.example and app/config.py ------------------------------------------

_ASSIGNMENT = re.compile(r"^(?P<comment>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


@dataclass(frozen=True)
class EnvExample:
    values: dict[str, str]  # NAME=value lines
    commented: set[str]  # `# NAME=value` lines: documented, not set

    @property
    def documented(self) -> set[str]:
        return set(self.values) | self.commented


def env_example() -> EnvExample:
    values: dict[str, str] = {}
    commented: set[str] = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = _ASSIGNMENT.match(line.strip())
        if match is None:
            continue
        if match.group("comment"):
            commented.add(match.group("name"))
        else:
            values[match.group("name")] = match.group("value")
    return EnvExample(values, commented)


class _RecordingEnvironment(dict[str, str]):
    def __init__(self) -> None:
        super().__init__()
        self.read: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        self.read.append(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.append(key)
        return super().__getitem__(key)


def config_variables() -> set[str]:
    """Every environment variable app/config.py reads, found by watching load_settings()."""
    environment = _RecordingEnvironment()
    load_settings(environment)
    return set(environment.read)


# --- .dockerignore ------------------------------------------------------------


def dockerignore_patterns() -> list[str]:
    return [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
