"""Everything held about one customer, for answering customers/data_request."""

from __future__ import annotations

from typing import Any

from app.admin.events import event_document, raw_json
from app.db.database import Connection
from app.webhooks.handlers.privacy import LEDGER_ABOUT_CUSTOMER


async def export_customer(
    connection: Connection, shop_id: str, shopify_id: str
) -> dict[str, Any] | None:
    """The customer row, their orders and the ledger entries about them (None: nothing held)."""
    customer = await connection.fetchrow(
        "SELECT * FROM customers WHERE shop_id = $1 AND shopify_id = $2", shop_id, shopify_id
    )
    orders = []
    if customer is not None:
        orders = await connection.fetch(
            "SELECT * FROM orders WHERE customer_id = $1 ORDER BY shopify_created_at, shopify_id",
            customer["id"],
        )
    order_ids = [order["shopify_id"] for order in orders]
    columns = "id, webhook_id, event_id, topic, api_version, triggered_at, received_at, status"
    events = await connection.fetch(
        f"SELECT {columns}, payload::text AS payload FROM webhook_events"  # noqa: S608
        f" WHERE {LEDGER_ABOUT_CUSTOMER} ORDER BY received_at, id",
        shop_id,
        shopify_id,
        order_ids,
    )
    if customer is None and not events:
        return None
    return {
        "shop": shop_id,
        "shopify_customer_id": shopify_id,
        "customer": _plain(customer),
        "orders": [_plain(order) for order in orders],
        "events": [event_document(event) for event in events],
    }


def _plain(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    document = dict(row)
    if "line_items" in document:
        document["line_items"] = raw_json(document["line_items"])
    return document
