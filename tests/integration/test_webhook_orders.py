"""orders/* topics, the customer nested in an order, and customer totals."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from app.db.database import Database
from tests.support import queries, shopify

SAMPLE_ORDER = 820982911946154508
SAMPLE_CUSTOMER = 115310627314723954


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def deliver(
    client: httpx.AsyncClient,
    topic: str,
    payload: dict[str, Any],
    expected: str = "processed",
    **options: Any,
) -> None:
    status = await shopify.deliver(client, topic, payload, **options)
    assert status == expected, (topic, status)


async def totals(db: Database, customer_id: int, shop: str = shopify.SHOP) -> dict[str, Any]:
    row = await queries.customer(db, customer_id, shop)
    assert row is not None, f"no customer {customer_id}"
    keys = ("order_count", "total_spent", "avg_order_value", "first_order_at", "last_order_at")
    return {key: row[key] for key in keys}


NO_ORDERS = {
    "order_count": 0,
    "total_spent": Decimal("0"),
    "avg_order_value": None,
    "first_order_at": None,
    "last_order_at": None,
}


async def test_sample_order_is_stored_exactly(client: httpx.AsyncClient, db: Database) -> None:
    payload = shopify.fixture("orders_create")
    response = await shopify.post(client, "orders/create", payload, webhook_id="o-1")
    assert response.json() == {"status": "processed", "webhook_id": "o-1"}

    order = await queries.order(db, SAMPLE_ORDER)
    assert order is not None
    expected = {
        "shop_id": shopify.SHOP,
        "shopify_id": str(SAMPLE_ORDER),
        "customer_shopify_id": str(SAMPLE_CUSTOMER),
        "total_price": Decimal("404.95"),
        "current_total_price": Decimal("414.95"),
        "currency": "USD",
        "financial_status": "voided",
        "fulfillment_status": None,
        "cancelled_at": ts("2021-12-31T19:00:00-05:00"),
        "name": "#9999",
        "email": "jon@example.com",
        "test": True,
        "shopify_created_at": ts("2021-12-31T19:00:00-05:00"),
        "shopify_updated_at": ts("2021-12-31T19:00:00-05:00"),
        "deleted_at": None,
    }
    assert {key: order[key] for key in expected} == expected
    # line_items exactly as received (jsonb equality, 64-bit ids included).
    assert await queries.fetchval(
        db, "SELECT line_items = $1::jsonb FROM orders", json.dumps(payload["line_items"])
    )

    customer = await queries.customer(db, SAMPLE_CUSTOMER)
    assert customer is not None
    assert order["customer_id"] == customer["id"]
    # The nested customer of the sample: no timestamps, no phone, no tags key.
    assert (customer["email"], customer["name"], customer["phone"], customer["tags"]) == (
        "john@example.com",
        "John Smith",
        None,
        None,
    )
    assert (customer["shopify_created_at"], customer["shopify_updated_at"]) == (None, None)
    # The sample order is cancelled: it does not count.
    assert await totals(db, SAMPLE_CUSTOMER) == NO_ORDERS


@pytest.mark.parametrize(
    ("topic", "changes", "stored"),
    [
        ("orders/create", {}, {"financial_status": "paid", "fulfillment_status": None}),
        ("orders/updated", {"currency": "EUR"}, {"currency": "EUR"}),
        ("orders/paid", {"financial_status": "paid"}, {"financial_status": "paid"}),
        (
            "orders/cancelled",
            {"cancelled_at": "2026-01-02T00:00:00Z", "financial_status": "refunded"},
            {"cancelled_at": ts("2026-01-02T00:00:00Z"), "financial_status": "refunded"},
        ),
        (
            "orders/fulfilled",
            {"fulfillment_status": "fulfilled"},
            {"fulfillment_status": "fulfilled"},
        ),
        (
            "orders/partially_fulfilled",
            {"fulfillment_status": "partial"},
            {"fulfillment_status": "partial"},
        ),
    ],
)
async def test_every_order_topic_upserts(
    client: httpx.AsyncClient,
    db: Database,
    topic: str,
    changes: dict[str, Any],
    stored: dict[str, Any],
) -> None:
    await deliver(
        client, "orders/create", shopify.order(7, customer_id=70, financial_status="pending")
    )
    newer = shopify.order(
        7,
        customer_id=70,
        updated_at="2026-01-02T00:00:00Z",
        total_price="55.50",
        current_total_price="50.25",
        **changes,
    )
    await deliver(client, topic, newer)

    order = await queries.order(db, 7)
    assert order is not None
    assert {key: order[key] for key in stored} == stored
    assert (order["total_price"], order["current_total_price"]) == (
        Decimal("55.50"),
        Decimal("50.25"),
    )
    assert order["shopify_updated_at"] == ts("2026-01-02T00:00:00Z")
    assert order["customer_shopify_id"] == "70"
    assert await queries.fetchval(db, "SELECT count(*) FROM orders") == 1
    cancelled = topic == "orders/cancelled"
    assert (await totals(db, 70))["order_count"] == (0 if cancelled else 1)
    assert (await totals(db, 70))["total_spent"] == (Decimal(0) if cancelled else Decimal("50.25"))


@pytest.mark.parametrize("missing", ["null", "absent"])
async def test_guest_order_has_no_customer(
    client: httpx.AsyncClient, db: Database, missing: str
) -> None:
    payload = shopify.order(8, customer_id=None, total_price="12.00")
    if missing == "absent":
        del payload["customer"]
    await deliver(client, "orders/create", payload)

    order = await queries.order(db, 8)
    assert order is not None
    assert (order["customer_id"], order["total_price"], order["email"]) == (
        None,
        Decimal("12.00"),
        "buyer@example.com",
    )
    assert await queries.fetchval(db, "SELECT count(*) FROM customers") == 0


async def test_order_without_line_items_stores_null(
    client: httpx.AsyncClient, db: Database
) -> None:
    payload = shopify.order(9)
    del payload["line_items"]
    await deliver(client, "orders/create", payload)
    assert (await queries.order(db, 9) or {"line_items": "?"})["line_items"] is None


# --- the customer nested in an order ---------------------------------------------


async def test_nested_customer_follows_the_customer_rules(
    client: httpx.AsyncClient, db: Database
) -> None:
    await deliver(
        client,
        "customers/create",
        shopify.customer(71, updated_at="2026-01-05T00:00:00Z", email="c@example.com", tags="vip"),
    )
    # Nested customer older than stored: the customer stays, the order is placed.
    older = shopify.order(
        10,
        customer_id=71,
        customer_updated_at="2026-01-01T00:00:00Z",
        customer_fields={"email": "old@example.com"},
    )
    await deliver(client, "orders/create", older)
    customer = await queries.customer(db, 71)
    assert customer is not None and customer["email"] == "c@example.com"
    assert (await queries.order(db, 10) or {})["customer_shopify_id"] == "71"

    # Nested customer without updated_at (as in Shopify's sample): never overwrites.
    await deliver(
        client,
        "orders/create",
        shopify.order(11, customer_id=71, customer_fields={"email": "null@example.com"}),
    )
    assert (await queries.customer(db, 71) or {})["email"] == "c@example.com"

    # Newer nested customer: applied, with the same name rules; no tags key keeps tags.
    newer = shopify.order(
        12,
        customer_id=71,
        customer_updated_at="2026-01-06T00:00:00Z",
        customer_fields={
            "email": "new@example.com",
            "first_name": " Jo ",
            "last_name": None,
            "phone": "+15145550111",
        },
    )
    await deliver(client, "orders/updated", newer)
    customer = await queries.customer(db, 71)
    assert customer is not None
    assert (customer["email"], customer["name"], customer["phone"], customer["tags"]) == (
        "new@example.com",
        "Jo",
        "+15145550111",
        ["vip"],
    )
    assert customer["shopify_updated_at"] == ts("2026-01-06T00:00:00Z")
    assert (await totals(db, 71))["order_count"] == 3
    assert await queries.fetchval(db, "SELECT count(*) FROM customers") == 1


async def test_nested_customer_is_created_when_missing(
    client: httpx.AsyncClient, db: Database
) -> None:
    await deliver(
        client,
        "orders/create",
        shopify.order(13, customer_id=72, customer_updated_at="2026-01-01T00:00:00Z"),
    )
    customer = await queries.customer(db, 72)
    assert customer is not None
    assert (customer["email"], customer["name"]) == ("john@example.com", "John Smith")
    assert customer["shopify_updated_at"] == ts("2026-01-01T00:00:00Z")
    # A later customers/update (stored updated_at older) applies.
    await deliver(
        client,
        "customers/update",
        shopify.customer(72, updated_at="2026-01-02T00:00:00Z", email="z@example.com"),
    )
    assert (await queries.customer(db, 72) or {})["email"] == "z@example.com"


# --- totals ----------------------------------------------------------------------------


async def test_totals_across_create_cancel_and_delete(
    client: httpx.AsyncClient, db: Database
) -> None:
    c = 73
    await deliver(
        client,
        "orders/create",
        shopify.order(101, customer_id=c, total_price="10.00", created_at="2026-01-01T00:00:00Z"),
    )
    assert await totals(db, c) == {
        "order_count": 1,
        "total_spent": Decimal("10.00"),
        "avg_order_value": Decimal("10.0000"),
        "first_order_at": ts("2026-01-01T00:00:00Z"),
        "last_order_at": ts("2026-01-01T00:00:00Z"),
    }
    await deliver(
        client,
        "orders/create",
        shopify.order(102, customer_id=c, total_price="10.00", created_at="2026-01-03T00:00:00Z"),
    )
    await deliver(
        client,
        "orders/create",
        shopify.order(103, customer_id=c, total_price="10.01", created_at="2026-01-02T00:00:00Z"),
    )
    assert await totals(db, c) == {
        "order_count": 3,
        "total_spent": Decimal("30.01"),
        "avg_order_value": Decimal("10.0033"),  # 30.01 / 3, rounded to 4 places
        "first_order_at": ts("2026-01-01T00:00:00Z"),
        "last_order_at": ts("2026-01-03T00:00:00Z"),
    }

    # Cancelling the latest order: it leaves the totals, and last_order_at moves back.
    cancelled = shopify.order(
        102,
        customer_id=c,
        total_price="10.00",
        created_at="2026-01-03T00:00:00Z",
        updated_at="2026-01-04T00:00:00Z",
        cancelled_at="2026-01-04T00:00:00Z",
    )
    await deliver(client, "orders/cancelled", cancelled)
    assert await totals(db, c) == {
        "order_count": 2,
        "total_spent": Decimal("20.01"),
        "avg_order_value": Decimal("10.0050"),  # 10.005 exactly
        "first_order_at": ts("2026-01-01T00:00:00Z"),
        "last_order_at": ts("2026-01-02T00:00:00Z"),
    }

    await deliver(client, "orders/delete", shopify.deleted(101))
    assert await totals(db, c) == {
        "order_count": 1,
        "total_spent": Decimal("10.01"),
        "avg_order_value": Decimal("10.0100"),
        "first_order_at": ts("2026-01-02T00:00:00Z"),
        "last_order_at": ts("2026-01-02T00:00:00Z"),
    }
    deleted = await queries.order(db, 101)
    assert deleted is not None and deleted["deleted_at"] is not None
    assert deleted["total_price"] == Decimal("10.00")  # soft delete keeps the data

    await deliver(client, "orders/delete", shopify.deleted(103))
    assert await totals(db, c) == NO_ORDERS


async def test_totals_use_current_total_price_with_total_price_as_fallback(
    client: httpx.AsyncClient, db: Database
) -> None:
    c = 74
    refunded = shopify.order(
        111, customer_id=c, total_price="100.00", current_total_price="60.1234"
    )
    no_current = shopify.order(112, customer_id=c, total_price="0.0001")
    no_current["current_total_price"] = None
    absent_current = shopify.order(113, customer_id=c, total_price="0.0002")
    del absent_current["current_total_price"]
    for payload in (refunded, no_current, absent_current):
        await deliver(client, "orders/create", payload)

    result = await totals(db, c)
    assert result["order_count"] == 3
    assert result["total_spent"] == Decimal("60.1237")
    assert result["avg_order_value"] == Decimal("20.0412")  # 60.1237 / 3 = 20.04123...
    stored = await queries.order(db, 112)
    assert stored is not None and stored["current_total_price"] is None


async def test_average_rounds_half_away_from_zero_to_four_places(
    client: httpx.AsyncClient, db: Database
) -> None:
    await deliver(client, "orders/create", shopify.order(121, customer_id=75, total_price="0.0001"))
    await deliver(client, "orders/create", shopify.order(122, customer_id=75, total_price="0.0002"))
    result = await totals(db, 75)
    assert (result["total_spent"], result["avg_order_value"]) == (
        Decimal("0.0003"),
        Decimal("0.0002"),  # 0.00015
    )


async def test_order_moving_to_another_customer_recomputes_both(
    client: httpx.AsyncClient, db: Database
) -> None:
    a, b = 76, 77
    await deliver(
        client,
        "orders/create",
        shopify.order(131, customer_id=a, total_price="40.00", created_at="2026-01-01T00:00:00Z"),
    )
    await deliver(
        client,
        "orders/create",
        shopify.order(132, customer_id=a, total_price="2.50", created_at="2026-01-02T00:00:00Z"),
    )
    await deliver(
        client,
        "orders/create",
        shopify.order(133, customer_id=b, total_price="7.25", created_at="2026-01-05T00:00:00Z"),
    )
    moved = shopify.order(
        131,
        customer_id=b,
        total_price="40.00",
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-06T00:00:00Z",
    )
    await deliver(client, "orders/updated", moved)

    assert await totals(db, a) == {
        "order_count": 1,
        "total_spent": Decimal("2.50"),
        "avg_order_value": Decimal("2.5000"),
        "first_order_at": ts("2026-01-02T00:00:00Z"),
        "last_order_at": ts("2026-01-02T00:00:00Z"),
    }
    assert await totals(db, b) == {
        "order_count": 2,
        "total_spent": Decimal("47.25"),
        "avg_order_value": Decimal("23.6250"),
        "first_order_at": ts("2026-01-01T00:00:00Z"),
        "last_order_at": ts("2026-01-05T00:00:00Z"),
    }
    assert (await queries.order(db, 131) or {})["customer_shopify_id"] == str(b)

    # Becoming a guest order: the former customer is recomputed too.
    guest = shopify.order(
        133, customer_id=None, total_price="7.25", updated_at="2026-01-07T00:00:00Z"
    )
    await deliver(client, "orders/updated", guest)
    assert (await totals(db, b))["total_spent"] == Decimal("40.00")
    assert (await totals(db, b))["order_count"] == 1


async def test_totals_survive_a_customer_update(client: httpx.AsyncClient, db: Database) -> None:
    await deliver(client, "orders/create", shopify.order(141, customer_id=78, total_price="9.99"))
    before = await totals(db, 78)
    await deliver(
        client,
        "customers/update",
        shopify.customer(78, updated_at="2026-11-01T00:00:00Z", email="x@example.com"),
    )
    assert await totals(db, 78) == before
    assert before["total_spent"] == Decimal("9.99")


# --- ids and tenants --------------------------------------------------------------------

BIG_ORDER = 2**63 - 1  # the largest id PostgreSQL's bigint (and Shopify) can hold
BIG_CUSTOMER = 2**53 + 1  # the first integer a float cannot hold
BIG_LINE_ITEM = 2**62 + 3


async def test_64_bit_ids_stay_exact(client: httpx.AsyncClient, db: Database) -> None:
    payload = shopify.order(BIG_ORDER, customer_id=BIG_CUSTOMER)
    payload["line_items"][0]["id"] = BIG_LINE_ITEM
    await deliver(client, "orders/create", payload, webhook_id="big-order")
    await deliver(
        client,
        "customers/update",
        shopify.customer(BIG_CUSTOMER, updated_at="2026-02-01T00:00:00Z"),
        webhook_id="big-customer",
    )

    order = await queries.order(db, BIG_ORDER)
    assert order is not None
    assert order["shopify_id"] == "9223372036854775807"
    assert order["customer_shopify_id"] == "9007199254740993"
    assert await queries.fetchval(db, "SELECT line_items -> 0 ->> 'id' FROM orders") == str(
        BIG_LINE_ITEM
    )
    customer = await queries.customer(db, BIG_CUSTOMER)
    assert customer is not None and customer["shopify_id"] == "9007199254740993"

    ids = await queries.fetch(
        db,
        "SELECT webhook_id, payload ->> 'id' AS id, payload -> 'customer' ->> 'id' AS nested"
        " FROM webhook_events ORDER BY webhook_id",
    )
    assert ids == [
        {"webhook_id": "big-customer", "id": "9007199254740993", "nested": None},
        {"webhook_id": "big-order", "id": "9223372036854775807", "nested": "9007199254740993"},
    ]


async def test_two_shops_with_the_same_ids_stay_separate(
    client: httpx.AsyncClient, db: Database
) -> None:
    for shop, price in ((shopify.SHOP, "10.00"), (shopify.OTHER_SHOP, "99.00")):
        await deliver(
            client,
            "orders/create",
            shopify.order(151, customer_id=79, total_price=price),
            shop=shop,
            webhook_id="same-webhook-id",  # ledger dedup is per shop too
        )
    await deliver(client, "orders/delete", shopify.deleted(151))

    mine = await queries.order(db, 151)
    other = await queries.order(db, 151, shop=shopify.OTHER_SHOP)
    assert mine is not None and other is not None
    assert mine["deleted_at"] is not None and other["deleted_at"] is None
    assert other["total_price"] == Decimal("99.00")
    assert mine["customer_id"] != other["customer_id"]
    assert await totals(db, 79) == NO_ORDERS
    assert (await totals(db, 79, shopify.OTHER_SHOP))["total_spent"] == Decimal("99.00")
    shops = await queries.fetch(db, "SELECT shop_id FROM shops ORDER BY shop_id")
    assert [row["shop_id"] for row in shops] == [shopify.OTHER_SHOP, shopify.SHOP]
    ledger = await queries.fetch(db, "SELECT shop_id, webhook_id FROM webhook_events")
    assert len(ledger) == 3
