"""Everything held about one customer, for answering customers/data_request."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

import msgspec

from app.db.database import Connection
from app.db.rows import columns, from_row
from app.webhooks.privacy.handlers import LEDGER_ABOUT_CUSTOMER
from app.webhooks.recorded import EVENT_COLUMNS, Event, event_of


class ExportedCustomer(msgspec.Struct):
    """Every column held about a customer."""

    id: UUID
    shop_id: str
    shopify_id: str
    created_at: datetime | None
    name: str | None
    email: str | None
    phone: str | None
    rfm_r: int | None
    rfm_f: int | None
    rfm_m: int | None
    segment: str | None
    lifecycle_stage: str | None
    tags: list[str] | None
    total_spent: Decimal | None
    order_count: int | None
    avg_order_value: Decimal | None
    first_order_at: datetime | None
    last_order_at: datetime | None
    shopify_created_at: datetime | None
    shopify_updated_at: datetime | None
    deleted_at: datetime | None
    redacted_at: datetime | None
    email_marketing_state: str | None
    email_marketing_opt_in_level: str | None
    email_marketing_consent_updated_at: datetime | None
    sms_marketing_state: str | None
    sms_marketing_opt_in_level: str | None
    sms_marketing_consent_updated_at: datetime | None
    shopify_order_count: int | None
    shopify_amount_spent: Decimal | None
    shopify_summary_at: datetime | None
    merged_into: str | None
    merged_at: datetime | None


class ExportedOrder(msgspec.Struct):
    """Every column held about an order."""

    id: UUID
    shop_id: str
    shopify_id: str
    created_at: datetime | None
    customer_id: UUID | None
    total_price: Decimal | None
    line_items: msgspec.Raw | None
    financial_status: str | None
    name: str | None
    email: str | None
    currency: str | None
    current_total_price: Decimal | None
    fulfillment_status: str | None
    test: bool | None
    cancelled_at: datetime | None
    shopify_created_at: datetime | None
    shopify_updated_at: datetime | None
    deleted_at: datetime | None


class CustomerExport(msgspec.Struct):
    """Everything held about one customer: the answer to a customers/data_request."""

    shop: str
    shopify_customer_id: str
    customer: ExportedCustomer | None
    orders: list[ExportedOrder]
    events: list[Event]


_CUSTOMER = (
    f"SELECT {columns(ExportedCustomer)} FROM customers WHERE shop_id = $1 AND shopify_id = $2"  # noqa: S608
)
_ORDERS = (
    f"SELECT {columns(ExportedOrder, raw_json=('line_items',))} FROM orders"  # noqa: S608
    " WHERE shop_id = $1 AND customer_id = $2 ORDER BY shopify_created_at, shopify_id"
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
        orders = await connection.fetch(_ORDERS, shop_id, customer["id"])
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
