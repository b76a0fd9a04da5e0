"""Fixtures of the console tests: each test starts with no failed logins counted.

In-process, every request comes from the same client address ("testclient"):
without this, the failed logins of earlier tests would lock it.
"""

from __future__ import annotations

import pytest

from app.console import lockout


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(autouse=True)
def fresh_lockout(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> lockout.LoginLockout:
    fresh = lockout.LoginLockout(clock)
    monkeypatch.setattr(lockout, "LOCKOUT", fresh)
    return fresh
