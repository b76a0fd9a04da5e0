"""customers/create, update, enable, disable and customers/delete."""

from __future__ import annotations

from typing import Any

from app.db.database import Locks, Transaction
from app.webhooks.handlers import privacy
from app.webhooks.handlers.base import Handler, Outcome, delivery_locks, recorded_outcome
from app.webhooks.ledger import Recording
from app.webhooks.payloads import CustomerPayload, DeletedPayload

UPSERT_TOPICS = ("customers/create", "customers/update", "customers/enable", "customers/disable")

# Upserts the customer named by the :customer_* parameters (none when
# :customer_shopify_id is NULL, as for a guest order). Also used for the
# customer nested in an order. New rows start with zero totals.
UPSERT_CUSTOMER = """
customer AS (
    INSERT INTO customers AS c (shop_id, shopify_id, email, name, phone, tags,
                                shopify_created_at, shopify_updated_at, order_count, total_spent)
    SELECT :shop_id, :customer_shopify_id::varchar, :customer_email::varchar,
           :customer_name::varchar, :customer_phone::varchar, :customer_tags::text[],
           :customer_created_at::timestamptz, :customer_updated_at::timestamptz, 0, 0
    FROM recorded
    WHERE :customer_shopify_id::varchar IS NOT NULL
    ON CONFLICT (shop_id, shopify_id) DO UPDATE SET
        email = EXCLUDED.email,
        name = EXCLUDED.name,
        phone = EXCLUDED.phone,
        tags = CASE WHEN :customer_has_tags::boolean THEN EXCLUDED.tags ELSE c.tags END,
        shopify_created_at = coalesce(EXCLUDED.shopify_created_at, c.shopify_created_at),
        shopify_updated_at = EXCLUDED.shopify_updated_at
    -- Deliveries arrive out of order: only a payload at least as new as the
    -- stored row overwrites it (one without updated_at never does). Deleted
    -- and redacted customers stay as they are.
    WHERE c.deleted_at IS NULL
      AND c.redacted_at IS NULL
      AND EXCLUDED.shopify_updated_at >= coalesce(c.shopify_updated_at, '-infinity')
    RETURNING id
)"""

# Whether the :customer_shopify_id customer was redacted before this statement.
CUSTOMER_REDACTED = """EXISTS (
    SELECT FROM customers
    WHERE shop_id = :shop_id AND shopify_id = :customer_shopify_id::varchar
      AND redacted_at IS NOT NULL
)"""

_UPSERT_SELECT = f"""
SELECT (SELECT id FROM recorded) AS ledger_id,
       EXISTS (SELECT FROM customer) AS applied,
       {CUSTOMER_REDACTED} AS redacted
"""  # noqa: S608 (fragments of static SQL, no input)

# A delete that arrives before the create leaves a tombstone, so the late
# create cannot bring the customer back.
_DELETE_CUSTOMER = """
removed AS (
    INSERT INTO customers AS c (shop_id, shopify_id, deleted_at, order_count, total_spent)
    SELECT :shop_id, :customer_shopify_id::varchar, now(), 0, 0 FROM recorded
    ON CONFLICT (shop_id, shopify_id) DO UPDATE SET deleted_at = now()
    WHERE c.deleted_at IS NULL
    RETURNING id
)"""

_DELETE_SELECT = """
SELECT (SELECT id FROM recorded) AS ledger_id, EXISTS (SELECT FROM removed) AS applied
"""


def customer_values(customer: CustomerPayload | None) -> dict[str, Any]:
    """The :customer_* parameters of UPSERT_CUSTOMER."""
    if customer is None:
        return dict.fromkeys(_CUSTOMER_PARAMETERS) | {"customer_has_tags": False}
    tags = customer.tag_list
    return {
        "customer_shopify_id": str(customer.id),
        "customer_email": customer.email,
        "customer_name": customer.name,
        "customer_phone": customer.phone,
        "customer_tags": tags,
        "customer_has_tags": tags is not None,
        "customer_created_at": customer.created_at,
        "customer_updated_at": customer.updated_at,
    }


def personal_values(customer: CustomerPayload | None) -> list[str]:
    """The customer's email, phone and name as a payload carries them (for scrubbing)."""
    if customer is None:
        return []
    return [value for value in (customer.email, customer.phone, customer.name) if value]


_CUSTOMER_PARAMETERS = (
    "customer_shopify_id",
    "customer_email",
    "customer_name",
    "customer_phone",
    "customer_tags",
    "customer_created_at",
    "customer_updated_at",
)


def _customer_locks(shop_id: str, customer: CustomerPayload | DeletedPayload) -> Locks:
    return delivery_locks(shop_id, customers=[customer.id])


async def _upsert(tx: Transaction, recording: Recording, customer: CustomerPayload) -> Outcome:
    statement = recording.statement(_UPSERT_SELECT, UPSERT_CUSTOMER)
    row = await tx.fetchrow(statement.text, *recording.args(statement, **customer_values(customer)))
    outcome = recorded_outcome(row)
    if row is not None and row["redacted"] and outcome is not Outcome.duplicate:
        # Fix: pass the payload's own email, phone and name as known values, so
        # free text repeating them (a `note`) is scrubbed as customers/redact
        # scrubs it; personal fields alone left it in the ledger.
        await privacy.scrub_ledger_rows(
            tx, recording.shop_id, [row["ledger_id"]], personal_values(customer)
        )
    return outcome


async def _delete(tx: Transaction, recording: Recording, customer: DeletedPayload) -> Outcome:
    statement = recording.statement(_DELETE_SELECT, _DELETE_CUSTOMER)
    args = recording.args(statement, customer_shopify_id=str(customer.id))
    row = await tx.fetchrow(statement.text, *args)
    return recorded_outcome(row)


UPSERT = Handler(CustomerPayload, _customer_locks, _upsert)
DELETE = Handler(DeletedPayload, _customer_locks, _delete)
