"""The README's sample delivery: a paid order that counts for its customer.

"See it work" sends tests/fixtures/orders_paid.json as orders/paid and shows
the customer with order_count 1 through a query; this runs that query on what
the delivery stored. Shopify's original sample (orders_create.json) is a
cancelled test order, which the totals leave out.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import httpx

from app.db.database import Database
from tests.support import queries, shopify

README = Path(__file__).resolve().parents[2] / "README.md"
SAMPLE_CUSTOMER = 115310627314723954


def readme_query() -> str:
    """The SQL the README runs with psql after the sample delivery."""
    section = README.read_text().split("## See it work", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"-c '(?P<sql>SELECT [^']+)'", section)
    assert match is not None, "the README's See it work section has no psql query"
    return match.group("sql")


async def test_the_paid_sample_counts_one_order(client: httpx.AsyncClient, db: Database) -> None:
    body = shopify.fixture_bytes("orders_paid")
    status = await shopify.deliver(client, "orders/paid", body, webhook_id="readme-1")
    assert status == "processed"

    rows = await queries.fetch(db, readme_query())
    assert rows == [
        {
            "shop_id": shopify.SHOP,
            "email": "john@example.com",
            "order_count": 1,
            "total_spent": Decimal("414.95"),
        }
    ]
    assert await shopify.deliver(client, "orders/paid", body, webhook_id="readme-1") == "duplicate"


async def test_the_original_sample_is_a_cancelled_test_order(
    client: httpx.AsyncClient, db: Database
) -> None:
    status = await shopify.deliver(client, "orders/create", shopify.fixture_bytes("orders_create"))
    assert status == "processed"

    customer = await queries.customer(db, SAMPLE_CUSTOMER)
    assert customer is not None
    assert customer["order_count"] == 0
