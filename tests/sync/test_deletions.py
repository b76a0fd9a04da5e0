"""Deletions reconciled by a full sync: what a complete export no longer lists is deleted.

Exactly as a delete webhook deletes (a tombstone a late webhook cannot undo,
the customer's totals recomputed), counted as `deleted`; never after a partial
export, an incremental run, or for rows created after the export began.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from app.config import Settings
from app.db.database import Database
from app.db.enums import SyncResource, SyncRunStatus
from app.devtools.standin import FakeShop
from app.webhooks.outcomes import Outcome
from tests.support import queries, shopify
from tests.support.sync import stored_customers, stored_orders, sync


async def test_a_complete_full_export_deletes_what_it_no_longer_lists(
    db: Database, sync_config: Settings, shop: FakeShop, client: httpx.AsyncClient
) -> None:
    shop.generate(customers=6, orders=12, line_items=1, seed=5)
    await sync(db, sync_config, shop)
    kept_customer = shop.customers[0]
    gone_customer = next(c for c in shop.customers[1:] if not shop.orders_of(c["id"]))
    gone_order = shop.orders_of(kept_customer["id"])[0]
    before = (await stored_customers(db, shop.domain))[str(kept_customer["id"])]
    # Deleted in Shopify while their delete webhooks were lost.
    shop.remove_customer(gone_customer["id"])
    shop.remove_order(gone_order["id"])

    run, status = await sync(db, sync_config, shop, full=True)

    assert status is SyncRunStatus.succeeded
    assert run.counts.deleted == 2
    customers = await stored_customers(db, shop.domain)
    orders = await stored_orders(db, shop.domain)
    assert customers[str(gone_customer["id"])]["deleted_at"] is not None
    assert orders[str(gone_order["id"])]["deleted_at"] is not None
    assert sum(row["deleted_at"] is not None for row in customers.values()) == 1
    assert sum(row["deleted_at"] is not None for row in orders.values()) == 1
    kept = customers[str(kept_customer["id"])]
    assert kept["order_count"] == before["order_count"] - 1
    counted = Decimal(str(gone_order["current_total_price"]))
    assert kept["total_spent"] == before["total_spent"] - counted
    stored_run = await queries.fetchrow(db, "SELECT deleted FROM sync_runs WHERE id = $1", run.id)
    assert stored_run is not None and stored_run["deleted"] == 2

    # A late orders/updated for the deleted order cannot bring it back.
    late = shopify.order(int(gone_order["id"]), customer_id=int(kept_customer["id"]))
    late["updated_at"] = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()  # newest yet
    answer = await shopify.deliver(client, "orders/updated", late, shop=shop.domain)
    assert answer == Outcome.stale.value
    assert (await stored_orders(db, shop.domain))[str(gone_order["id"])]["deleted_at"] is not None


async def test_no_deletions_after_a_partial_export_or_an_incremental_run(
    db: Database, sync_config: Settings, shop: FakeShop
) -> None:
    shop.generate(customers=4, orders=4, line_items=1, seed=2)
    await sync(db, sync_config, shop)
    shop.remove_customer(shop.customers[-1]["id"])

    run, status = await sync(db, sync_config, shop)  # incremental
    assert status is SyncRunStatus.succeeded and run.counts.deleted == 0

    shop.fail_next_bulk(partial=True)
    run, status = await sync(db, sync_config, shop, full=True, resources=(SyncResource.customers,))
    assert status is SyncRunStatus.partial and run.counts.deleted == 0
    customers = await stored_customers(db, shop.domain)
    assert all(row["deleted_at"] is None for row in customers.values())


async def test_rows_created_after_the_export_began_are_kept(
    db: Database, sync_config: Settings, shop: FakeShop
) -> None:
    shop.generate(customers=2, orders=0, seed=1)
    started = await queries.fetchval(db, "SELECT now()")
    await sync(db, sync_config, shop)
    # A customer a webhook created while the export ran: not in it, but new here.
    await queries.execute(
        db,
        "INSERT INTO customers (shop_id, shopify_id, created_at, order_count, total_spent)"
        " VALUES ($1, '424242', $2, 0, 0)",
        shop.domain,
        started,
    )
    run, status = await sync(db, sync_config, shop, full=True)
    assert status is SyncRunStatus.succeeded
    assert run.counts.deleted == 1  # created before this export began: it is gone from Shopify
    await queries.execute(
        db,
        "INSERT INTO customers (shop_id, shopify_id, created_at, order_count, total_spent)"
        " VALUES ($1, '434343', now() + interval '1 hour', 0, 0)",
        shop.domain,
    )
    run, status = await sync(db, sync_config, shop, full=True)
    assert run.counts.deleted == 0
    assert (await stored_customers(db, shop.domain))["434343"]["deleted_at"] is None
