"""customers/redact and shop/redact at any size.

A customer with 25,000 orders (20,000 of them listed in orders_to_redact:
one advisory lock per listed order used to fill PostgreSQL's lock table, so
every retry got 503 and the redaction never happened), and a shop with tens
of thousands of rows. The redact is answered 200 within Shopify's 5 s, its
ledger row says `erasing` until the batches are done (in the background), a
retry is a duplicate, and a restart resumes the work.

The sizes: LISTED is about three times the lock table of a default server
(max_locks_per_transaction 64 x max_connections 100), and every kind of row
spans several of the erasure's batches (BATCH_ROWS, LEDGER_BATCH); more rows
would only repeat batches.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.config import Settings
from app.db.database import Database
from app.webhooks.privacy import erasure
from tests.support import queries, shopify

pytestmark = pytest.mark.timeout(300)

SHOP = shopify.SHOP
CUSTOMER = 191167
EMAIL = "big.spender@example.com"
PHONE = "+15550001111"
ORDERS = 5 * erasure.BATCH_ROWS
LISTED = 20_000
SHOP_CUSTOMERS = 2 * erasure.BATCH_ROWS
SHOP_ORDERS = 8 * erasure.BATCH_ROWS
BYSTANDER = 191168
BYSTANDER_EMAIL = "someone.else@example.com"


async def generate_customer(db: Database) -> None:
    """The customer, ORDERS orders of theirs and an orders/create ledger row for each."""
    async with db.connection() as connection:
        await connection.execute(
            "INSERT INTO shops (shop_id, first_seen_at) VALUES ($1, now())", SHOP
        )
        customer = await connection.fetchval(
            "INSERT INTO customers (shop_id, shopify_id, email, phone, name, order_count,"
            " total_spent) VALUES ($1, $2, $3, $4, 'Big Spender', $5, 0) RETURNING id",
            SHOP,
            str(CUSTOMER),
            EMAIL,
            PHONE,
            ORDERS,
        )
        await connection.execute(
            "INSERT INTO orders (shop_id, shopify_id, customer_id, email, total_price)"
            " SELECT $1, n::text, $2, $3, 10 FROM generate_series(1, $4) AS n",
            SHOP,
            customer,
            EMAIL,
            ORDERS,
        )
        await connection.execute(
            "INSERT INTO webhook_events (shop_id, webhook_id, topic, payload, status, attempts)"
            " SELECT $1, 'gen-' || n, 'orders/create',"
            " jsonb_build_object('id', n, 'email', $3::text,"
            " 'customer', jsonb_build_object('id', $2::bigint, 'email', $3::text,"
            " 'phone', $4::text)), 'processed', 1 FROM generate_series(1, $5) AS n",
            SHOP,
            CUSTOMER,
            EMAIL,
            PHONE,
            ORDERS,
        )
        # A bystander's delivery, which must keep its data.
        await connection.execute(
            "INSERT INTO webhook_events (shop_id, webhook_id, topic, payload, status, attempts)"
            " VALUES ($1, 'bystander', 'customers/create', jsonb_build_object('id', $2::bigint,"
            " 'email', $3::text), 'processed', 1)",
            SHOP,
            BYSTANDER,
            BYSTANDER_EMAIL,
        )


async def wait_until_processed(db: Database, webhook_id: str, shop: str, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        row = await queries.ledger_row(db, webhook_id, shop=shop)
        if row["status"] == "processed":
            return
        assert row["status"] == "erasing", row["status"]
        await asyncio.sleep(0.5)
    raise AssertionError(f"the erasure of {webhook_id} did not complete within {within} s")


async def test_customer_with_tens_of_thousands_of_orders_is_redacted(
    client: httpx.AsyncClient, db: Database
) -> None:
    await generate_customer(db)
    redact = shopify.customers_redact(
        CUSTOMER, email=EMAIL, phone=PHONE, orders_to_redact=list(range(1, LISTED + 1))
    )
    started = time.monotonic()
    response = await shopify.post(client, "customers/redact", redact, webhook_id="big")
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.json()["status"] in ("processed", "erasing")
    assert elapsed < 5.0, f"answered after {elapsed:.1f} s"
    # Shopify's retry of the same delivery is a duplicate, finished or not.
    again = await shopify.post(client, "customers/redact", redact, webhook_id="big")
    assert again.json() == {"status": "duplicate", "webhook_id": "big"}

    await wait_until_processed(db, "big", SHOP, within=240)
    customer = await queries.customer(db, CUSTOMER)
    assert customer is not None
    assert (customer["email"], customer["phone"], customer["name"]) == (None, None, None)
    assert customer["order_count"] == ORDERS  # totals survive
    assert (
        await queries.fetchval(
            db, "SELECT count(*) FROM orders WHERE shop_id = $1 AND email IS NOT NULL", SHOP
        )
        == 0
    )
    left = await queries.fetchval(
        db,
        "SELECT count(*) FROM webhook_events WHERE payload::text LIKE $1 OR payload::text LIKE $2",
        f"%{EMAIL}%",
        f"%{PHONE}%",
    )
    assert left == 0
    bystander = await queries.ledger_row(db, "bystander")
    assert BYSTANDER_EMAIL in bystander["payload_text"]
    assert await queries.fetchval(db, "SELECT count(*) FROM erasures") == 0


async def generate_shop(db: Database, shop: str, customers: int, orders: int) -> None:
    async with db.connection() as connection:
        await connection.execute(
            "INSERT INTO shops (shop_id, first_seen_at) VALUES ($1, now())", shop
        )
        await connection.execute(
            "INSERT INTO customers (shop_id, shopify_id, email, order_count, total_spent)"
            " SELECT $1, n::text, 'c' || n || '@example.com', 0, 0"
            " FROM generate_series(1, $2) AS n",
            shop,
            customers,
        )
        await connection.execute(
            "INSERT INTO orders (shop_id, shopify_id, customer_id, email, total_price)"
            " SELECT $1, n::text, c.id, c.email, 1 FROM generate_series(1, $2) AS n"
            " JOIN customers AS c ON c.shop_id = $1 AND c.shopify_id = (1 + n % $3)::text",
            shop,
            orders,
            customers,
        )
        await connection.execute(
            "INSERT INTO webhook_events (shop_id, webhook_id, topic, payload, status, attempts)"
            " SELECT $1, 'gen-' || n, 'orders/create', jsonb_build_object('id', n),"
            " 'processed', 1 FROM generate_series(1, $2) AS n",
            shop,
            orders,
        )


async def test_shop_with_many_rows_is_redacted(client: httpx.AsyncClient, db: Database) -> None:
    await generate_shop(db, SHOP, customers=SHOP_CUSTOMERS, orders=SHOP_ORDERS)
    await generate_shop(db, shopify.OTHER_SHOP, customers=10, orders=20)
    other_before = await queries.counts(db)

    started = time.monotonic()
    response = await shopify.post(client, "shop/redact", shopify.shop_redact(), webhook_id="sr")
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.json()["status"] in ("processed", "erasing")
    assert elapsed < 5.0, f"answered after {elapsed:.1f} s"
    shop = await queries.shop(db)
    assert shop is not None and shop["redacted_at"] is not None

    await wait_until_processed(db, "sr", SHOP, within=240)
    for table in ("customers", "orders"):
        count = await queries.fetchval(db, f"SELECT count(*) FROM {table} WHERE shop_id = $1", SHOP)
        assert count == 0, table
    assert [row["webhook_id"] for row in await queries.ledger(db, SHOP)] == ["sr"]
    for table in ("customers", "orders"):
        count = await queries.fetchval(
            db, f"SELECT count(*) FROM {table} WHERE shop_id = $1", shopify.OTHER_SHOP
        )
        assert count == {"customers": 10, "orders": 20}[table], table
    assert other_before["webhook_events"] > 0
    assert await queries.fetchval(db, "SELECT count(*) FROM erasures") == 0


async def test_a_restart_resumes_the_erasure(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = shopify.order(5, customer_id=CUSTOMER, email=EMAIL)
    with monkeypatch.context() as patched:
        patched.setattr(erasure, "INLINE_DEADLINE", 0.0)
        patched.setattr(erasure.ErasureWorker, "start", lambda self: None)
        async with AsyncTestClient(app=create_app(settings)) as client:
            assert await shopify.deliver(client, "orders/create", order) == "processed"
            redact = shopify.customers_redact(CUSTOMER, email=EMAIL, orders_to_redact=[5])
            response = await shopify.post(client, "customers/redact", redact, webhook_id="r")
            assert response.json() == {"status": "erasing", "webhook_id": "r"}
            again = await shopify.post(client, "customers/redact", redact, webhook_id="r")
            assert again.json() == {"status": "duplicate", "webhook_id": "r"}
    # The process is gone with the erasure half done: the customer row is
    # erased, the rest is recorded as work to do.
    assert (await queries.ledger_row(db, "r"))["status"] == "erasing"
    assert (await queries.customer(db, CUSTOMER) or {})["email"] is None
    assert await queries.fetchval(db, "SELECT count(*) FROM erasures") == 1

    # A new process (any worker) finishes it.
    async with AsyncTestClient(app=create_app(settings)):
        await wait_until_processed(db, "r", SHOP, within=30)
    assert (await queries.order(db, 5) or {})["email"] is None
    assert await queries.where_found(db, EMAIL) == []
    assert await queries.fetchval(db, "SELECT count(*) FROM erasures") == 0
