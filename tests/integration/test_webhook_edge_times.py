"""Times at the edges of the calendar, in the signed headers and in payloads.

0001-01-01T00:00:00+14:00 is before year 1 in UTC, 9999-12-31T23:59:59-14:00
after 9999: Python's datetime cannot convert either to UTC, so they used to
fail in the database call (500, nothing recorded). A header gets 400 naming
it; a payload time is recorded as `failed` (or stored when it is in range).
"""

from __future__ import annotations

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
