"""orders/create, updated, paid, cancelled, fulfilled, partially_fulfilled and orders/delete.

The writes are the SQL function ingest_deliveries (app/db/functions/), called
for a group of deliveries at once. It also recomputes the totals of the
customers whose orders changed, in the same transaction.
"""

from __future__ import annotations

from app.db.database import Database
from app.webhooks.grouping import DeliveryKind, GroupItem, apply_delivery
from app.webhooks.handlers.base import Handler
from app.webhooks.handlers.customers import with_customer
from app.webhooks.ledger import Recording
from app.webhooks.outcomes import Outcome
from app.webhooks.payloads import DeletedOrderPayload, OrderPayload

UPSERT_TOPICS = (
    "orders/create",
    "orders/updated",
    "orders/paid",
    "orders/cancelled",
    "orders/fulfilled",
    "orders/partially_fulfilled",
)

# Left out (with the payload scrubbed) when the order's customer was redacted.
_PERSONAL = ("email", "customer_email", "customer_name", "customer_phone", "customer_tags")


async def _upsert(database: Database, recording: Recording, order: OrderPayload) -> Outcome:
    item = GroupItem(
        kind=DeliveryKind.order,
        order_shopify_id=str(order.id),
        total_price=order.total_price,
        current_total_price=order.current_total_price,
        currency=order.currency,
        financial_status=order.financial_status,
        fulfillment_status=order.fulfillment_status,
        cancelled_at=order.cancelled_at,
        name=order.name,
        email=order.email,
        test=order.test,
        created_at=order.created_at,
        updated_at=order.updated_at,
    )
    item = with_customer(item, order.customer)
    return await apply_delivery(database, recording, item, personal=_PERSONAL)


async def _delete(database: Database, recording: Recording, order: DeletedOrderPayload) -> Outcome:
    item = GroupItem(kind=DeliveryKind.order_delete, order_shopify_id=str(order.id))
    return await apply_delivery(database, recording, item)


UPSERT = Handler(OrderPayload, _upsert)
DELETE = Handler(DeletedOrderPayload, _delete)
