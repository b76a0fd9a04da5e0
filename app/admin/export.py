"""Everything held about one customer, for answering customers/data_request."""

from __future__ import annotations

from app.admin.events import EVENT_COLUMNS, event_of
from app.admin.schemas import CustomerExport, ExportedCustomer, ExportedOrder, columns, from_row
from app.db.database import Connection
from app.webhooks.handlers.privacy import LEDGER_ABOUT_CUSTOMER

_CUSTOMER = (
    f"SELECT {columns(ExportedCustomer)} FROM customers WHERE shop_id = $1 AND shopify_id = $2"  # noqa: S608
)
_ORDERS = (
    f"SELECT {columns(ExportedOrder, raw_json=('line_items',))} FROM orders"  # noqa: S608
    " WHERE customer_id = $1 ORDER BY shopify_created_at, shopify_id"
)
_EVENTS = (
    f"SELECT {EVENT_COLUMNS}, payload::text AS payload FROM webhook_events"  # noqa: S608
    f" WHERE {LEDGER_ABOUT_CUSTOMER} ORDER BY received_at, id"
)


async def export_customer(
    connection: Connection, shop_id: str, shopify_id: str
) -> CustomerExport | None:
    """The customer row, their orders and the ledger entries about them (None: nothing held)."""
    customer = await connection.fetchrow(_CUSTOMER, shop_id, shopify_id)
    orders = []
    if customer is not None:
        orders = await connection.fetch(_ORDERS, customer["id"])
    order_ids = [order["shopify_id"] for order in orders]
    events = await connection.fetch(_EVENTS, shop_id, shopify_id, order_ids)
    if customer is None and not events:
        return None
    return CustomerExport(
        shop=shop_id,
        shopify_customer_id=shopify_id,
        customer=None if customer is None else from_row(ExportedCustomer, customer),
        orders=[from_row(ExportedOrder, order, raw_json=("line_items",)) for order in orders],
        events=[event_of(event) for event in events],
    )
