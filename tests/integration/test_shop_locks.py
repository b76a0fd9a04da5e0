"""A writer's locks hold until it commits, on one PostgreSQL and on Citus.

On Citus the rows live on a worker, and a group commits there after the
coordinator (two-phase commit), so the locks are taken on the shop's worker
(ingest_lock_keys_at), in the transaction that writes: a lock taken by a
single-statement call must still be held while that statement runs on, and
the worker must wait for row locks no longer than the transaction's
lock_timeout (ingest_shop_worker). On plain PostgreSQL the same tests hold
trivially; with CITUS_TEST_URL they run against the cluster.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from app.db.database import Database
from tests.support import queries
from tests.support.shopify import SHOP

KEY = "SELECT ingest_lock_key($1, 'order', '1')"
TRY = "SELECT ingest_lock_keys_at(ARRAY[$1], ARRAY[$2::bigint], false, false)"
# One statement, as group commit sends a group: the lock, then a while holding it.
HOLD = "SELECT ingest_lock_keys_at(ARRAY[$1], ARRAY[$2::bigint], false, true), pg_sleep(1.5)"


async def test_a_lock_taken_by_one_statement_is_held_until_it_ends(db: Database) -> None:
    key = await queries.fetchval(db, KEY, SHOP)
    async with db.connection() as holder, db.connection() as other:
        holding = asyncio.create_task(holder.execute(HOLD, SHOP, key))
        await asyncio.sleep(0.7)
        busy_meanwhile = await other.fetchval(TRY, SHOP, key)
        await holding
        busy_after = await other.fetchval(TRY, SHOP, key)
    assert busy_meanwhile == [key]
    assert busy_after == []


async def test_a_held_row_is_waited_for_no_longer_than_lock_timeout(db: Database) -> None:
    await queries.execute(
        db, "INSERT INTO customers (shop_id, shopify_id) VALUES ($1, 'held')", SHOP
    )

    async def write(writer: asyncpg.Connection) -> None:
        async with writer.transaction():
            await writer.execute("SELECT set_config('lock_timeout', '200ms', true)")
            await writer.execute("SELECT ingest_shop_worker($1)", SHOP)
            await writer.execute(
                "UPDATE customers SET tags = '{x}' WHERE shop_id = $1 AND shopify_id = 'held'",
                SHOP,
            )

    async with db.connection() as holder, db.connection() as writer, holder.transaction():
        await holder.execute(
            "SELECT 1 FROM customers WHERE shop_id = $1 AND shopify_id = 'held' FOR UPDATE",
            SHOP,
        )
        # Without the timeout on the worker the write would wait for the
        # holder, which lets go only after it: the test's own limit ends it.
        with pytest.raises(asyncpg.LockNotAvailableError):
            await asyncio.wait_for(write(writer), timeout=20)
