"""Headers are not signed: destructive and account topics are checked against their body.

Shopify's HMAC covers the body only. A body signed with the app's secret (an
order of one shop, a redact of another) re-sent with another topic or
another shop's domain in the headers must change nothing: it is recorded as
`failed` with the reason, and answered 200 (a retry cannot fix it).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.db.database import Database
from tests.support import queries, shopify

VICTIM = shopify.OTHER_SHOP
VICTIM_ID = 548380009  # the numeric id app/uninstalled taught the service
VICTIM_CUSTOMER = 8_100_001


async def seed_victim(client: httpx.AsyncClient) -> None:
    for order_id in (8_200_001, 8_200_002):
        payload = shopify.order(order_id, customer_id=VICTIM_CUSTOMER, email="v@example.com")
        assert await shopify.deliver(client, "orders/create", payload, shop=VICTIM) == "processed"


async def victim_state(db: Database) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for table in ("customers", "orders", "shops"):
        rows[table] = await queries.fetch(
            db, f"SELECT * FROM {table} WHERE shop_id = $1 ORDER BY id", VICTIM
        )
    rows["ledger"] = await queries.fetch(
        db,
        "SELECT id, status, payload::text AS payload FROM webhook_events"
        " WHERE shop_id = $1 AND status <> 'failed' ORDER BY id",
        VICTIM,
    )
    return rows


def uninstalled(domain: str | None = None, shop_id: int = VICTIM_ID) -> dict[str, Any]:
    payload = shopify.fixture("app_uninstalled")
    payload.update(id=shop_id, myshopify_domain=domain)
    return payload


# (topic the attacker claims, signed body of something else, what the reason must mention)
FORGERIES = [
    ("shop/redact", shopify.order(8_300_001, customer_id=8_300_002), ""),
    ("customers/redact", shopify.order(8_300_003, customer_id=VICTIM_CUSTOMER), ""),
    ("app/uninstalled", shopify.order(8_300_004), "myshopify_domain"),
    ("customers/data_request", shopify.order(8_300_005), ""),
    # Privacy bodies of the sender's own shop, addressed to the victim.
    ("shop/redact", shopify.shop_redact(shopify.SHOP), shopify.SHOP),
    (
        "customers/redact",
        shopify.customers_redact(VICTIM_CUSTOMER, shop=shopify.SHOP),
        shopify.SHOP,
    ),
    ("customers/data_request", shopify.data_request(VICTIM_CUSTOMER), shopify.SHOP),
    ("app/uninstalled", uninstalled(shopify.SHOP), shopify.SHOP),
    # The victim's own bodies, as another privacy topic.
    (
        "shop/redact",
        shopify.customers_redact(VICTIM_CUSTOMER, shop=VICTIM),
        "customer",
    ),
    ("customers/redact", shopify.data_request(VICTIM_CUSTOMER, shop=VICTIM), "orders_requested"),
    # The right domain, another shop's numeric id.
    ("shop/redact", {**shopify.shop_redact(VICTIM), "shop_id": 954889}, "known id"),
    ("app/uninstalled", uninstalled(VICTIM, shop_id=1234), "known id"),
    (
        "customers/redact",
        {**shopify.customers_redact(VICTIM_CUSTOMER, shop=VICTIM), "shop_id": 77},
        "known id",
    ),
]


@pytest.mark.parametrize(("topic", "body", "reason"), FORGERIES)
async def test_forged_destructive_deliveries_change_nothing(
    client: httpx.AsyncClient, db: Database, topic: str, body: dict[str, Any], reason: str
) -> None:
    await seed_victim(client)
    # The victim's numeric id is known (its own app/uninstalled; it keeps its data).
    assert await shopify.deliver(client, "app/uninstalled", uninstalled(VICTIM), shop=VICTIM) == (
        "processed"
    )
    before = await victim_state(db)

    response = await shopify.post(client, topic, body, shop=VICTIM, webhook_id="forged")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "failed", "webhook_id": "forged"}
    assert await victim_state(db) == before
    row = await queries.ledger_row(db, "forged", shop=VICTIM)
    assert row["status"] == "failed"
    assert reason in row["last_error"], row["last_error"]


@pytest.mark.parametrize(
    ("topic", "body"),
    [
        ("customers/create", shopify.order(8_400_001, customer_id=8_400_002)),
        ("customers/update", shopify.order(8_400_003)),
        ("orders/create", shopify.customer(8_400_004)),
        ("orders/updated", shopify.customer(8_400_005)),
        ("customers/delete", shopify.fixture("orders_create")),
        ("orders/delete", shopify.customer_deleted(8_400_006)),
    ],
)
async def test_a_body_of_another_resource_is_failed(
    client: httpx.AsyncClient, db: Database, topic: str, body: dict[str, Any]
) -> None:
    response = await shopify.post(client, topic, body, webhook_id="other")
    assert response.json() == {"status": "failed", "webhook_id": "other"}
    row = await queries.ledger_row(db, "other")
    assert "admin_graphql_api_id" in row["last_error"]
    counts = await queries.counts(db)
    assert (counts["customers"], counts["orders"]) == (0, 0)


async def test_genuine_deliveries_still_apply(client: httpx.AsyncClient, db: Database) -> None:
    await seed_victim(client)
    # Shopify's sample app/uninstalled has myshopify_domain null: accepted.
    assert await shopify.deliver(client, "app/uninstalled", uninstalled(None), shop=VICTIM) == (
        "processed"
    )
    # The numeric id is now known; the same id with the right domain passes.
    redact = shopify.customers_redact(VICTIM_CUSTOMER, shop=VICTIM)
    redact["shop_id"] = VICTIM_ID
    assert await shopify.deliver(client, "customers/redact", redact, shop=VICTIM) == "processed"
    # Domains are compared case-insensitively.
    shop_redact = {"shop_id": VICTIM_ID, "shop_domain": VICTIM.upper()}
    assert await shopify.deliver(client, "shop/redact", shop_redact, shop=VICTIM) == "processed"
    assert await queries.fetchval(db, "SELECT count(*) FROM orders WHERE shop_id = $1", VICTIM) == 0


async def test_a_future_triggered_at_does_not_date_the_uninstall(
    client: httpx.AsyncClient, db: Database
) -> None:
    before = await queries.fetchval(db, "SELECT now()")
    status = await shopify.deliver(
        client,
        "app/uninstalled",
        uninstalled(VICTIM),
        shop=VICTIM,
        triggered_at="2999-01-01T00:00:00Z",
    )
    assert status == "processed"
    shop = await queries.shop(db, VICTIM)
    assert shop is not None
    assert before <= shop["uninstalled_at"] <= await queries.fetchval(db, "SELECT now()")
