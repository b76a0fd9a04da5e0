"""Admin reads have a deadline and a bounded share of the pool: flooding the
admin API with reads that cannot finish never delays webhook deliveries."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import replace

import asyncpg
import httpx

from app.config import Settings
from app.db.database import Database
from app.http.errors import UNAVAILABLE_DETAIL
from tests.support import shopify
from tests.support.asgi import served
from tests.support.ops import ADMIN

FLOODED_READS = 40
DELIVERIES = 20


async def test_slow_admin_reads_never_starve_deliveries(db: Database, settings: Settings) -> None:
    settings = replace(settings, db_pool_size=8, admin_statement_timeout=1.0)
    assert settings.database_url is not None
    # An operator's transaction holds sync_runs: every admin read of it waits.
    blocker = await asyncpg.connect(settings.database_url, statement_cache_size=0)
    await blocker.execute("BEGIN; LOCK TABLE sync_runs IN ACCESS EXCLUSIVE MODE")
    try:
        async with served(settings, max_connections=FLOODED_READS + 10) as client:
            flood = [
                asyncio.create_task(client.get("/shops/flood.myshopify.com/sync", headers=ADMIN))
                for _ in range(FLOODED_READS)
            ]
            await asyncio.sleep(0.3)  # the flood now holds every connection it can get
            latencies = [await _deliver(client, number) for number in range(DELIVERIES)]
            answers = await asyncio.gather(*flood)
    finally:
        await blocker.execute("ROLLBACK")
        await blocker.close()

    # Without the share, the flood takes the whole pool and deliveries wait
    # DB_ACQUIRE_TIMEOUT (3 s) for a connection, then get 503.
    assert max(latencies) < 0.5, latencies
    # Each flooded read ended at its deadline (or waiting for its share): 503, retry later.
    assert Counter(answer.status_code for answer in answers) == {503: FLOODED_READS}
    for answer in answers:
        assert answer.headers["retry-after"] == "5"
        assert answer.json() == {"status_code": 503, "detail": UNAVAILABLE_DETAIL}
    async with db.connection() as connection:
        stored = await connection.fetchval("SELECT count(*) FROM orders")
    assert stored == DELIVERIES


async def _deliver(client: httpx.AsyncClient, number: int) -> float:
    started = time.perf_counter()
    order = shopify.order(7_100_000_000_000_000_000 + number, customer_id=7_200_000_000_000_000_000)
    response = await shopify.post(client, "orders/create", order, webhook_id=f"flood-{number}")
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "processed"
    return elapsed
