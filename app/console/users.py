"""Console users: Piccolo's `piccolo_user` table, with the password check off the event loop.

Piccolo hashes passwords with PBKDF2-SHA256 (600,000 iterations, about 0.1 s
of CPU). Its `BaseUser.login` does that inside the event loop, where it would
hold up every delivery the worker is serving; here the hash runs in a thread
(hashlib releases the GIL while it works). Same table, same rows, same
hashes: users made by `python -m app console-user` or Piccolo's own commands.
Failed logins lock the account and the client address for a while
(app/console/lockout.py).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from datetime import datetime
from functools import cache

from piccolo.apps.user.tables import BaseUser
from starlette.exceptions import HTTPException

from app.console import lockout

log = logging.getLogger("app.console")


@cache
def _unknown_user_hash() -> str:
    """A stored hash for unknown usernames: checking it costs as much as a real one,
    so the answer's timing does not tell which usernames exist. Made at the first
    such login, not at import: every process that imports the console would pay it."""
    return BaseUser.hash_password("no such user", salt="0" * 32)


def _matches(password: str, stored: str) -> bool:
    try:
        _, iterations, salt, _ = BaseUser.split_stored_password(stored)
        computed = BaseUser.hash_password(password, salt, int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(computed.encode(), stored.encode())


class ConsoleUser(BaseUser, tablename="piccolo_user"):
    @classmethod
    async def login(cls, username: str, password: str) -> int | None:
        """The user's id when the password is theirs; None otherwise (and for long inputs).

        429 with Retry-After while the account or the client address is locked.
        """
        address = lockout.CLIENT_ADDRESS.get()
        failures = lockout.LOCKOUT
        keys = failures.keys(username[:200], address)
        if wait := failures.locked_for(keys):
            log.warning(
                "console login refused: too many failures",
                extra={"fields": {"address": address, "retry_after_s": wait}},
            )
            raise HTTPException(
                status_code=429,
                detail=f"too many failed logins: try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        user_id = await cls._check(username, password)
        if user_id is None:
            failures.failed(keys)
            log.info("console login failed", extra={"fields": {"address": address}})
            return None
        failures.succeeded(keys[0])
        return user_id

    @classmethod
    async def _check(cls, username: str, password: str) -> int | None:
        if len(username) > (cls.username.length or 100):
            return None
        if len(password) > cls._max_password_length:
            return None
        row = await cls.select(cls.id, cls.password).where(cls.username == username).first().run()
        stored = row["password"] if row else _unknown_user_hash()
        if not await asyncio.to_thread(_matches, password, stored) or row is None:
            return None
        await cls.update({cls.last_login: datetime.now()}).where(cls.id == row["id"]).run()
        user_id: int = row["id"]
        return user_id
