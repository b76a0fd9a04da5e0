"""Deleting customer events older than EVENT_RETENTION_DAYS, in batches, oldest first.

Runs in the background of every web worker (like the erasures), since the
web service is the one part every deployment runs: every RETENTION_SECONDS,
one worker at a time (a transaction-scoped advisory lock; the others skip
that round) deletes batches in the relay's order, node group by node group,
until it meets an event young enough to keep. Each batch is a short
transaction of its own.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import Any

from app.db.database import Database, Transaction, is_database_failure
from app.outbox.events import horizons

log = logging.getLogger("app.outbox")

BATCH_ROWS = 5000
RETENTION_SECONDS = 600.0
BATCH_STATEMENT_TIMEOUT = 15.0

# Only one worker at a time: the others find the lock taken and do nothing.
# A statement of its own: Citus refuses a volatile function in a DELETE's WHERE.
_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('customer_events retention'))"
# A node group's oldest events in the relay's order, deleted if older than the
# cutoff; with a younger one among them, the rest of that group waits for a
# later round. Joined on shop_id too: Citus joins distributed tables on their
# distribution column.
_DELETE_BATCH = """
WITH oldest AS (
    SELECT shop_id, id, occurred_at FROM customer_events
    WHERE node_group = $3 ORDER BY transaction_id, id LIMIT $2
)
DELETE FROM customer_events AS e
USING oldest AS o
WHERE e.shop_id = o.shop_id AND e.id = o.id AND o.occurred_at < now() - make_interval(days => $1)
"""


async def delete_expired(database: Database, retention_days: int) -> int:
    """Delete the events older than `retention_days`; how many were deleted."""
    async with database.reading() as connection:
        groups = sorted(await horizons(connection))
    deleted = 0
    for group in groups:
        deleted += await _delete_expired_of(database, group, retention_days)
    return deleted


async def _delete_expired_of(database: Database, group: int, retention_days: int) -> int:
    deleted = 0
    while True:

        async def batch(tx: Transaction) -> int:
            if not await tx.fetchval(_LOCK):
                return 0
            status = await tx.execute(_DELETE_BATCH, retention_days, BATCH_ROWS, group)
            return int(status.rsplit(" ", 1)[-1])

        count = await database.run_in_transaction(batch, statement_timeout=BATCH_STATEMENT_TIMEOUT)
        deleted += count
        if count < BATCH_ROWS:
            return deleted


class RetentionWorker:
    def __init__(self, database: Database, retention_days: int) -> None:
        self.database = database
        self.retention_days = retention_days
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            # Workers started together spread their rounds.
            await asyncio.sleep(RETENTION_SECONDS * random.uniform(0.5, 1.5))  # noqa: S311
            try:
                deleted = await delete_expired(self.database, self.retention_days)
            except Exception as error:
                level = logging.WARNING if is_database_failure(error) else logging.ERROR
                log.log(level, "event retention failed", exc_info=error)
                continue
            if deleted:
                log.info("customer events expired", extra={"fields": {"deleted": deleted}})


def background_retention(
    database: Database, retention_days: int
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """A lifespan that runs a RetentionWorker while the app serves."""

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        worker = RetentionWorker(database, retention_days)
        worker.start()
        try:
            yield
        finally:
            await worker.stop()

    return lifespan
