"""Full and incremental sync against the stand-in: what lands in the database, exactly."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import httpx
import pytest

from app.config import Settings
from app.db.database import Database
from app.db.enums import SyncKind, SyncRunStatus
from app.devtools.standin import FakeShop, ShopifyStandIn
from app.shopify.bulk import start_bulk_query
from app.shopify.client import AdminClient, FixedToken
from app.shopify.queries import BULK_CUSTOMERS, BULK_ORDERS
from app.sync import full
from tests.support import queries
from tests.support.sync import stored_customers, stored_orders, sync


async def test_full_sync_fills_an_empty_database_exactly(
    db: Database, sync_config: Settings, shop: FakeShop
) -> None:
    shop.generate(customers=40, orders=120, line_items=3, seed=7)
    big = shop.add_customer(
        first_name="Ada",
        last_name="Byte",
        email="ada@example.com",
        phone="+15550100",
        tags=["vip", "wholesale"],
    )
    shop.add_order(
        customer_id=big["id"],
        total_price="12345678901234.5678",
        current_total_price="12345678901234.5678",
        financial_status="PARTIALLY_REFUNDED",
        fulfillment_status="PARTIALLY_FULFILLED",
        line_items=[
            {
                "title": "Lamp",
                "quantity": 2,
                "price": "19.99",
                "sku": "L-1",
                "variant_id": 2**62 + 5,
                "product_id": 2**62 + 7,
            }
        ],
    )

    run, status = await sync(db, sync_config, shop)

    assert status is SyncRunStatus.succeeded
    assert run.kind is SyncKind.full
    customers = await stored_customers(db, shop.domain)
    orders = await stored_orders(db, shop.domain)
    assert set(customers) == {str(c["id"]) for c in shop.customers}
    assert set(orders) == {str(o["id"]) for o in shop.orders}
    assert run.counts.fetched == len(customers) + len(orders)
    assert run.counts.applied == len(customers) + len(orders)
    assert run.counts.failed == 0

    ada = customers[str(big["id"])]
    assert big["id"] > 2**53 and ada["shopify_id"] == str(big["id"])
    assert (ada["email"], ada["name"], ada["phone"]) == ("ada@example.com", "Ada Byte", "+15550100")
    assert ada["tags"] == ["vip", "wholesale"]
    assert ada["order_count"] == len(shop.orders_of(big["id"])) == 1
    order = next(o for o in orders.values() if o["customer_id"] == ada["id"])
    assert order["total_price"] == Decimal("12345678901234.5678")
    assert order["financial_status"] == "partially_refunded"
    assert order["fulfillment_status"] == "partial"
    assert order["line_items"] is not None
    [item] = json.loads(order["line_items"])
    assert item["variant_id"] == 2**62 + 5 and item["price"] == "19.99" and item["quantity"] == 2
    assert ada["total_spent"] == Decimal("12345678901234.5678")

    # Every order's totals are the webhooks' totals: recomputed from the stored orders.
    for customer in shop.customers:
        expected = sum(
            (
                Decimal(str(o["current_total_price"]))
                for o in shop.orders_of(customer["id"])
                if o["cancelled_at"] is None
            ),
            Decimal(0),
        )
        assert customers[str(customer["id"])]["total_spent"] == expected

    # Side by side (API 2026-01 on): one export each, in either order.
    bulk_queries = [op.query for op in shop.bulk_operations]
    assert sorted(bulk_queries) == sorted([BULK_CUSTOMERS, BULK_ORDERS])
    assert shop.deprecated_fields_used == set()
    assert await queries.fetchval(db, "SELECT count(*) FROM sync_bulk_rows") == 0


async def test_orders_in_many_batches_by_customer_arrive_with_their_totals(
    db: Database, sync_config: Settings, shop: FakeShop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches of 7: each lane of customers applies many batches, one at a time.
    monkeypatch.setattr(full, "BATCH_SIZE", 7)
    shop.generate(customers=25, orders=150, line_items=2, seed=11)

    run, status = await sync(db, sync_config, shop)

    assert status is SyncRunStatus.succeeded
    customers = await stored_customers(db, shop.domain)
    assert set(await stored_orders(db, shop.domain)) == {str(o["id"]) for o in shop.orders}
    assert run.counts.applied == len(shop.customers) + len(shop.orders)
    for customer in shop.customers:
        counted = [o for o in shop.orders_of(customer["id"]) if o["cancelled_at"] is None]
        stored = customers[str(customer["id"])]
        assert stored["order_count"] == len(counted)
        assert stored["total_spent"] == sum(
            (Decimal(str(o["current_total_price"])) for o in counted), Decimal(0)
        )


async def test_incremental_sync_picks_up_exactly_what_changed(
    db: Database, sync_config: Settings, shop: FakeShop
) -> None:
    shop.generate(customers=30, orders=60, line_items=2, seed=3)
    await sync(db, sync_config, shop)
    first_customer, second_customer = shop.customers[:2]
    shop.update_customer(first_customer["id"], email="new@example.com")
    shop.update_customer(second_customer["id"], tags=["returning"])
    changed_order = shop.orders[5]
    shop.update_order(changed_order["id"], financial_status="REFUNDED", current_total_price="0.00")
    added = shop.add_order(customer_id=first_customer["id"], total_price="5.00")

    run, status = await sync(db, sync_config, shop)

    assert status is SyncRunStatus.succeeded
    assert run.kind is SyncKind.incremental
    assert run.counts.fetched == 4  # two customers, two orders: nothing else
    assert run.counts.applied == 4
    customers = await stored_customers(db, shop.domain)
    orders = await stored_orders(db, shop.domain)
    assert customers[str(first_customer["id"])]["email"] == "new@example.com"
    assert customers[str(second_customer["id"])]["tags"] == ["returning"]
    assert orders[str(changed_order["id"])]["financial_status"] == "refunded"
    assert orders[str(added["id"])]["total_price"] == Decimal("5.00")
    page_queries = [q for q, v in shop.queries if "CustomersPage" in q or "OrdersPage" in q]
    assert len(page_queries) == 2
    searches = [v["query"] for q, v in shop.queries if v and "query" in v and "Page" in q]
    assert all(search.startswith("updated_at:>='") for search in searches)


async def test_orders_with_more_line_items_than_a_page_get_them_all(
    db: Database, sync_config: Settings, shop: FakeShop
) -> None:
    await sync(db, sync_config, shop)  # the full sync (of nothing)
    items = [{"title": f"Item {n}", "quantity": 1, "price": "1.00"} for n in range(47)]
    order = shop.add_order(line_items=items, total_price="47.00")

    _, status = await sync(db, sync_config, shop)

    assert status is SyncRunStatus.succeeded
    stored = (await stored_orders(db, shop.domain))[str(order["id"])]
    titles = [item["title"] for item in json.loads(stored["line_items"])]
    assert titles == [f"Item {n}" for n in range(47)]


async def test_bulk_children_out_of_order_still_reach_their_order(
    db: Database, sync_config: Settings, shop: FakeShop
) -> None:
    shop.generate(customers=5, orders=30, line_items=4, seed=11)
    shop.bulk_shuffle_children = True

    _, status = await sync(db, sync_config, shop)

    assert status is SyncRunStatus.succeeded
    orders = await stored_orders(db, shop.domain)
    for order in shop.orders:
        stored_items = json.loads(orders[str(order["id"])]["line_items"])
        assert [item["id"] for item in stored_items] == [item["id"] for item in order["line_items"]]


async def test_second_bulk_query_waits_for_the_running_one_on_older_versions(
    db: Database, sync_config: Settings, shop: FakeShop, shopify_admin: ShopifyStandIn
) -> None:
    older = dataclasses.replace(sync_config, shopify_api_version="2025-10")
    shop.generate(customers=3, orders=3, line_items=1)
    shop.bulk_polls_to_complete = 3
    async with httpx.AsyncClient() as http:
        client = AdminClient(
            http,
            shop=shop.domain,
            tokens=FixedToken(shop.token),
            base_url=shopify_admin.base_url,
            api_version="2025-10",
        )
        running = await start_bulk_query(client, "{ customers { edges { node { id } } } }")

    _, status = await sync(db, older, shop)

    assert status is SyncRunStatus.succeeded
    assert len(await stored_customers(db, shop.domain)) == 3
    assert shop.bulk_operations[0].id == running.id  # ours waited for it, then ran
    assert len(shop.bulk_operations) == 3


async def test_the_exports_of_customers_and_orders_run_side_by_side_from_2026_01(
    db: Database, sync_config: Settings, shop: FakeShop
) -> None:
    shop.generate(customers=5, orders=5, line_items=1)
    shop.bulk_polls_to_complete = 3

    _, status = await sync(db, sync_config, shop)

    assert status is SyncRunStatus.succeeded
    customers, orders = sorted(shop.bulk_operations, key=lambda op: op.query != BULK_CUSTOMERS)
    assert (customers.query, orders.query) == (BULK_CUSTOMERS, BULK_ORDERS)
    # Each was created before the other completed.
    assert customers.completed_at is not None and orders.completed_at is not None
    assert orders.created_at <= customers.completed_at
    assert customers.created_at <= orders.completed_at
