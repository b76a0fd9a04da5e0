"""customers/redact, customers/data_request, shop/redact and app/uninstalled."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from app.db.database import Database
from tests.support import queries, shopify
from tests.support.shopify import deliver

# The subject of Shopify's customers/redact sample, and the orders it names.
CUSTOMER = 191167
ORDERS = [299938, 280263, 220458]
EMAIL = "john@example.com"
PHONE = "555-625-1199"
NAME = "John Smith"

OTHER_CUSTOMER = 191168


def subject_order(order_id: int, **options: Any) -> dict[str, Any]:
    """An order of the subject: their email, name and phone all over it."""
    payload = shopify.order(
        order_id,
        customer_id=CUSTOMER,
        email=EMAIL,
        customer_updated_at="2026-01-01T00:00:00Z",
        customer_fields={"email": EMAIL, "phone": PHONE},
        contact_email=EMAIL,
        phone=PHONE,
        note=f"call {NAME} at {PHONE}",
        **options,
    )
    payload["billing_address"].update(first_name="John", last_name="Smith", name=NAME, phone=PHONE)
    return payload


async def seed_subject(client: httpx.AsyncClient) -> None:
    """The subject's customer, orders and other deliveries, plus bystanders."""
    subject = shopify.customer(
        CUSTOMER,
        updated_at="2026-01-02T00:00:00Z",
        email=EMAIL,
        first_name="John",
        last_name="Smith",
        phone=PHONE,
        tags="vip, newsletter",
        note=f"{NAME} prefers phone: {PHONE}",
    )
    subject["default_address"].update(name=NAME, phone=PHONE, first_name="John")
    assert await deliver(client, "customers/create", subject) == "processed"
    assert await deliver(client, "orders/create", subject_order(299938, total_price="10.00")) == (
        "processed"
    )
    assert await deliver(
        client,
        "orders/updated",
        subject_order(299938, total_price="10.00", updated_at="2026-01-02T10:00:00-05:00"),
    ) == ("processed")
    assert await deliver(client, "orders/paid", subject_order(280263, total_price="5.5555")) == (
        "processed"
    )
    # A guest checkout with the subject's email, listed in orders_to_redact.
    guest = shopify.order(220458, customer_id=None, email=EMAIL, total_price="1.00")
    assert await deliver(client, "orders/create", guest) == "processed"
    # A delivery about the subject that failed, and one nobody handles.
    failed = subject_order(299938, financial_status="bogus")
    assert await deliver(client, "orders/updated", failed) == "failed"
    checkout = {"id": 555, "email": EMAIL, "customer": {"id": CUSTOMER, "email": EMAIL}}
    assert await deliver(client, "checkouts/create", checkout) == "ignored"
    assert await deliver(client, "customers/data_request", shopify.data_request(CUSTOMER)) == (
        "processed"
    )
    # A topic this service does not handle, about one of the orders: the ledger
    # keeps it, personal data included (Shopify's fulfillment shape).
    fulfillment = {
        "id": 255858046,
        "order_id": 299938,
        "status": "success",
        "email": EMAIL,
        "destination": {"first_name": "John", "last_name": "Smith", "name": NAME, "phone": PHONE},
        "tracking_number": "1Z2345",
    }
    assert await deliver(client, "fulfillments/create", fulfillment) == "ignored"

    # Bystanders: another customer of the shop, and the same id in another shop.
    bystander = shopify.customer(
        OTHER_CUSTOMER, email="jane@example.com", first_name="Jane", last_name="Roe"
    )
    assert await deliver(client, "customers/create", bystander) == "processed"
    bystander_order = shopify.order(
        300000,
        customer_id=OTHER_CUSTOMER,
        customer_fields={
            "email": "jane@example.com",
            "first_name": "Jane",
            "last_name": "Roe",
            "default_address": None,
        },
    )
    assert await deliver(client, "orders/create", bystander_order) == "processed"
    elsewhere = shopify.customer(CUSTOMER, email="john@elsewhere.example", first_name="Jon")
    assert await deliver(client, "customers/create", elsewhere, shop=shopify.OTHER_SHOP) == (
        "processed"
    )


async def totals(db: Database, customer_id: int = CUSTOMER) -> tuple[Any, ...]:
    row = await queries.customer(db, customer_id)
    assert row is not None
    keys = ("order_count", "total_spent", "avg_order_value", "first_order_at", "last_order_at")
    return tuple(row[key] for key in keys)


async def test_customers_redact_erases_the_customer_everywhere(
    client: httpx.AsyncClient, db: Database
) -> None:
    await seed_subject(client)
    assert await queries.where_found(db, EMAIL, NAME, PHONE)  # the search does find them
    totals_before = await totals(db)
    assert totals_before[:3] == (2, Decimal("15.5555"), Decimal("7.7778"))
    bystander_before = await queries.customer(db, OTHER_CUSTOMER)
    elsewhere_before = await queries.customer(db, CUSTOMER, shopify.OTHER_SHOP)

    redact = shopify.customers_redact(CUSTOMER, email=EMAIL, phone=PHONE, orders_to_redact=ORDERS)
    response = await shopify.post(client, "customers/redact", redact, webhook_id="redact")
    assert response.json() == {"status": "processed", "webhook_id": "redact"}

    assert await queries.where_found(db, EMAIL, NAME, PHONE) == []
    customer = await queries.customer(db, CUSTOMER)
    assert customer is not None
    assert (customer["email"], customer["name"], customer["phone"], customer["tags"]) == (
        None,
        None,
        None,
        None,
    )
    assert customer["redacted_at"] is not None
    assert await totals(db) == totals_before
    for order_id in ORDERS:
        order = await queries.order(db, order_id)
        assert order is not None and order["email"] is None, order_id
    assert (await queries.order(db, 299938) or {})["total_price"] == Decimal("10.00")

    own = await queries.ledger_row(db, "redact")
    assert own["status"] == "processed"
    stored = json.loads(own["payload_text"])
    assert stored["customer"] == {"id": CUSTOMER, "email": None, "phone": None}
    assert stored["orders_to_redact"] == ORDERS
    # Ledger rows survive the scrub, ids and amounts intact.
    topics = [row["topic"] for row in await queries.ledger(db, shopify.SHOP)]
    assert len(topics) == 12
    order_payload = await queries.fetchval(
        db,
        "SELECT payload::text FROM webhook_events WHERE topic = 'orders/paid'",
    )
    assert json.loads(order_payload)["id"] == 280263
    assert json.loads(order_payload)["total_price"] == "5.5555"

    # Bystanders are untouched.
    assert await queries.customer(db, OTHER_CUSTOMER) == bystander_before
    assert await queries.customer(db, CUSTOMER, shopify.OTHER_SHOP) == elsewhere_before
    assert (await queries.order(db, 300000) or {})["email"] == "buyer@example.com"
    assert await queries.where_found(db, "jane@example.com", "Jane Roe", "john@elsewhere.example")


async def test_deliveries_after_the_redact_stay_scrubbed(
    client: httpx.AsyncClient, db: Database
) -> None:
    await seed_subject(client)
    redact = shopify.customers_redact(CUSTOMER, email=EMAIL, phone=PHONE, orders_to_redact=ORDERS)
    assert await deliver(client, "customers/redact", redact) == "processed"
    totals_before = await totals(db)

    # Late deliveries (Shopify retries for hours) bring the data back in.
    late_update = shopify.customer(
        CUSTOMER,
        updated_at="2026-06-01T00:00:00Z",
        email=EMAIL,
        first_name="John",
        last_name="Smith",
        phone=PHONE,
        note=f"{NAME} asked to be called at {PHONE}",  # free text, not a personal field
    )
    assert await deliver(client, "customers/update", late_update) == "stale"
    late_order = subject_order(299939, total_price="3.00", updated_at="2026-06-01T00:00:00Z")
    assert await deliver(client, "orders/create", late_order) == "processed"

    assert await queries.where_found(db, EMAIL, NAME, PHONE) == []
    customer = await queries.customer(db, CUSTOMER)
    assert customer is not None
    assert (customer["email"], customer["name"], customer["phone"]) == (None, None, None)
    # The late order counts: totals are not personal data.
    assert customer["order_count"] == totals_before[0] + 1
    assert customer["total_spent"] == totals_before[1] + Decimal("3.00")
    assert (await queries.order(db, 299939) or {})["email"] is None


async def test_redact_of_an_unknown_customer_keeps_them_out(
    client: httpx.AsyncClient, db: Database
) -> None:
    redact = shopify.customers_redact(CUSTOMER, email=EMAIL, phone=PHONE, orders_to_redact=[])
    assert await deliver(client, "customers/redact", redact) == "processed"
    customer = await queries.customer(db, CUSTOMER)
    assert customer is not None and customer["redacted_at"] is not None
    assert (customer["order_count"], customer["total_spent"]) == (0, Decimal(0))

    create = shopify.customer(CUSTOMER, email=EMAIL, first_name="John", last_name="Smith")
    assert await deliver(client, "customers/create", create) == "stale"
    assert await queries.where_found(db, EMAIL, NAME, PHONE) == []


async def test_redact_is_per_shop(client: httpx.AsyncClient, db: Database) -> None:
    for shop in (shopify.SHOP, shopify.OTHER_SHOP):
        await deliver(client, "orders/create", subject_order(299938), shop=shop)
    redact = shopify.customers_redact(CUSTOMER, orders_to_redact=[299938], shop=shopify.OTHER_SHOP)
    assert await deliver(client, "customers/redact", redact, shop=shopify.OTHER_SHOP) == (
        "processed"
    )
    mine = await queries.customer(db, CUSTOMER)
    assert mine is not None and (mine["email"], mine["redacted_at"]) == (EMAIL, None)
    assert (await queries.order(db, 299938) or {})["email"] == EMAIL
    other = await queries.customer(db, CUSTOMER, shopify.OTHER_SHOP)
    assert other is not None and other["email"] is None
    assert (await queries.order(db, 299938, shopify.OTHER_SHOP) or {"email": "?"})["email"] is None
    untouched = await queries.fetchval(
        db,
        "SELECT count(*) FROM webhook_events WHERE shop_id = $1 AND payload::text LIKE $2",
        shopify.SHOP,
        f"%{EMAIL}%",
    )
    assert untouched == 1


async def test_data_request_is_recorded(client: httpx.AsyncClient, db: Database) -> None:
    payload = {**shopify.fixture("customers_data_request"), "shop_domain": shopify.SHOP}
    response = await shopify.post(client, "customers/data_request", payload, webhook_id="dr")
    assert response.json() == {"status": "processed", "webhook_id": "dr"}

    row = await queries.ledger_row(db, "dr")
    assert (row["status"], row["topic"], row["last_error"]) == (
        "processed",
        "customers/data_request",
        None,
    )
    # Kept as received: the merchant needs it to answer the request.
    assert json.loads(row["payload_text"]) == payload
    shop = await queries.shop(db)
    assert shop is not None and shop["shopify_shop_id"] == "954889"
    counts = await queries.counts(db)
    assert (counts["customers"], counts["orders"]) == (0, 0)


async def test_shop_redact_removes_only_that_shop(client: httpx.AsyncClient, db: Database) -> None:
    for shop in (shopify.SHOP, shopify.OTHER_SHOP):
        # Not a test order: it counts, and announces the customer's first order.
        first = shopify.order(1, customer_id=2, test=False)
        await deliver(client, "orders/create", first, shop=shop)
        await deliver(client, "orders/create", shopify.order(3), shop=shop)
        await deliver(client, "customers/create", shopify.customer(4), shop=shop)
        await deliver(client, "products/update", {"id": 5}, shop=shop)
        await queries.execute(
            db,
            "WITH a AS (INSERT INTO automations (shop_id, name, trigger_type, action_type)"
            "           VALUES ($1, 'welcome', 'first_order', 'send_email') RETURNING id)"
            " INSERT INTO message_logs (shop_id, customer_id, automation_id, channel, status)"
            " SELECT $1, c.id, a.id, 'email', 'sent' FROM a, customers c"
            " WHERE c.shop_id = $1 AND c.shopify_id = '2'",
            shop,
        )
    other_before = await shop_rows(db, shopify.OTHER_SHOP)
    assert {table: len(rows) for table, rows in other_before.items()} == {
        "customers": 2,
        "orders": 2,
        "automations": 1,
        "message_logs": 1,
        "webhook_events": 4,
        "customer_events": 1,
        "shops": 1,
    }

    response = await shopify.post(client, "shop/redact", shopify.shop_redact(), webhook_id="sr")
    assert response.json() == {"status": "processed", "webhook_id": "sr"}

    mine = await shop_rows(db, shopify.SHOP)
    assert {table: len(rows) for table, rows in mine.items()} == {
        "customers": 0,
        "orders": 0,
        "automations": 0,
        "message_logs": 0,
        "webhook_events": 1,
        "customer_events": 0,
        "shops": 1,
    }
    assert mine["webhook_events"][0]["webhook_id"] == "sr"
    assert mine["webhook_events"][0]["status"] == "processed"
    assert mine["shops"][0]["redacted_at"] is not None
    assert mine["shops"][0]["shopify_shop_id"] == "954889"
    assert await shop_rows(db, shopify.OTHER_SHOP) == other_before

    # A copy of the redact is a duplicate and changes nothing.
    again = await shopify.post(client, "shop/redact", shopify.shop_redact(), webhook_id="sr")
    assert again.json()["status"] == "duplicate"


async def shop_rows(db: Database, shop: str) -> dict[str, list[dict[str, Any]]]:
    result = {}
    tables = ("customers", "orders", "automations", "message_logs", "webhook_events")
    for table in (*tables, "customer_events"):
        result[table] = await queries.fetch(
            db,
            f"SELECT * FROM {table} WHERE shop_id = $1 ORDER BY id",
            shop,
        )
    result["shops"] = await queries.fetch(db, "SELECT * FROM shops WHERE shop_id = $1", shop)
    return result


async def test_app_uninstalled_marks_the_shop(client: httpx.AsyncClient, db: Database) -> None:
    await deliver(client, "orders/create", shopify.order(1, customer_id=2))
    response = await shopify.post(
        client,
        "app/uninstalled",
        shopify.fixture("app_uninstalled"),
        webhook_id="bye",
        triggered_at="2026-11-20T08:30:00.5Z",
    )
    assert response.json() == {"status": "processed", "webhook_id": "bye"}

    shop = await queries.shop(db)
    assert shop is not None
    assert shop["uninstalled_at"] == datetime(2026, 11, 20, 8, 30, 0, 500000, tzinfo=UTC)
    assert shop["shopify_shop_id"] == "548380009"
    assert shop["redacted_at"] is None
    # Uninstalling keeps the data (shop/redact comes 48 hours later, if at all).
    counts = await queries.counts(db)
    assert (counts["customers"], counts["orders"], counts["webhook_events"]) == (1, 1, 2)
    assert (await queries.ledger_row(db, "bye"))["status"] == "processed"


async def test_app_uninstalled_without_triggered_at_uses_now(
    client: httpx.AsyncClient, db: Database
) -> None:
    before = await queries.fetchval(db, "SELECT now()")
    response = await shopify.post(
        client, "app/uninstalled", shopify.fixture("app_uninstalled"), triggered_at=None
    )
    assert response.json()["status"] == "processed"
    shop = await queries.shop(db)
    assert shop is not None and shop["uninstalled_at"] >= before
