"""orders/create, updated, paid, cancelled, fulfilled, partially_fulfilled and orders/delete.

After any change to a customer's orders, the customer's totals are recomputed
from the orders table. That recompute runs as its own statement just before
COMMIT, so it sees this transaction's order write; the customer's lock (held
since BEGIN) keeps other deliveries from changing that customer's orders
meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import asyncpg

from app.db.database import Locks, Transaction, uuid_list
from app.webhooks.handlers import privacy
from app.webhooks.handlers.base import (
    Handler,
    NeedsLocks,
    Outcome,
    customer_lock,
    delivery_locks,
    recorded_outcome,
)
from app.webhooks.handlers.customers import (
    CUSTOMER_REDACTED,
    UPSERT_CUSTOMER,
    customer_values,
    personal_values,
)
from app.webhooks.ledger import Recording
from app.webhooks.payloads import DeletedPayload, OrderPayload

UPSERT_TOPICS = (
    "orders/create",
    "orders/updated",
    "orders/paid",
    "orders/cancelled",
    "orders/fulfilled",
    "orders/partially_fulfilled",
)

# The order as stored before this delivery, with its customer.
_PREVIOUS = """
previous AS (
    SELECT o.customer_id, c.shopify_id AS customer_shopify_id
    FROM orders o LEFT JOIN customers c ON c.id = o.customer_id
    WHERE o.shop_id = :shop_id AND o.shopify_id = :order_shopify_id::varchar
)"""

_UPSERT_ORDER = """
placed AS (
    INSERT INTO orders AS o (shop_id, shopify_id, customer_id, total_price, current_total_price,
                             currency, financial_status, fulfillment_status, cancelled_at, name,
                             email, test, line_items, shopify_created_at, shopify_updated_at)
    SELECT :shop_id, :order_shopify_id::varchar,
           coalesce((SELECT id FROM customer),
                    (SELECT id FROM customers
                     WHERE shop_id = :shop_id AND shopify_id = :customer_shopify_id::varchar)),
           :total_price::numeric, :current_total_price::numeric, :currency::varchar,
           :financial_status::varchar, :fulfillment_status::varchar, :cancelled_at::timestamptz,
           :name::varchar, :email::varchar, :test::boolean, :line_items::jsonb,
           :created_at::timestamptz, :updated_at::timestamptz
    FROM recorded
    ON CONFLICT (shop_id, shopify_id) DO UPDATE SET
        customer_id = EXCLUDED.customer_id,
        total_price = EXCLUDED.total_price,
        current_total_price = EXCLUDED.current_total_price,
        currency = EXCLUDED.currency,
        financial_status = EXCLUDED.financial_status,
        fulfillment_status = EXCLUDED.fulfillment_status,
        cancelled_at = EXCLUDED.cancelled_at,
        name = EXCLUDED.name,
        email = EXCLUDED.email,
        test = EXCLUDED.test,
        line_items = EXCLUDED.line_items,
        shopify_created_at = EXCLUDED.shopify_created_at,
        shopify_updated_at = EXCLUDED.shopify_updated_at
    -- Only a payload at least as new as the stored order overwrites it; a
    -- deleted order (or the tombstone of a delete that came first) stays deleted.
    WHERE o.deleted_at IS NULL
      AND EXCLUDED.shopify_updated_at >= coalesce(o.shopify_updated_at, '-infinity')
    RETURNING customer_id
)"""

_UPSERT_SELECT = f"""
SELECT (SELECT id FROM recorded) AS ledger_id,
       EXISTS (SELECT FROM placed) AS applied,
       (SELECT customer_id FROM placed) AS customer_id,
       (SELECT customer_id FROM previous) AS previous_customer_id,
       (SELECT customer_shopify_id FROM previous) AS previous_customer_shopify_id,
       {CUSTOMER_REDACTED} AS redacted
"""  # noqa: S608 (fragments of static SQL, no input)

# A delete that arrives before the create leaves a tombstone row.
_DELETE_ORDER = """
removed AS (
    INSERT INTO orders AS o (shop_id, shopify_id, deleted_at)
    SELECT :shop_id, :order_shopify_id::varchar, now() FROM recorded
    ON CONFLICT (shop_id, shopify_id) DO UPDATE SET deleted_at = now()
    WHERE o.deleted_at IS NULL
    RETURNING id
)"""

_DELETE_SELECT = """
SELECT (SELECT id FROM recorded) AS ledger_id,
       EXISTS (SELECT FROM removed) AS applied,
       (SELECT customer_id FROM previous) AS previous_customer_id,
       (SELECT customer_shopify_id FROM previous) AS previous_customer_shopify_id
"""


def recompute_totals_sql(customer_ids: Iterable[UUID]) -> str:
    """Totals over each customer's orders that are neither deleted nor cancelled."""
    # uuid_list() formats only UUID objects: nothing here comes from input text.
    return f"""
UPDATE customers AS c
SET order_count = t.order_count,
    total_spent = t.total_spent,
    avg_order_value = round(t.total_spent / nullif(t.order_count, 0), 4),
    first_order_at = t.first_order_at,
    last_order_at = t.last_order_at
FROM (
    SELECT customer.id,
           count(o.id) AS order_count,
           coalesce(sum(coalesce(o.current_total_price, o.total_price)), 0) AS total_spent,
           min(o.shopify_created_at) AS first_order_at,
           max(o.shopify_created_at) AS last_order_at
    FROM customers AS customer
    LEFT JOIN orders AS o
      ON o.customer_id = customer.id AND o.deleted_at IS NULL AND o.cancelled_at IS NULL
    WHERE customer.id IN ({uuid_list(customer_ids)})
    GROUP BY customer.id
) AS t
WHERE c.id = t.id
"""  # noqa: S608


async def _recompute_totals(
    tx: Transaction, shop_id: str, row: asyncpg.Record, order: OrderPayload | None = None
) -> None:
    """Queue the totals of the order's customer, and of its previous customer if it moved."""
    customers = {row.get("customer_id"), row["previous_customer_id"]} - {None}
    if not customers:
        return
    moved_from = row["previous_customer_shopify_id"]
    if row["previous_customer_id"] is not None and row["previous_customer_id"] != row.get(
        "customer_id"
    ):
        # This delivery did not lock the order's previous customer (the payload
        # does not name it). Lock it now, before its totals are read.
        if row.get("customer_id") is None or order is None or order.customer is None:
            # No customer lock held (delete, or the order became a guest order):
            # waiting for this one cannot close a cycle.
            tx.run_before_commit(Locks(exclusive=[customer_lock(shop_id, moved_from)]).sql())
        elif not await tx.fetchval(
            "SELECT pg_try_advisory_xact_lock($1)", customer_lock(shop_id, moved_from)
        ):
            # Fix: the order moved between two customers and this delivery holds
            # the new customer's lock. Waiting here for the old one, outside the
            # global lock order, deadlocked with a move the other way (each
            # holding one customer, waiting for the other) until lock_timeout
            # answered 503. Take it only if free; otherwise run the delivery
            # again with both customers locked at BEGIN, in order.
            raise NeedsLocks(
                delivery_locks(
                    shop_id, orders=[order.id], customers=[order.customer.id, moved_from]
                )
            )
    tx.run_before_commit(recompute_totals_sql(customers))


def _order_locks(shop_id: str, order: OrderPayload) -> Locks:
    customers = [order.customer.id] if order.customer else []
    return delivery_locks(shop_id, orders=[order.id], customers=customers)


def _delete_locks(shop_id: str, order: DeletedPayload) -> Locks:
    return delivery_locks(shop_id, orders=[order.id])


async def _upsert(tx: Transaction, recording: Recording, order: OrderPayload) -> Outcome:
    statement = recording.statement(_UPSERT_SELECT, UPSERT_CUSTOMER, _PREVIOUS, _UPSERT_ORDER)
    args = recording.args(
        statement,
        **customer_values(order.customer),
        order_shopify_id=str(order.id),
        total_price=order.total_price,
        current_total_price=order.current_total_price,
        currency=order.currency,
        financial_status=order.financial_status.value if order.financial_status else None,
        fulfillment_status=order.fulfillment_status,
        cancelled_at=order.cancelled_at,
        name=order.name,
        email=order.email,
        test=order.test,
        line_items=order.line_items_json,
        created_at=order.created_at,
        updated_at=order.updated_at,
    )
    row = await tx.fetchrow(statement.text, *args)
    outcome = recorded_outcome(row)
    if row is None or outcome is Outcome.duplicate:
        return outcome
    if row["applied"]:
        await _recompute_totals(tx, recording.shop_id, row, order)
    if row["redacted"]:
        # A late delivery about a customer who has since been redacted.
        # Fix: the payload's own email, phone and name are known values, so free
        # text repeating them (the order `note`) is scrubbed too, as
        # customers/redact does; personal fields alone left it in the ledger.
        known = [value for value in [order.email, *personal_values(order.customer)] if value]
        await privacy.scrub_ledger_rows(tx, recording.shop_id, [row["ledger_id"]], known)
        await privacy.erase_order_emails(tx, recording.shop_id, [order.id])
    return outcome


async def _delete(tx: Transaction, recording: Recording, order: DeletedPayload) -> Outcome:
    statement = recording.statement(_DELETE_SELECT, _PREVIOUS, _DELETE_ORDER)
    row = await tx.fetchrow(
        statement.text, *recording.args(statement, order_shopify_id=str(order.id))
    )
    outcome = recorded_outcome(row)
    if row is not None and outcome is Outcome.processed:
        await _recompute_totals(tx, recording.shop_id, row)
    return outcome


UPSERT = Handler(OrderPayload, _order_locks, _upsert)
DELETE = Handler(DeletedPayload, _delete_locks, _delete)
