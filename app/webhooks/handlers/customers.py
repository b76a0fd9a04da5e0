"""customers/create, update, enable, disable and customers/delete.

The writes are the SQL function ingest_deliveries (app/db/functions/), called
for a group of deliveries at once.
"""

from __future__ import annotations

import msgspec

from app.db.database import Database
from app.webhooks.grouping import DeliveryKind, GroupItem, apply_delivery
from app.webhooks.handlers.base import Handler
from app.webhooks.ledger import Recording
from app.webhooks.outcomes import Outcome
from app.webhooks.payloads import CustomerPayload, DeletedCustomerPayload

UPSERT_TOPICS = ("customers/create", "customers/update", "customers/enable", "customers/disable")

# Left out (with the payload scrubbed) when the customer was redacted.
_PERSONAL = ("customer_email", "customer_name", "customer_phone", "customer_tags")


def with_customer(item: GroupItem, customer: CustomerPayload | None) -> GroupItem:
    """The item with the customer's fields (none for an order without a customer)."""
    if customer is None:
        return item
    tags = customer.tag_list
    return msgspec.structs.replace(
        item,
        customer_shopify_id=str(customer.id),
        customer_email=customer.email,
        customer_name=customer.name,
        customer_phone=customer.phone,
        customer_tags=tags,
        customer_has_tags=tags is not None,
        customer_created_at=customer.created_at,
        customer_updated_at=customer.updated_at,
    )


async def _upsert(database: Database, recording: Recording, customer: CustomerPayload) -> Outcome:
    item = with_customer(GroupItem(kind=DeliveryKind.customer), customer)
    return await apply_delivery(database, recording, item, personal=_PERSONAL)


async def _delete(
    database: Database, recording: Recording, customer: DeletedCustomerPayload
) -> Outcome:
    item = GroupItem(kind=DeliveryKind.customer_delete, customer_shopify_id=str(customer.id))
    return await apply_delivery(database, recording, item)


UPSERT = Handler(CustomerPayload, _upsert)
DELETE = Handler(DeletedCustomerPayload, _delete)
