"""The programs some tests need besides Python: each has a marker of its own name.

A test marked with one runs only where the program is installed: without it,
the test is skipped locally, with the reason, and fails in CI (CI=true), where
.ci/run installs every one of them (tests/conftest.py checks the markers).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.devtools.pgbouncer import pgbouncer_binary


@dataclass(frozen=True)
class Binary:
    find: Callable[[], str | None]
    debian_package: str
    needed_for: str


def on_path(name: str, *elsewhere: str) -> Callable[[], str | None]:
    def find() -> str | None:
        return shutil.which(name) or next((p for p in elsewhere if Path(p).exists()), None)

    return find


BINARIES = {
    "pgbouncer": Binary(pgbouncer_binary, "pgbouncer", "the PgBouncer and deployment-stack tests"),
    "wrk": Binary(on_path("wrk"), "wrk", "the benchmark's smoke run"),
    "chromium": Binary(
        on_path("chromium", "/usr/bin/chromium"), "chromium", "the console's browser test"
    ),
    "promtool": Binary(on_path("promtool"), "prometheus", "checking the alert rules"),
}


def path(name: str) -> str:
    """Where the program is; only for tests carrying its marker (they run only if it is there)."""
    found = BINARIES[name].find()
    assert found is not None, f"{name} is missing: mark the test @pytest.mark.{name}"
    return found


def missing(name: str) -> str | None:
    """Why a test marked `name` cannot run here, or None when it can."""
    binary = BINARIES[name]
    if binary.find() is not None:
        return None
    return (
        f"{name} is not installed (apt-get install {binary.debian_package}),"
        f" needed for {binary.needed_for}"
    )
