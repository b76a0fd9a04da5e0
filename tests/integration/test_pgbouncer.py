"""The service behind PgBouncer in transaction mode (4 server connections for many clients).

In transaction mode consecutive transactions of one client run on different
server connections, so a named prepared statement made in one transaction is
missing (or another client's) in the next. The application's connections keep
no statement cache (app/db/engine.py); these tests run real workloads through
a real PgBouncer, and show that a default asyncpg pool does break there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from app.asgi import create_app
from app.config import Settings
from app.db.database import Database, Transaction
from app.db.migrations import pending_migration_ids
from app.devtools.pgbouncer import PgBouncer
from tests.conftest import database_for
from tests.support import shopify
from tests.support.ops import run_cli

pytestmark = pytest.mark.pgbouncer

TABLES = ("customers", "orders", "automations", "message_logs", "shops", "webhook_events")

TASKS = 200
CUSTOMERS = 20
SHOP = "pgbouncer-test.myshopify.com"
SHOP_LOCK = 7_000_001
WORKLOAD_TIMEOUT = 60.0

PREPARED_STATEMENT_ERRORS = (
    asyncpg.DuplicatePreparedStatementError,
    asyncpg.InvalidSQLStatementNameError,
)


def is_prepared_statement_error(error: BaseException) -> bool:
    return isinstance(error, PREPARED_STATEMENT_ERRORS) or "prepared statement" in str(error)


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def patient(settings: Settings, **changes: Any) -> Settings:
    """The test settings with waits long enough for a loaded 2-core machine.

    These tests are about PgBouncer compatibility, not latency: 200 tasks
    queueing for 10 pooled connections (and those for 4 server connections)
    may wait longer than the production DB_ACQUIRE_TIMEOUT of 1 s. A real
    hang (say, a transaction needing a second connection) still fails them.
    """
    return dataclasses.replace(
        settings, db_acquire_timeout=15.0, db_statement_timeout=15.0, **changes
    )


# -- the workload: the same queries for the application's pool and for the control pool ------


class Queries(Protocol):
    """What a transaction offers: app.db.database.Transaction, or an asyncpg connection."""

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None: ...

    async def fetchval(self, sql: str, *args: Any) -> Any: ...


Work = Callable[[Queries], Awaitable[Any]]


class Pool(Protocol):
    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]: ...

    async def in_transaction(self, work: Work, shared: Sequence[int], exclusive: int) -> Any: ...


class ApplicationPool:
    """The application's Database: pooled connections and run_in_transaction, advisory locks."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self.database.connection() as connection:
            return await connection.fetch(sql, *args)

    async def in_transaction(self, work: Work, shared: Sequence[int], exclusive: int) -> Any:
        async def locked(tx: Transaction) -> Any:
            for key in shared:
                await tx.execute("SELECT pg_advisory_xact_lock_shared($1)", key)
            await tx.execute("SELECT pg_advisory_xact_lock($1)", exclusive)
            return await work(tx)

        return await self.database.run_in_transaction(locked)


class DefaultAsyncpgPool:
    """A plain asyncpg pool, statement cache left at its default."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self.pool.acquire() as connection:
            return await connection.fetch(sql, *args)

    async def in_transaction(self, work: Work, shared: Sequence[int], exclusive: int) -> Any:
        async with self.pool.acquire() as connection, connection.transaction():
            for key in shared:
                await connection.execute("SELECT pg_advisory_xact_lock_shared($1)", key)
            await connection.execute("SELECT pg_advisory_xact_lock($1)", exclusive)
            return await work(connection)


def customer_values(number: int) -> dict[str, Any]:
    """Customer `number`'s fields: the same from every task that writes it."""
    return {
        "shopify_id": f"c{number}",
        "name": f"Customer {number}",
        "email": f"customer{number}@example.com",
        "tags": ["pgbouncer", f"group-{number % 3}"],
        "total_spent": Decimal(f"{number}.1234"),
        "shopify_updated_at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=number),
    }


def order_values(task: int) -> dict[str, Any]:
    return {
        "shopify_id": f"o{task}",
        "customer": f"c{task % CUSTOMERS}",
        "total_price": Decimal(f"{task}.9900"),
        "line_items": [{"sku": f"SKU-{task}", "quantity": task % 5 + 1, "price": "9.99"}],
        "shopify_created_at": datetime(2026, 2, 1, tzinfo=UTC) + timedelta(minutes=task),
        "test": task % 2 == 0,
    }


UPSERT_CUSTOMER = """
INSERT INTO customers AS c (shop_id, shopify_id, name, email, tags, total_spent,
                            shopify_updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (shop_id, shopify_id) DO UPDATE SET
    name = EXCLUDED.name, email = EXCLUDED.email, tags = EXCLUDED.tags,
    total_spent = EXCLUDED.total_spent, shopify_updated_at = EXCLUDED.shopify_updated_at
RETURNING id
"""

UPSERT_ORDER = """
INSERT INTO orders AS o (shop_id, shopify_id, customer_id, total_price, line_items,
                         shopify_created_at, test)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)
ON CONFLICT (shop_id, shopify_id) DO UPDATE SET
    customer_id = EXCLUDED.customer_id, total_price = EXCLUDED.total_price,
    line_items = EXCLUDED.line_items, shopify_created_at = EXCLUDED.shopify_created_at
RETURNING id
"""

# Reads that differ in text (so in prepared statement), one per task in turn.
READS: list[tuple[str, Callable[[int], tuple[Any, ...]]]] = [
    ("SELECT $1::int * 2 AS value, pg_backend_pid() AS pid", lambda task: (task,)),
    (
        "SELECT count(*) AS value, pg_backend_pid() AS pid FROM customers"
        " WHERE shop_id = $1 AND email LIKE $2",
        lambda task: (SHOP, "customer%"),
    ),
    (
        "SELECT $1::numeric + 1 AS value, pg_backend_pid() AS pid",
        lambda task: (Decimal(task),),
    ),
    (
        "SELECT $1::timestamptz AS value, pg_backend_pid() AS pid",
        lambda task: (datetime(2026, 3, 1, tzinfo=UTC),),
    ),
    (
        "SELECT cardinality($1::text[]) AS value, pg_backend_pid() AS pid",
        lambda task: (["a", "b", str(task)],),
    ),
]


async def one_task(pool: Pool, task: int) -> set[int]:
    """Reads, an upsert transaction under advisory locks, and a read of its result.

    Returns the PostgreSQL backends (server connections) it ran on.
    """
    pids: set[int] = set()
    sql, arguments = READS[task % len(READS)]
    row = (await pool.fetch(sql, *arguments(task)))[0]
    pids.add(row["pid"])

    customer = customer_values(task % CUSTOMERS)
    order = order_values(task)

    async def upsert(queries: Queries) -> int:
        customer_id = await queries.fetchval(
            UPSERT_CUSTOMER,
            SHOP,
            customer["shopify_id"],
            customer["name"],
            customer["email"],
            customer["tags"],
            customer["total_spent"],
            customer["shopify_updated_at"],
        )
        await queries.fetchval(
            UPSERT_ORDER,
            SHOP,
            order["shopify_id"],
            customer_id,
            order["total_price"],
            json.dumps(order["line_items"]),
            order["shopify_created_at"],
            order["test"],
        )
        pid: int = await queries.fetchval("SELECT pg_backend_pid()")
        return pid

    pids.add(await pool.in_transaction(upsert, [SHOP_LOCK], 7_100_000 + task % CUSTOMERS))

    stored = await pool.fetch(
        "SELECT o.shopify_id, o.total_price, pg_backend_pid() AS pid FROM orders o"
        " JOIN customers c ON c.id = o.customer_id"
        " WHERE o.shop_id = $1 AND c.shopify_id = $2 ORDER BY o.shopify_id",
        SHOP,
        customer["shopify_id"],
    )
    assert (order["shopify_id"], order["total_price"]) in {
        (row["shopify_id"], row["total_price"]) for row in stored
    }
    pids.update(row["pid"] for row in stored)
    return pids


async def run_workload(pool: Pool) -> tuple[list[BaseException], set[int]]:
    """All tasks at once; their errors, and every server backend they saw."""
    async with asyncio.timeout(WORKLOAD_TIMEOUT):
        results = await asyncio.gather(
            *(one_task(pool, task) for task in range(TASKS)), return_exceptions=True
        )
    errors = [result for result in results if isinstance(result, BaseException)]
    pids = set().union(*(result for result in results if isinstance(result, set)))
    return errors, pids


def describe(errors: Sequence[BaseException]) -> str:
    kinds = sorted({f"{type(error).__name__}: {error}".splitlines()[0] for error in errors})
    return f"{len(errors)} errors, {len(kinds)} kinds:\n" + "\n".join(kinds[:20])


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
async def app_database(
    pgbouncer: PgBouncer, settings: Settings, database_url: str
) -> AsyncIterator[Database]:
    """The application's Database, connected to the session database through PgBouncer."""
    database = database_for(patient(settings), url=pgbouncer.url(database_name(database_url)))
    await database.start()
    yield database
    await database.stop()


# -- tests ----------------------------------------------------------------------------------


async def test_application_pool_has_no_prepared_statement_errors(
    pgbouncer: PgBouncer, app_database: Database, db: Database
) -> None:
    errors, pids = await run_workload(ApplicationPool(app_database))

    assert errors == [], describe(errors)
    # The workload was multiplexed: more client connections than server ones.
    open_connections, _ = app_database.pool_usage()
    assert 1 < len(pids) <= pgbouncer.pool_size
    assert open_connections > pgbouncer.pool_size

    async with db.connection() as connection:
        customers = await connection.fetch(
            "SELECT shopify_id, name, email, tags, total_spent, shopify_updated_at"
            " FROM customers WHERE shop_id = $1",
            SHOP,
        )
        orders = await connection.fetch(
            "SELECT o.shopify_id, c.shopify_id AS customer, o.total_price, o.line_items,"
            " o.shopify_created_at, o.test"
            " FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.shop_id = $1",
            SHOP,
        )
    assert {row["shopify_id"]: dict(row) for row in customers} == {
        values["shopify_id"]: values
        for values in (customer_values(number) for number in range(CUSTOMERS))
    }
    stored_orders = {
        row["shopify_id"]: {**dict(row), "line_items": json.loads(row["line_items"])}
        for row in orders
    }
    assert stored_orders == {
        values["shopify_id"]: values for values in (order_values(task) for task in range(TASKS))
    }


async def test_default_asyncpg_pool_breaks_behind_pgbouncer(
    pgbouncer: PgBouncer, settings: Settings, database_url: str, db: Database
) -> None:
    """The control: the same workload with asyncpg's default statement cache fails here."""
    pool = await asyncpg.create_pool(
        pgbouncer.url(database_name(database_url)),
        min_size=settings.db_pool_size,
        max_size=settings.db_pool_size,
    )
    try:
        errors, _ = await run_workload(DefaultAsyncpgPool(pool))
    finally:
        pool.terminate()

    prepared_statement_errors = [error for error in errors if is_prepared_statement_error(error)]
    assert prepared_statement_errors, "expected prepared-statement errors; " + describe(errors)


async def test_migrations_run_through_pgbouncer(
    pgbouncer: PgBouncer, settings: Settings, create_database: Any
) -> None:
    direct_url: str = await asyncio.to_thread(create_database, False)
    through_pgbouncer = pgbouncer.url(database_name(direct_url))

    first = await asyncio.to_thread(run_cli, through_pgbouncer, "migrate", timeout=120)
    assert first.returncode == 0, f"{first.stdout}\n{first.stderr}"

    connection = await asyncpg.connect(direct_url)
    try:
        tables = await connection.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        applied = await connection.fetch("SELECT * FROM migration ORDER BY id")
        assert {row["table_name"] for row in tables} >= {*TABLES, "migration"}
        assert applied

        second = await asyncio.to_thread(run_cli, through_pgbouncer, "migrate", timeout=120)
        assert second.returncode == 0, f"{second.stdout}\n{second.stderr}"
        assert await connection.fetch("SELECT * FROM migration ORDER BY id") == applied
    finally:
        await connection.close()

    # Readiness, through PgBouncer too, sees nothing pending.
    database = database_for(patient(settings), url=through_pgbouncer)
    await database.start()
    try:
        async with database.connection() as pooled:
            assert await pending_migration_ids(pooled) == []
    finally:
        await database.stop()


DELIVERY_CUSTOMERS = 20
DELIVERY_ORDERS = 60
DELIVERY_DELETES = 10
DELIVERY_IGNORED = 10


async def test_ingestion_through_pgbouncer(
    pgbouncer: PgBouncer, settings: Settings, database_url: str, db: Database
) -> None:
    """~100 concurrent signed deliveries of several topics (so several statements), shuffled."""
    through_pgbouncer = pgbouncer.url(database_name(database_url))
    app = create_app(patient(settings, database_url=through_pgbouncer))

    customer_ids = [9_100_000 + number for number in range(DELIVERY_CUSTOMERS)]
    order_ids = [9_200_000 + number for number in range(DELIVERY_ORDERS)]
    deleted_ids = [9_300_000 + number for number in range(DELIVERY_DELETES)]
    deliveries: list[tuple[str, dict[str, Any], str]] = [
        *(
            (
                "customers/create",
                shopify.customer(customer_id, email=f"{customer_id}@example.com"),
                "processed",
            )
            for customer_id in customer_ids
        ),
        *(
            (
                "orders/create",
                shopify.order(
                    order_id,
                    customer_id=customer_ids[number % DELIVERY_CUSTOMERS],
                    total_price=f"{10 + number}.25",
                ),
                "processed",
            )
            for number, order_id in enumerate(order_ids)
        ),
        # A delete before its create leaves a tombstone.
        *(("orders/delete", {"id": order_id}, "processed") for order_id in deleted_ids),
        *(("products/create", {"id": number}, "ignored") for number in range(DELIVERY_IGNORED)),
    ]
    random.Random(20261123).shuffle(deliveries)

    # Not litestar.testing.AsyncTestClient: its transport runs each request to the
    # end in a blocking portal before the next starts, so "concurrent" requests
    # would be served one at a time. httpx's ASGITransport runs them in this loop,
    # interleaved, as the ASGI server does.
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        responses = await asyncio.gather(
            *(shopify.post(client, topic, payload) for topic, payload, _ in deliveries)
        )
        open_connections, _ = app.state.database.pool_usage()
    assert open_connections > pgbouncer.pool_size, "the deliveries were served concurrently"
    answers = [(response.status_code, response.json().get("status")) for response in responses]
    assert answers == [(200, status) for _, _, status in deliveries]

    async with db.connection() as connection:
        ledger = await connection.fetch(
            "SELECT topic, status FROM webhook_events WHERE shop_id = $1", shopify.SHOP
        )
        orders = await connection.fetch(
            "SELECT o.shopify_id, o.total_price, c.shopify_id AS customer,"
            " o.deleted_at IS NOT NULL AS deleted"
            " FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE o.shop_id = $1",
            shopify.SHOP,
        )
        customers = await connection.fetch(
            "SELECT shopify_id, email, order_count, total_spent FROM customers WHERE shop_id = $1",
            shopify.SHOP,
        )
    assert Counter((row["topic"], row["status"]) for row in ledger) == Counter(
        (topic, status) for topic, _, status in deliveries
    )

    expected_orders = {
        str(order_id): (
            Decimal(f"{10 + number}.25"),
            str(customer_ids[number % DELIVERY_CUSTOMERS]),
            False,
        )
        for number, order_id in enumerate(order_ids)
    } | {str(order_id): (None, None, True) for order_id in deleted_ids}
    assert {
        row["shopify_id"]: (row["total_price"], row["customer"], row["deleted"]) for row in orders
    } == expected_orders

    totals: dict[str, tuple[int, Decimal]] = {}
    for total_price, customer, deleted in expected_orders.values():
        if not deleted and customer is not None and total_price is not None:
            count, spent = totals.get(customer, (0, Decimal(0)))
            totals[customer] = (count + 1, spent + total_price)
    assert {
        row["shopify_id"]: (row["email"], row["order_count"], row["total_spent"])
        for row in customers
    } == {
        customer: (f"{customer}@example.com", count, spent)
        for customer, (count, spent) in totals.items()
    }
