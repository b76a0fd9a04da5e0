"""Times at the edges of the calendar, in the signed headers and in payloads.

0001-01-01T00:00:00+14:00 is before year 1 in UTC, 9999-12-31T23:59:59-14:00
after 9999: Python's datetime cannot convert either to UTC, so they used to
fail in the database call (500, nothing recorded). A header gets 400 naming
it; a payload time is recorded as `failed` (or stored when it is in range).
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from app.db.database import Database
from tests.support import queries, shopify

OUT_OF_RANGE = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00")
IN_RANGE = ("0001-01-01T00:00:00-14:00", "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00Z")


@pytest.mark.parametrize("when", OUT_OF_RANGE)
@pytest.mark.parametrize("topic", ["orders/create", "app/uninstalled", "products/update"])
async def test_triggered_at_out_of_range_is_400(
    client: httpx.AsyncClient, db: Database, when: str, topic: str
) -> None:
    payload = shopify.order(1, customer_id=2) if topic != "app/uninstalled" else {"id": 1}
    response = await shopify.post(client, topic, payload, triggered_at=when)
    assert response.status_code == 400, response.text
    assert "X-Shopify-Triggered-At" in response.json()["detail"]
    assert await queries.nothing_stored(db)


@pytest.mark.parametrize("when", IN_RANGE)
async def test_triggered_at_at_the_edge_but_in_range_is_recorded(
    client: httpx.AsyncClient, db: Database, when: str
) -> None:
    status = await shopify.deliver(
        client,
        "orders/create",
        shopify.order(1, customer_id=2),
        webhook_id="edge",
        triggered_at=when,
    )
    assert status == "processed"
    row = await queries.ledger_row(db, "edge")
    assert row["triggered_at"] is not None


@pytest.mark.parametrize("when", OUT_OF_RANGE)
@pytest.mark.parametrize("field", ["created_at", "updated_at", "cancelled_at"])
async def test_payload_times_out_of_range_are_never_500(
    client: httpx.AsyncClient, db: Database, when: str, field: str
) -> None:
    payload = {**shopify.order(1, customer_id=2), field: when}
    response = await shopify.post(client, "orders/create", payload, webhook_id="edge")
    assert response.status_code == 200, response.text
    assert response.json()["status"] in ("processed", "failed")
    assert (await queries.ledger_row(db, "edge"))["status"] in ("processed", "failed")


# --- times from the future, and outside what both PostgreSQL and Python hold ---------------

FUTURE = "2999-01-01T00:00:00Z"
ADMIN = {"Authorization": "Bearer test-admin-token"}


async def test_a_time_from_the_future_is_refused_and_never_locks_the_row(
    client: httpx.AsyncClient, db: Database
) -> None:
    customer = shopify.customer(7, updated_at="2026-01-01T00:00:00Z", email="first@example.com")
    assert await shopify.deliver(client, "customers/create", customer) == "processed"
    order = shopify.order(70, customer_id=7, updated_at="2026-01-01T00:00:00Z")
    assert await shopify.deliver(client, "orders/create", order) == "processed"

    future = [
        ("customers/update", shopify.customer(7, updated_at=FUTURE, email="2999@example.com")),
        ("orders/updated", shopify.order(70, customer_id=7, updated_at=FUTURE)),
        ("orders/updated", shopify.order(70, customer_id=7, customer_updated_at=FUTURE)),
        (
            "customer.tags_added",
            {"customerId": "gid://shopify/Customer/7", "tags": ["x"], "occurredAt": FUTURE},
        ),
        (
            "customers_email_marketing_consent/update",
            {
                "customer_id": 7,
                "email_address": "first@example.com",
                "email_marketing_consent": {"state": "subscribed", "consent_updated_at": FUTURE},
            },
        ),
    ]
    for number, (topic, payload) in enumerate(future):
        webhook_id = f"future-{number}"
        assert await shopify.deliver(client, topic, payload, webhook_id=webhook_id) == "failed"
        assert "in the future" in (await queries.ledger_row(db, webhook_id))["last_error"]

    stored = await queries.customer(db, 7)
    assert stored is not None and stored["email"] == "first@example.com"
    assert stored["tags"] is None and stored["email_marketing_state"] is None
    # The next real change is applied, not taken for stale.
    later = shopify.customer(7, updated_at="2026-02-01T00:00:00Z", email="second@example.com")
    assert await shopify.deliver(client, "customers/update", later) == "processed"
    stored = await queries.customer(db, 7)
    assert stored is not None and stored["email"] == "second@example.com"


@pytest.mark.parametrize("when", OUT_OF_RANGE)
@pytest.mark.parametrize("field", ["created_at", "updated_at", "cancelled_at"])
async def test_a_payload_time_outside_years_1_to_9999_in_utc_is_refused(
    client: httpx.AsyncClient, db: Database, when: str, field: str
) -> None:
    payload = {**shopify.order(1, customer_id=2), field: when}
    assert await shopify.deliver(client, "orders/create", payload, webhook_id="edge") == "failed"
    assert "outside the years 1 to 9999" in (await queries.ledger_row(db, "edge"))["last_error"]
    assert await queries.order(db, 1) is None

    export = await client.get(f"/shops/{shopify.SHOP}/customers/2/export", headers=ADMIN)
    assert export.status_code in (200, 404), export.text


# --- money numeric(19,4) cannot hold exactly -------------------------------------------------


@pytest.mark.parametrize(
    "amount", ["-100.00", "-0.01", "0.00001", "10.12345", "1000000000000000"], ids=str
)
async def test_an_amount_numeric_19_4_cannot_hold_exactly_is_refused(
    client: httpx.AsyncClient, db: Database, amount: str
) -> None:
    payload = shopify.order(1, customer_id=2, total_price=amount)
    assert await shopify.deliver(client, "orders/create", payload, webhook_id="money") == "failed"
    assert "total_price" in (await queries.ledger_row(db, "money"))["last_error"]
    assert await queries.order(db, 1) is None
    summary = {
        "customerId": "gid://shopify/Customer/2",
        "numberOfOrders": 1,
        "amountSpent": {"amount": amount, "currencyCode": "USD"},
        "occurredAt": "2026-01-01T00:00:00Z",
    }
    topic = "customers/purchasing_summary"
    assert await shopify.deliver(client, topic, summary, webhook_id="summary") == "failed"


@pytest.mark.parametrize("amount", ["0", "-0.00", "10.1000", "999999999999999.9999"], ids=str)
async def test_an_amount_numeric_19_4_holds_is_stored_exactly(
    client: httpx.AsyncClient, db: Database, amount: str
) -> None:
    payload = shopify.order(1, customer_id=2, total_price=amount)
    assert await shopify.deliver(client, "orders/create", payload) == "processed"
    stored = await queries.order(db, 1)
    assert stored is not None and stored["total_price"] == Decimal(amount)
