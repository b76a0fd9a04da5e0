"""Failed console logins, counted per account and per client address, with locks that expire.

After FAILURES_BEFORE_LOCK failed logins in a row for an account, or from a
client address, further logins for it (the right password too) are refused
with 429 and Retry-After for FIRST_LOCK_SECONDS; each failure after a lock
doubles the next one, up to MAX_LOCK_SECONDS. A refused attempt does not count
(nobody can keep an account locked by knocking while it is), a successful
login clears its account's failures, and failures are forgotten after
FORGET_AFTER_SECONDS without one. Each worker process keeps its own counts.

The client address is the connection's, or, only from a proxy listed in
TRUSTED_PROXIES, the one it forwards (Uvicorn's proxy headers, app/cli/serve.py):
rotating X-Forwarded-For from anywhere else changes nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

FAILURES_BEFORE_LOCK = 5
FIRST_LOCK_SECONDS = 30.0
MAX_LOCK_SECONDS = 900.0
FORGET_AFTER_SECONDS = 3600.0
# Keys kept at most (accounts and addresses); beyond, the longest quiet are dropped.
MAX_KEYS = 10_000

# The address of the client whose request is being served (set by the console's app).
CLIENT_ADDRESS: ContextVar[str] = ContextVar("console_client_address", default="unknown")


@dataclass
class _Record:
    failures: int = 0
    last_failure: float = 0.0
    locked_until: float = 0.0


class LoginLockout:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._records: dict[str, _Record] = {}

    @staticmethod
    def keys(username: str, address: str) -> tuple[str, str]:
        return f"account:{username.lower()}", f"address:{address}"

    def locked_for(self, keys: tuple[str, ...]) -> int:
        """Whole seconds until every key may try again (0: now)."""
        now = self.clock()
        remaining = max(
            (record.locked_until - now for key in keys if (record := self._records.get(key))),
            default=0.0,
        )
        return math.ceil(remaining) if remaining > 0 else 0

    def failed(self, keys: tuple[str, ...]) -> None:
        now = self.clock()
        for key in keys:
            record = self._records.setdefault(key, _Record())
            if now - record.last_failure > FORGET_AFTER_SECONDS:
                record.failures = 0
            record.failures += 1
            record.last_failure = now
            beyond = record.failures - FAILURES_BEFORE_LOCK
            if beyond >= 0:
                lock = min(FIRST_LOCK_SECONDS * 2**beyond, MAX_LOCK_SECONDS)
                record.locked_until = now + lock
        self._forget_the_oldest()

    def succeeded(self, account_key: str) -> None:
        """A login that worked clears its account (not its address: others may share it)."""
        self._records.pop(account_key, None)

    def _forget_the_oldest(self) -> None:
        if len(self._records) <= MAX_KEYS:
            return
        now = self.clock()
        for key, record in list(self._records.items()):
            if now - record.last_failure > FORGET_AFTER_SECONDS and record.locked_until <= now:
                del self._records[key]
        while len(self._records) > MAX_KEYS:
            oldest = min(self._records, key=lambda key: self._records[key].last_failure)
            del self._records[oldest]


LOCKOUT = LoginLockout()
