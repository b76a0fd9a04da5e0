"""The minimal-schema bare loop: what a developer writes in an afternoon.

Its own database (created on the same PostgreSQL, dropped afterwards) with
minimal tables: a ledger of raw payloads, customers and orders keyed by
(shop, id), a few indexes. Per delivery one transaction: parse the JSON,
insert the ledger row (a duplicate webhook id stops there), upsert the
customer, upsert the order. 16 asyncio tasks on an asyncpg pool with the
statement cache off (as behind PgBouncer in transaction mode); no HTTP. The
loop runs in the benchmark's own process: its CPU time (JSON parsing
included) is that process's.

`record_and_apply` is also what the textbook service (bench/textbook.py)
runs per request, so both do exactly the same database work.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec

from bench.cpu import CpuMeter, own_cpu_seconds
from bench.deliveries import Delivery

DATABASE = "bench_minimal"

SCHEMA = """
CREATE TABLE ledger (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shop text NOT NULL,
    webhook_id text NOT NULL,
    topic text NOT NULL,
    payload jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (shop, webhook_id)
);
CREATE INDEX ledger_received_at ON ledger (received_at);

CREATE TABLE customers (
    shop text NOT NULL,
    id bigint NOT NULL,
    email text,
    name text,
    updated_at timestamptz,
    PRIMARY KEY (shop, id)
);
CREATE INDEX customers_email ON customers (shop, email);

CREATE TABLE orders (
    shop text NOT NULL,
    id bigint NOT NULL,
    customer_id bigint,
    total numeric(19, 4),
    financial_status text,
    updated_at timestamptz,
    PRIMARY KEY (shop, id)
);
CREATE INDEX orders_customer ON orders (shop, customer_id);
"""

LEDGER = """
INSERT INTO ledger (shop, webhook_id, topic, payload) VALUES ($1, $2, $3, $4)
ON CONFLICT (shop, webhook_id) DO NOTHING RETURNING id
"""
CUSTOMER = """
INSERT INTO customers (shop, id, email, name, updated_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (shop, id) DO UPDATE
SET email = EXCLUDED.email, name = EXCLUDED.name, updated_at = EXCLUDED.updated_at
"""
ORDER = """
INSERT INTO orders (shop, id, customer_id, total, financial_status, updated_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (shop, id) DO UPDATE
SET customer_id = EXCLUDED.customer_id, total = EXCLUDED.total,
    financial_status = EXCLUDED.financial_status, updated_at = EXCLUDED.updated_at
"""


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


async def record_and_apply(
    connection: asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any],
    shop: str,
    webhook_id: str,
    topic: str,
    body: bytes,
) -> bool:
    """One orders/* delivery in one transaction; False when the webhook id was recorded already."""
    order: dict[str, Any] = msgspec.json.decode(body)
    customer: dict[str, Any] | None = order.get("customer")
    async with connection.transaction():
        if await connection.fetchval(LEDGER, shop, webhook_id, topic, body.decode()) is None:
            return False
        if customer:
            name = " ".join(filter(None, (customer.get("first_name"), customer.get("last_name"))))
            await connection.execute(
                CUSTOMER,
                shop,
                customer["id"],
                customer.get("email"),
                name or None,
                _time(customer.get("updated_at")),
            )
        await connection.execute(
            ORDER,
            shop,
            order["id"],
            customer["id"] if customer else None,
            Decimal(order["total_price"]),
            order.get("financial_status"),
            _time(order.get("updated_at")),
        )
    return True


def database_url(url: str, database: str) -> str:
    """`url` with another database name (keeps a Unix-socket `?host=` query)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


async def create_minimal_database(server_url: str) -> str:
    """CREATE DATABASE with the minimal schema on the server of `server_url`; its URL."""
    admin = await asyncpg.connect(server_url, statement_cache_size=0)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await admin.close()
    url = database_url(server_url, DATABASE)
    connection = await asyncpg.connect(url, statement_cache_size=0)
    try:
        await connection.execute(SCHEMA)
    finally:
        await connection.close()
    return url


async def drop_minimal_database(server_url: str) -> None:
    admin = await asyncpg.connect(server_url, statement_cache_size=0)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    finally:
        await admin.close()


async def ledger_rows(url: str, run: str) -> int:
    connection = await asyncpg.connect(url, statement_cache_size=0)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM ledger WHERE webhook_id LIKE $1", f"{run}-%"
        )
        return count
    finally:
        await connection.close()


@dataclass(frozen=True)
class BareResult:
    transactions: int  # committed deliveries (duplicates excluded)
    duplicates: int
    seconds: float
    latency_ms: dict[str, float]
    loop_cpu_seconds: float  # this process, over the loop only
    postgres_cpu_seconds: float

    @property
    def per_second(self) -> float:
        return (self.transactions + self.duplicates) / self.seconds


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


async def bare_loop(
    url: str,
    deliveries: list[Delivery],
    *,
    run: str,
    seconds: float,
    postmaster_pid: int,
    tasks: int = 16,
    duplicate_every: int = 0,
) -> BareResult:
    """`tasks` tasks, each: the next delivery with a new webhook id, one transaction, repeat.

    With `duplicate_every` N, every Nth delivery of a task repeats its previous
    one with the same webhook id (a duplicate), as wrk.lua does.
    """
    pool = await asyncpg.create_pool(url, min_size=tasks, max_size=tasks, statement_cache_size=0)
    latencies: list[float] = []
    counts = {"stored": 0, "duplicate": 0}

    async def task(number: int, stop_at: float) -> None:
        position = number * 7919
        sent = 0
        webhook_id = ""
        while time.perf_counter() < stop_at:
            sent += 1
            if not (duplicate_every and webhook_id and sent % duplicate_every == 0):
                position += 1
                webhook_id = f"{run}-{number}-{sent}"
            delivery = deliveries[position % len(deliveries)]
            started = time.perf_counter()
            async with pool.acquire() as connection:
                stored = await record_and_apply(
                    connection, delivery.shop, webhook_id, delivery.topic, delivery.body
                )
            latencies.append(time.perf_counter() - started)
            counts["stored" if stored else "duplicate"] += 1

    try:
        meter = CpuMeter(postgres=postmaster_pid).start()
        cpu_before = own_cpu_seconds()
        started = time.perf_counter()
        stop_at = started + seconds
        await asyncio.gather(*(task(number, stop_at) for number in range(tasks)))
        elapsed = time.perf_counter() - started
        cpu = own_cpu_seconds() - cpu_before
        postgres = meter.stop()["postgres"]
    finally:
        await pool.close()
    latencies.sort()
    return BareResult(
        transactions=counts["stored"],
        duplicates=counts["duplicate"],
        seconds=elapsed,
        latency_ms={
            "p50": 1000 * percentile(latencies, 0.50),
            "p99": 1000 * percentile(latencies, 0.99),
            "max": 1000 * (latencies[-1] if latencies else 0.0),
        },
        loop_cpu_seconds=cpu,
        postgres_cpu_seconds=postgres,
    )


async def seed(url: str, deliveries: list[Delivery], run: str) -> None:
    """Record and apply each delivery once (the rows a workload then updates)."""
    connection = await asyncpg.connect(url, statement_cache_size=0)
    try:
        for number, delivery in enumerate(deliveries):
            await record_and_apply(
                connection, delivery.shop, f"{run}-{number}", delivery.topic, delivery.body
            )
    finally:
        await connection.close()
