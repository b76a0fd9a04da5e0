"""What the database alone can do: bare asyncpg loops, no HTTP.

- `service_sql`: the service's own per-delivery database work (the handlers'
  statements in their transaction, locks included), payloads parsed beforehand.
- `reference`: the textbook version of the core work, ledger insert + customer
  upsert + order upsert as three statements in one transaction.

Both use statement caching off, as the service does, the same number of
connections, and the same deliveries (including the duplicate rate).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec

from app.config import load_settings
from app.db.database import Database
from app.webhooks.delivery import Delivery as ServiceDelivery
from app.webhooks.handlers import HANDLERS
from app.webhooks.ledger import Recording
from app.webhooks.payloads import OrderPayload, decode
from bench.deliveries import Delivery


@dataclass(frozen=True)
class LoopResult:
    name: str
    transactions: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.transactions / self.seconds


async def _drive(
    name: str,
    deliveries: list[Delivery],
    apply: Callable[[Delivery, str], Awaitable[None]],
    *,
    concurrency: int,
    seconds: float,
    run: str,
    duplicate_every: int,
) -> LoopResult:
    stop_at = time.perf_counter() + seconds
    done = 0

    async def worker(number: int) -> None:
        nonlocal done
        position = number * 7919
        sent = 0
        webhook_id = ""
        while time.perf_counter() < stop_at:
            sent += 1
            if sent % duplicate_every != 0:
                position += 1
                webhook_id = f"{run}-{number}-{sent}"
            await apply(deliveries[position % len(deliveries)], webhook_id)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(number) for number in range(concurrency)))
    return LoopResult(name, done, time.perf_counter() - started)


async def service_sql(
    url: str,
    deliveries: list[Delivery],
    *,
    concurrency: int,
    seconds: float,
    run: str,
    duplicate_every: int,
) -> LoopResult:
    parsed = {id(d): decode(d.body, HANDLERS[d.topic].payload_type) for d in deliveries}
    texts = {id(d): d.body.decode() for d in deliveries}
    database = Database.from_settings(
        load_settings(), url, pool_size=concurrency, acquire_timeout=5.0, statement_timeout=5.0
    )
    await database.start()

    async def apply(delivery: Delivery, webhook_id: str) -> None:
        handler = HANDLERS[delivery.topic]
        payload = parsed[id(delivery)]
        meta = ServiceDelivery(
            delivery.shop, webhook_id, delivery.topic, None, "2026-07", None, b""
        )
        recording = Recording.live(meta, texts[id(delivery)])
        await handler.apply(database, recording, payload)

    try:
        return await _drive(
            "service SQL, no HTTP",
            deliveries,
            apply,
            concurrency=concurrency,
            seconds=seconds,
            run=run,
            duplicate_every=duplicate_every,
        )
    finally:
        await database.stop()


_LEDGER = """
INSERT INTO webhook_events (shop_id, webhook_id, topic, payload, status, attempts, processed_at)
VALUES ($1, $2, $3, $4::jsonb, 'processed', 1, now())
ON CONFLICT (shop_id, webhook_id) DO NOTHING RETURNING id
"""
_CUSTOMER = """
INSERT INTO customers (shop_id, shopify_id, email, name, shopify_updated_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (shop_id, shopify_id) DO UPDATE
SET email = EXCLUDED.email, name = EXCLUDED.name, shopify_updated_at = EXCLUDED.shopify_updated_at
RETURNING id
"""
_ORDER = """
INSERT INTO orders (shop_id, shopify_id, customer_id, total_price, current_total_price,
                    financial_status, line_items, shopify_updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)
ON CONFLICT (shop_id, shopify_id) DO UPDATE
SET customer_id = EXCLUDED.customer_id, total_price = EXCLUDED.total_price,
    current_total_price = EXCLUDED.current_total_price,
    financial_status = EXCLUDED.financial_status, line_items = EXCLUDED.line_items,
    shopify_updated_at = EXCLUDED.shopify_updated_at
"""


async def reference(
    url: str,
    deliveries: list[Delivery],
    *,
    concurrency: int,
    seconds: float,
    run: str,
    duplicate_every: int,
) -> LoopResult:
    """The textbook loop: three statements in one transaction, asyncpg's default pool."""
    orders = [d for d in deliveries if d.topic.startswith("orders/")]
    parsed = {id(d): msgspec.json.decode(d.body, type=OrderPayload) for d in orders}
    line_items = {id(d): json.dumps(json.loads(d.body)["line_items"]) for d in orders}
    pool = await asyncpg.create_pool(
        url, min_size=concurrency, max_size=concurrency, statement_cache_size=0
    )

    async def apply(delivery: Delivery, webhook_id: str) -> None:
        order: Any = parsed[id(delivery)]
        customer = order.customer
        async with pool.acquire() as connection, connection.transaction():
            recorded = await connection.fetchval(
                _LEDGER, delivery.shop, webhook_id, delivery.topic, delivery.body.decode()
            )
            if recorded is None:
                return
            customer_id = await connection.fetchval(
                _CUSTOMER,
                delivery.shop,
                str(customer.id),
                customer.email,
                customer.name,
                customer.updated_at,
            )
            await connection.execute(
                _ORDER,
                delivery.shop,
                str(order.id),
                customer_id,
                order.total_price,
                order.current_total_price,
                order.financial_status,
                line_items[id(delivery)],
                order.updated_at,
            )

    try:
        return await _drive(
            "reference: 3 statements",
            orders,
            apply,
            concurrency=concurrency,
            seconds=seconds,
            run=run,
            duplicate_every=duplicate_every,
        )
    finally:
        await pool.close()
