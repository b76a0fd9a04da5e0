"""First deliveries of many new shops, from several workers at once: no waits, no 503.

A group records the shops it has not seen. Two groups creating the same new
shops in different orders used to wait for each other (each holding a new
shop's row the other needed) until PostgreSQL's deadlock check broke the tie
after deadlock_timeout: a second's stall, and 503s when the retry ran out of
time. Groups now create their new shops first, in sorted order, so they
queue instead.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid

from app.config import Settings
from app.db.database import Database
from app.webhooks.delivery import Delivery
from app.webhooks.ingest import ingest
from app.webhooks.outcomes import Outcome
from tests.support import queries, shopify

SHOPS = 40
# On Citus, groups hold one shop and each costs several round trips to a
# worker: the three nodes sharing this machine's cores process far fewer
# deliveries per second than one node (docs/scaling.md), so fewer shops fit
# in a delivery's deadline there. The property is the same.
CITUS_SHOPS = 10
WORKERS = 4


def first_delivery(shop: str, number: int) -> Delivery:
    return Delivery(
        shop_id=shop,
        webhook_id=str(uuid.uuid4()),
        topic="orders/create",
        event_id=None,
        api_version="2026-07",
        triggered_at=None,
        body=json.dumps(shopify.order(1000 + number, customer_id=2000 + number)).encode(),
    )


async def deadlocks(db: Database) -> int:
    count: int = await queries.fetchval(
        db, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    )
    return count


async def test_first_deliveries_of_many_new_shops_from_many_workers(
    db: Database, settings: Settings
) -> None:
    count = CITUS_SHOPS if await db.on_citus() else SHOPS
    shops = [f"new-shop-{number}.myshopify.com" for number in range(count)]
    # Each worker (a pool and group commit of its own, as a uvicorn worker has)
    # gets a delivery for every new shop, in an order of its own.
    workers = [Database.from_settings(settings, pool_size=4) for _ in range(WORKERS)]
    before = await deadlocks(db)
    try:
        for worker in workers:
            await worker.start()
        batches = []
        for number, worker in enumerate(workers):
            order = random.Random(number).sample(shops, len(shops))
            batches.append([ingest(worker, first_delivery(shop, number)) for shop in order])
        outcomes = await asyncio.gather(*(item for batch in batches for item in batch))
    finally:
        for worker in workers:
            await worker.stop()
    assert outcomes == [Outcome.processed] * (count * WORKERS)
    stored = await queries.fetchval(
        db, "SELECT count(*) FROM shops WHERE shop_id LIKE 'new-shop-%'"
    )
    assert stored == count
    assert await deadlocks(db) == before
