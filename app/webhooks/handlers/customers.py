"""customers/create, update, enable, disable and customers/delete.

The writes are SQL functions (migrations "SQL functions that apply
deliveries" and "ingest_deliveries"), called for a group of deliveries at
once.
"""

from __future__ import annotations

from typing import Any

from app.db.database import Database
from app.webhooks.grouping import DeliveryKind, apply_delivery
from app.webhooks.handlers.base import Handler
from app.webhooks.ledger import Recording
from app.webhooks.outcomes import Outcome
from app.webhooks.payloads import CustomerPayload, DeletedCustomerPayload

UPSERT_TOPICS = ("customers/create", "customers/update", "customers/enable", "customers/disable")

# Left out (with the payload scrubbed) when the customer was redacted.
_PERSONAL = ("customer_email", "customer_name", "customer_phone", "customer_tags")


def customer_values(customer: CustomerPayload | None) -> dict[str, Any]:
    """A customer payload as delivery arguments (all None for an order without a customer)."""
    tags = customer.tag_list if customer else None
    return {
        "customer_shopify_id": str(customer.id) if customer else None,
        "customer_email": customer.email if customer else None,
        "customer_name": customer.name if customer else None,
        "customer_phone": customer.phone if customer else None,
        "customer_tags": tags,
        "customer_has_tags": tags is not None,
        "customer_created_at": customer.created_at if customer else None,
        "customer_updated_at": customer.updated_at if customer else None,
    }


async def _upsert(database: Database, recording: Recording, customer: CustomerPayload) -> Outcome:
    values = customer_values(customer)
    return await apply_delivery(
        database, DeliveryKind.customer, recording, values, personal=_PERSONAL
    )


async def _delete(
    database: Database, recording: Recording, customer: DeletedCustomerPayload
) -> Outcome:
    values = {"customer_shopify_id": str(customer.id)}
    return await apply_delivery(database, DeliveryKind.customer_delete, recording, values)


UPSERT = Handler(CustomerPayload, _upsert)
DELETE = Handler(DeletedCustomerPayload, _delete)
