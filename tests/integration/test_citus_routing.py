"""On Citus, what concerns one shop goes to that shop's shard, and nothing is refused.

The service runs here with `citus.multi_task_query_log_level = error`: a
statement that Citus sends to more than one shard fails, so a filter or join
by shop_id forgotten in a SQL function or a Python statement of the paths of
one shop (deliveries of every topic, grouped or alone, replays, redactions,
merges, uninstalls, the sync's batches, a scoring pass) fails its delivery or
call. Queries across shops (metrics, the admin's listings, the erasure
worker's search for work) are not run here.

Needs a Citus coordinator (CITUS_TEST_URL, tests/conftest.py); on plain
PostgreSQL it is skipped, saying so.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from urllib.parse import urlencode, urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.config import Settings
from app.db.database import Database
from app.db.enums import SyncResource
from app.sync.apply import changes
from app.webhooks.privacy import erasure
from tests.support import queries, shopify
from tests.support.ops import ADMIN

CUSTOMER = 9007199254740993
KEPT = 9223372036854775001
MERGED = 9223372036854775002
ONE_SHARD = {"citus.multi_task_query_log_level": "error"}


def gid(customer_id: int) -> str:
    return f"gid://shopify/Customer/{customer_id}"


def one_shard_url(url: str) -> str:
    """The database URL with the setting asyncpg passes to the server at connect."""
    parts = urlsplit(url)
    query = "&".join(filter(None, (parts.query, urlencode(ONE_SHARD))))
    return urlunsplit(parts._replace(query=query))


@pytest.fixture
async def routed(db: Database, settings: Settings) -> Settings:
    """The settings of a service whose statements must each go to one shard."""
    if not await db.on_citus():
        pytest.skip("not a Citus coordinator: CITUS_TEST_URL is not set")
    assert settings.database_url is not None
    return dataclasses.replace(settings, database_url=one_shard_url(settings.database_url))


@pytest.fixture
async def one_shard_client(routed: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with AsyncTestClient(app=create_app(routed)) as client:
        yield client


async def finish_erasures(routed: Settings, db: Database) -> None:
    """Every erasure's remaining batches, each claimed by shop and id (one shard).

    The background worker's search for work spans shops (several shards): it
    fails under this setting, so the test runs the batches itself.
    """
    pending = await queries.fetch(db, "SELECT shop_id, id FROM erasures")
    database = Database.from_settings(routed)
    await database.start()
    try:
        for row in pending:
            for _ in range(100):
                step = await erasure.erase_step(database, (row["shop_id"], row["id"]))
                if step is None or step[1]:
                    break
    finally:
        await database.stop()
    assert await queries.fetch(db, "SELECT shop_id, id FROM erasures") == []


async def test_a_multi_shard_statement_fails_under_this_setting(
    one_shard_client: httpx.AsyncClient, settings: Settings
) -> None:
    """The check itself: without it the test below would prove nothing."""
    assert settings.database_url is not None
    connection = await asyncpg.connect(
        settings.database_url, statement_cache_size=0, server_settings=ONE_SHARD
    )
    try:
        with pytest.raises(asyncpg.PostgresError, match="multi-task query"):
            await connection.fetchval("SELECT count(*) FROM orders")
        # One shop: one shard, allowed.
        one = "SELECT count(*) FROM orders WHERE shop_id = $1"
        assert await connection.fetchval(one, shopify.SHOP) == 0
    finally:
        await connection.close()


def topic_deliveries() -> list[tuple[str, object]]:
    """One delivery of every topic of one shop, in an order that leaves each one work to do."""
    consent = {"state": "subscribed", "opt_in_level": None}
    return [
        ("customers/create", shopify.customer(CUSTOMER)),
        ("orders/create", shopify.order(5001, customer_id=CUSTOMER, total_price="10.00")),
        ("orders/updated", shopify.order(5001, customer_id=CUSTOMER, total_price="12.00")),
        ("orders/create", shopify.order(5002, customer_id=KEPT, total_price="20.00")),
        ("orders/create", shopify.order(5003, customer_id=MERGED, total_price="30.00")),
        ("orders/delete", shopify.deleted(5002)),
        (
            "customer.tags_added",
            {"customerId": gid(CUSTOMER), "tags": ["vip"], "occurredAt": "2026-03-01T10:00:00Z"},
        ),
        (
            "customer.tags_removed",
            {"customerId": gid(CUSTOMER), "tags": ["vip"], "occurredAt": "2026-03-02T10:00:00Z"},
        ),
        (
            "customers_email_marketing_consent/update",
            {
                "customer_id": CUSTOMER,
                "email_address": "bob@biller.com",
                "email_marketing_consent": {
                    **consent,
                    "consent_updated_at": "2026-04-02T10:00:00Z",
                },
            },
        ),
        (
            "customers/purchasing_summary",
            {
                "customerId": gid(CUSTOMER),
                "numberOfOrders": 1,
                "amountSpent": {"amount": "12.00", "currencyCode": "USD"},
                "lastOrderId": "gid://shopify/Order/5001",
                "occurredAt": "2026-04-03T10:00:00Z",
            },
        ),
        (
            "customers/merge",
            {
                "admin_graphql_api_customer_kept_id": gid(KEPT),
                "admin_graphql_api_customer_deleted_id": gid(MERGED),
                "admin_graphql_api_job_id": None,
                "status": "completed",
                "errors": [],
            },
        ),
        ("customers/data_request", shopify.data_request(CUSTOMER, [5001])),
        ("customers/redact", shopify.customers_redact(CUSTOMER, orders_to_redact=[5001])),
        ("customers/delete", shopify.customer_deleted(KEPT)),
    ]


async def test_every_topic_of_one_shop_goes_to_its_shard(
    one_shard_client: httpx.AsyncClient, routed: Settings, db: Database
) -> None:
    client = one_shard_client
    for n, (topic, payload) in enumerate(topic_deliveries()):
        status = await shopify.deliver(client, topic, payload, f"t-{n}")  # type: ignore[arg-type]
        # A redact may go on in the background after its answer (a slow cluster).
        expected = {"processed", "erasing"} if topic.endswith("redact") else {"processed"}
        assert status in expected, (topic, status)
    # Replays of stored deliveries, a grouped topic and one applied from Python
    # (their ledger rows updated by shop and id): the merge, whose customers are
    # not the redacted one (the redact scrubbed that customer's stored payloads,
    # which then no longer replay).
    replay = await client.post(
        "/replay", json={"shop": shopify.SHOP, "webhook_ids": ["t-1", "t-10"]}, headers=ADMIN
    )
    assert replay.status_code == 200, replay.text
    report = replay.json()
    assert report["matched"] == 2 and report["failed"] == 0, report
    # Uninstall and shop/redact, on a shop of their own.
    other = shopify.OTHER_SHOP
    order = shopify.order(7001, customer_id=CUSTOMER)
    assert await shopify.deliver(client, "orders/create", order, shop=other) == "processed"
    redact = shopify.shop_redact(other)
    uninstalled = shopify.fixture("app_uninstalled")
    uninstalled.update(id=redact["shop_id"], myshopify_domain=other, domain=other)
    status = await shopify.deliver(client, "app/uninstalled", uninstalled, shop=other)
    assert status == "processed"
    assert await shopify.deliver(client, "shop/redact", redact, shop=other) in {
        "processed",
        "erasing",
    }
    await finish_erasures(routed, db)
    assert await queries.fetch(db, "SELECT id FROM orders WHERE shop_id = $1", other) == []


async def test_sync_batches_and_scores_of_one_shop_go_to_its_shard(
    one_shard_client: httpx.AsyncClient, settings: Settings
) -> None:
    assert settings.database_url is not None
    connection = await asyncpg.connect(
        settings.database_url, statement_cache_size=0, server_settings=ONE_SHARD
    )
    customers = [
        {"shopify_id": "801", "email": "a@example.com", "tags": ["x"],
         "updated_at": "2026-05-01T00:00:00Z", "email_marketing_state": "subscribed",
         "email_marketing_updated_at": "2026-05-01T00:00:00Z"},
    ]  # fmt: skip
    orders = [
        {"shopify_id": "901", "customer_shopify_id": "801", "total_price": "15.00",
         "currency": "USD", "created_at": "2026-05-01T00:00:00Z",
         "updated_at": "2026-05-01T00:00:00Z", "line_items": []},
    ]  # fmt: skip
    try:
        async with connection.transaction():
            written = await connection.fetchrow(
                "SELECT * FROM sync_apply_customers(2000, $1, $2)",
                shopify.SHOP,
                json.dumps(changes(shopify.SHOP, SyncResource.customers, customers)),
            )
            assert written is not None and written["applied"] == 1
            written = await connection.fetchrow(
                "SELECT * FROM sync_apply_orders(2000, $1, $2)",
                shopify.SHOP,
                json.dumps(changes(shopify.SHOP, SyncResource.orders, orders)),
            )
            assert written is not None and written["applied"] == 1
            scores = await connection.fetchrow("SELECT * FROM scores_compute($1, 30)", shopify.SHOP)
            assert scores is not None and scores["scored"] == 1
            applied = await connection.fetchrow(
                "SELECT * FROM scores_apply($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                shopify.SHOP,
                scores["ids"],
                *(scores[name] for name in ("stored_r", "stored_f", "stored_m")),
                scores["stored_segments"],
                *(scores[name] for name in ("rfm_r", "rfm_f", "rfm_m", "segments")),
            )
            assert applied is not None and applied["written"] == 1
            deleted = await connection.fetchval(
                "SELECT deleted FROM sync_apply_deletions(2000, $1, 'orders', $2)",
                shopify.SHOP,
                ["901"],
            )
            assert deleted == 1
    finally:
        await connection.close()
