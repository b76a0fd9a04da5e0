"""customers/create, update, enable, disable and customers/delete.

The writes are SQL functions (migration "SQL functions that apply
deliveries"): ingest_customer_delivery and ingest_customer_delete.
"""

from __future__ import annotations

from typing import Any

from app.db.database import Database
from app.db.sql import SqlFunction
from app.webhooks.handlers.base import (
    Handler,
    call_delivery_function,
)
from app.webhooks.ledger import LEDGER_PARAMETERS, Recording
from app.webhooks.outcomes import Outcome
from app.webhooks.payloads import CustomerPayload, DeletedCustomerPayload

UPSERT_TOPICS = ("customers/create", "customers/update", "customers/enable", "customers/disable")

_UPSERT = SqlFunction(
    "ingest_customer_delivery",
    (
        "lock_timeout_ms",
        *LEDGER_PARAMETERS,
        "scrubbed",
        "customer_shopify_id",
        "email",
        "name",
        "phone",
        "tags",
        "has_tags",
        "created_at",
        "updated_at",
    ),
)
_DELETE = SqlFunction(
    "ingest_customer_delete", ("lock_timeout_ms", *LEDGER_PARAMETERS, "customer_shopify_id")
)


def customer_values(customer: CustomerPayload | None, prefix: str = "") -> dict[str, Any]:
    """A customer payload as delivery function arguments (all None for a guest order)."""
    tags = customer.tag_list if customer else None
    values = {
        "email": customer.email if customer else None,
        "name": customer.name if customer else None,
        "phone": customer.phone if customer else None,
        "tags": tags,
        "has_tags": tags is not None,
        "created_at": customer.created_at if customer else None,
        "updated_at": customer.updated_at if customer else None,
    }
    return {
        "customer_shopify_id": str(customer.id) if customer else None,
        **{prefix + name: value for name, value in values.items()},
    }


async def _upsert(database: Database, recording: Recording, customer: CustomerPayload) -> Outcome:
    values = customer_values(customer)
    return await call_delivery_function(
        database, _UPSERT, recording, values, personal=("email", "name", "phone", "tags")
    )


async def _delete(
    database: Database, recording: Recording, customer: DeletedCustomerPayload
) -> Outcome:
    values = {"customer_shopify_id": str(customer.id)}
    return await call_delivery_function(database, _DELETE, recording, values)


UPSERT = Handler(CustomerPayload, _upsert)
DELETE = Handler(DeletedCustomerPayload, _delete)
