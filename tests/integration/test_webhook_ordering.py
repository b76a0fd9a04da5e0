"""Deliveries out of order, late, without updated_at, and repeated."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from app.db.database import Database
from tests.support import queries, shopify
from tests.support.shopify import deliver

T1 = "2026-03-01T10:00:00Z"
T2 = "2026-03-01T11:00:00Z"
T3 = "2026-03-01T12:00:00Z"


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def snapshot(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Customers and orders, every column: to show a delivery changed nothing."""
    return {
        "customers": await queries.fetch(db, "SELECT * FROM customers ORDER BY shopify_id"),
        "orders": await queries.fetch(
            db, "SELECT *, line_items::text AS line_items FROM orders ORDER BY shopify_id"
        ),
    }


# --- orders ------------------------------------------------------------------------------


async def test_update_before_create(client: httpx.AsyncClient, db: Database) -> None:
    update = shopify.order(1, customer_id=10, updated_at=T2, total_price="20.00")
    create = shopify.order(1, customer_id=10, updated_at=T1, total_price="10.00")
    assert await deliver(client, "orders/updated", update) == "processed"
    before = await snapshot(db)
    assert await deliver(client, "orders/create", create, webhook_id="late") == "stale"

    assert await snapshot(db) == before
    order = await queries.order(db, 1)
    assert order is not None
    assert (order["total_price"], order["shopify_updated_at"]) == (Decimal("20.00"), ts(T2))
    customer = await queries.customer(db, 10)
    assert customer is not None
    assert (customer["order_count"], customer["total_spent"]) == (1, Decimal("20.00"))
    # A stale delivery is still recorded (and counts as handled).
    row = await queries.ledger_row(db, "late")
    assert (row["status"], row["last_error"]) == ("processed", None)


async def test_paid_before_create(client: httpx.AsyncClient, db: Database) -> None:
    paid = shopify.order(2, updated_at=T2, financial_status="paid")
    create = shopify.order(2, updated_at=T1, financial_status="pending")
    assert await deliver(client, "orders/paid", paid) == "processed"
    assert await deliver(client, "orders/create", create) == "stale"
    assert (await queries.order(db, 2) or {})["financial_status"] == "paid"


async def test_older_order_update_after_newer_is_stale(
    client: httpx.AsyncClient, db: Database
) -> None:
    await deliver(client, "orders/create", shopify.order(3, customer_id=11, updated_at=T1))
    newest = shopify.order(
        3, customer_id=11, updated_at=T3, total_price="30.00", financial_status="refunded"
    )
    assert await deliver(client, "orders/updated", newest) == "processed"
    before = await snapshot(db)
    older = shopify.order(
        3,
        customer_id=12,  # would move the order, and create a customer: nothing of it lands
        updated_at=T2,
        total_price="99.00",
        cancelled_at=T2,
        email="older@example.com",
    )
    assert await deliver(client, "orders/updated", older) == "stale"

    after = await snapshot(db)
    assert after["orders"] == before["orders"]
    order = await queries.order(db, 3)
    assert order is not None
    assert (order["total_price"], order["financial_status"], order["cancelled_at"]) == (
        Decimal("30.00"),
        "refunded",
        None,
    )
    assert order["customer_shopify_id"] == "11"
    assert (await queries.customer(db, 11) or {})["total_spent"] == Decimal("30.00")


async def test_same_updated_at_is_applied(client: httpx.AsyncClient, db: Database) -> None:
    await deliver(client, "orders/create", shopify.order(4, updated_at=T1, total_price="1.00"))
    again = shopify.order(4, updated_at=T1, total_price="2.00")
    assert await deliver(client, "orders/updated", again) == "processed"
    assert (await queries.order(db, 4) or {})["total_price"] == Decimal("2.00")


async def test_order_delete_before_create_leaves_a_tombstone(
    client: httpx.AsyncClient, db: Database
) -> None:
    assert await deliver(client, "orders/delete", shopify.deleted(5)) == "processed"
    tombstone = await queries.order(db, 5)
    assert tombstone is not None and tombstone["deleted_at"] is not None
    assert (tombstone["total_price"], tombstone["customer_id"]) == (None, None)

    late = shopify.order(5, customer_id=13, updated_at=T3, total_price="50.00")
    assert await deliver(client, "orders/create", late) == "stale"
    order = await queries.order(db, 5)
    assert order is not None
    assert order["deleted_at"] == tombstone["deleted_at"]
    assert (order["total_price"], order["customer_id"], order["shopify_updated_at"]) == (
        None,
        None,
        None,
    )
    customer = await queries.customer(db, 13)
    assert customer is None or (customer["order_count"], customer["total_spent"]) == (
        0,
        Decimal(0),
    )
    assert await queries.fetchval(db, "SELECT count(*) FROM orders") == 1


async def test_deleted_order_ignores_later_updates(client: httpx.AsyncClient, db: Database) -> None:
    await deliver(client, "orders/create", shopify.order(6, customer_id=14, updated_at=T1))
    assert await deliver(client, "orders/delete", shopify.deleted(6)) == "processed"
    before = await snapshot(db)
    newer = shopify.order(6, customer_id=14, updated_at=T3, total_price="77.00")
    assert await deliver(client, "orders/updated", newer) == "stale"
    assert await deliver(client, "orders/delete", shopify.deleted(6)) == "stale"

    assert await snapshot(db) == before
    customer = await queries.customer(db, 14)
    assert customer is not None
    assert (customer["order_count"], customer["total_spent"]) == (0, Decimal(0))


async def test_order_without_updated_at_only_creates(
    client: httpx.AsyncClient, db: Database
) -> None:
    first = shopify.order(7, total_price="5.00")
    first["updated_at"] = None
    assert await deliver(client, "orders/create", first) == "processed"
    order = await queries.order(db, 7)
    assert order is not None
    assert (order["total_price"], order["shopify_updated_at"]) == (Decimal("5.00"), None)

    second = shopify.order(7, total_price="6.00")
    del second["updated_at"]
    assert await deliver(client, "orders/updated", second) == "stale"
    assert (await queries.order(db, 7) or {})["total_price"] == Decimal("5.00")

    # A payload that has updated_at applies over a row stored without one.
    dated = shopify.order(7, total_price="7.00", updated_at=T1)
    assert await deliver(client, "orders/updated", dated) == "processed"
    order = await queries.order(db, 7)
    assert order is not None
    assert (order["total_price"], order["shopify_updated_at"]) == (Decimal("7.00"), ts(T1))


# --- customers ---------------------------------------------------------------------------


async def test_customer_update_before_create(client: httpx.AsyncClient, db: Database) -> None:
    update = shopify.customer(20, updated_at=T2, email="new@example.com")
    create = shopify.customer(20, updated_at=T1, email="old@example.com")
    assert await deliver(client, "customers/update", update) == "processed"
    assert await deliver(client, "customers/create", create) == "stale"
    customer = await queries.customer(db, 20)
    assert customer is not None
    assert (customer["email"], customer["shopify_updated_at"]) == ("new@example.com", ts(T2))


async def test_older_customer_update_after_newer_is_stale(
    client: httpx.AsyncClient, db: Database
) -> None:
    await deliver(client, "customers/create", shopify.customer(21, updated_at=T1, tags="a"))
    newest = shopify.customer(21, updated_at=T3, email="c@example.com", first_name="C", tags="c")
    assert await deliver(client, "customers/update", newest) == "processed"
    before = await snapshot(db)
    older = shopify.customer(21, updated_at=T2, email="b@example.com", first_name="B", tags="b")
    assert await deliver(client, "customers/disable", older) == "stale"
    assert await snapshot(db) == before
    customer = await queries.customer(db, 21)
    assert customer is not None
    assert (customer["email"], customer["name"], customer["tags"]) == (
        "c@example.com",
        "C Biller",
        ["c"],
    )


async def test_customer_delete_before_create_leaves_a_tombstone(
    client: httpx.AsyncClient, db: Database
) -> None:
    assert await deliver(client, "customers/delete", shopify.customer_deleted(22)) == "processed"
    late = shopify.customer(22, updated_at=T3, email="late@example.com")
    assert await deliver(client, "customers/create", late) == "stale"
    customer = await queries.customer(db, 22)
    assert customer is not None
    assert customer["deleted_at"] is not None
    assert (customer["email"], customer["name"], customer["shopify_updated_at"]) == (
        None,
        None,
        None,
    )


async def test_deleted_customer_ignores_later_updates(
    client: httpx.AsyncClient, db: Database
) -> None:
    await deliver(client, "customers/create", shopify.customer(23, updated_at=T1))
    await deliver(client, "customers/delete", shopify.customer_deleted(23))
    before = await snapshot(db)
    newer = shopify.customer(23, updated_at=T3, email="back@example.com")
    assert await deliver(client, "customers/enable", newer) == "stale"
    assert await deliver(client, "customers/delete", shopify.customer_deleted(23)) == "stale"
    assert await snapshot(db) == before
    assert (await queries.customer(db, 23) or {})["email"] == "bob@biller.com"


async def test_customer_without_updated_at_only_creates(
    client: httpx.AsyncClient, db: Database
) -> None:
    first = shopify.customer(24, updated_at=None, email="first@example.com")
    assert await deliver(client, "customers/create", first) == "processed"
    customer = await queries.customer(db, 24)
    assert customer is not None
    assert (customer["email"], customer["shopify_updated_at"]) == ("first@example.com", None)

    second = shopify.customer(24, updated_at=None, email="second@example.com")
    del second["updated_at"]
    assert await deliver(client, "customers/update", second) == "stale"
    assert (await queries.customer(db, 24) or {})["email"] == "first@example.com"

    dated = shopify.customer(24, updated_at=T1, email="dated@example.com")
    assert await deliver(client, "customers/update", dated) == "processed"
    assert (await queries.customer(db, 24) or {})["email"] == "dated@example.com"


async def test_timestamps_compare_across_offsets(client: httpx.AsyncClient, db: Database) -> None:
    # 11:00Z is 06:00-05:00: the same instant is not older, and 05:59-05:00 is.
    await deliver(client, "customers/create", shopify.customer(25, updated_at=T2, email="a@x.io"))
    same = shopify.customer(25, updated_at="2026-03-01T06:00:00-05:00", email="b@x.io")
    assert await deliver(client, "customers/update", same) == "processed"
    older = shopify.customer(25, updated_at="2026-03-01T05:59:59-05:00", email="c@x.io")
    assert await deliver(client, "customers/update", older) == "stale"
    assert (await queries.customer(db, 25) or {})["email"] == "b@x.io"


# --- duplicates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "payload", "first"),
    [
        ("orders/create", shopify.order(30, customer_id=31), "processed"),
        ("customers/create", shopify.customer(32), "processed"),
        ("orders/delete", shopify.deleted(30), "processed"),
        ("customers/redact", shopify.customers_redact(33), "processed"),
        ("customers/data_request", shopify.data_request(33), "processed"),
        ("app/uninstalled", shopify.fixture("app_uninstalled"), "processed"),
        ("products/create", {"id": 34, "title": "Hat"}, "ignored"),
        ("orders/create", {"id": "not-a-number"}, "failed"),
    ],
)
async def test_sequential_duplicate_changes_nothing(
    client: httpx.AsyncClient, db: Database, topic: str, payload: dict[str, Any], first: str
) -> None:
    response = await shopify.post(client, topic, payload, webhook_id="dup")
    assert response.json() == {"status": first, "webhook_id": "dup"}
    before = await snapshot(db)
    ledger_before = await queries.ledger(db)

    for _ in range(2):
        again = await shopify.post(client, topic, payload, webhook_id="dup")
        assert again.status_code == 200
        assert again.json() == {"status": "duplicate", "webhook_id": "dup"}

    assert await snapshot(db) == before
    assert await queries.ledger(db) == ledger_before
    (row,) = ledger_before
    assert (row["status"], row["attempts"]) == (first, 1)


async def test_duplicate_is_by_webhook_id_not_by_content(
    client: httpx.AsyncClient, db: Database
) -> None:
    await deliver(client, "orders/create", shopify.order(35, total_price="1.00"), webhook_id="w")
    changed = shopify.order(35, total_price="2.00", updated_at=T3)
    assert await deliver(client, "orders/updated", changed, webhook_id="w") == "duplicate"
    assert (await queries.order(db, 35) or {})["total_price"] == Decimal("1.00")
    # The same content under another webhook id is a new delivery.
    assert await deliver(client, "orders/updated", changed, webhook_id="w2") == "processed"
    assert (await queries.order(db, 35) or {})["total_price"] == Decimal("2.00")


async def test_duplicate_through_the_events_family_header(
    client: httpx.AsyncClient, db: Database
) -> None:
    payload = shopify.customer(36)
    assert await deliver(client, "customers/create", payload, webhook_id="fam") == "processed"
    again = await deliver(client, "customers/create", payload, webhook_id="fam", prefix="Shopify-")
    assert again == "duplicate"
    assert len(await queries.ledger(db)) == 1
