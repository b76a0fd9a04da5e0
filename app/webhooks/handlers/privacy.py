"""The mandatory privacy topics: customers/redact, customers/data_request, shop/redact.

Redaction erases a customer's personal data everywhere this service keeps it:
the customer row, the email on their orders, and every ledger payload about
them or those orders (the redact delivery's own payload is stored scrubbed).
Totals survive. Later deliveries about a redacted customer are stored
scrubbed too (see base.call_delivery_function).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.db.database import Transaction
from app.webhooks.handlers.base import Handler, Outcome, in_transaction
from app.webhooks.ledger import Recording, lock, record
from app.webhooks.payloads import (
    CustomersDataRequestPayload,
    CustomersRedactPayload,
    ShopRedactPayload,
)
from app.webhooks.scrub import scrub_text

# Redaction and shop erasure may touch much of a shop's data; they get more
# time than a delivery (Shopify retries them if its 5 s pass first: the retry
# then finds them done). Below the server's 25 s shutdown grace.
PRIVACY_STATEMENT_TIMEOUT = 20.0

# Ledger rows about a customer ($2) or their orders ($3) in a shop ($1):
# customers/* and orders/* carry the subject's id at the top; orders and the
# privacy topics nest the customer. Both expressions are indexed (see migrations).
LEDGER_ABOUT_CUSTOMER = """
shop_id = $1 AND (
    (payload -> 'customer' ->> 'id') = $2
    OR ((payload ->> 'id') = $2 AND topic LIKE 'customers/%')
    OR ((payload ->> 'id') = ANY($3::text[]) AND topic LIKE 'orders/%')
)"""

# Rows of shapes this service does not know (topics without a handler, or
# payloads that failed) are not found by id: fulfillments/create names the
# order as `order_id`, with the customer's email and address. Those that
# mention the customer's email or phone ($4, lower case) are scrubbed too.
# Only ignored and failed rows are searched this way: reading every payload of
# a big shop would not fit in the delivery's time.
_LEDGER_TO_SCRUB = f"""
SELECT id, payload::text AS payload FROM webhook_events
WHERE payload IS NOT NULL AND ({LEDGER_ABOUT_CUSTOMER}
   OR (shop_id = $1 AND status IN ('ignored', 'failed')
       AND EXISTS (SELECT FROM unnest($4::text[]) AS v WHERE strpos(lower(payload::text), v) > 0)))
"""  # noqa: S608 (a static fragment, no input)

_ERASE_CUSTOMER = """
INSERT INTO customers AS c (shop_id, shopify_id, redacted_at, order_count, total_spent)
VALUES ($1, $2, now(), 0, 0)
ON CONFLICT (shop_id, shopify_id) DO UPDATE
SET email = NULL, name = NULL, phone = NULL, tags = NULL,
    redacted_at = coalesce(c.redacted_at, now())
RETURNING id
"""

_ERASE_ORDER_EMAILS = """
UPDATE orders SET email = NULL
WHERE shop_id = $1 AND (shopify_id = ANY($2::varchar[]) OR customer_id = $3)
RETURNING shopify_id
"""

_STORE_SCRUBBED = """
UPDATE webhook_events AS e SET payload = s.payload
FROM unnest($1::uuid[], $2::jsonb[]) AS s(id, payload) WHERE e.id = s.id
"""


def _redact_ledger_payload(payload: CustomersRedactPayload, text: str) -> str:
    return scrub_text(text, [payload.customer.email or "", payload.customer.phone or ""])


async def _redact_customer(
    tx: Transaction, recording: Recording, payload: CustomersRedactPayload
) -> Outcome:
    shop, customer_id = recording.shop, str(payload.customer.id)
    orders_to_redact = [str(order_id) for order_id in payload.orders_to_redact]
    await lock(tx, shop, orders=orders_to_redact, customers=[customer_id])
    if await record(tx, recording) is None:
        return Outcome.duplicate
    stored = await tx.fetchrow(
        "SELECT email, name, phone FROM customers WHERE shop_id = $1 AND shopify_id = $2",
        shop,
        customer_id,
    )
    # Email and phone identify the customer in any payload; a name does not.
    identifiers = {payload.customer.email, payload.customer.phone}
    if stored is not None:
        identifiers |= {stored["email"], stored["phone"]}
    known = identifiers | ({stored["name"]} if stored is not None else set())
    customer_uuid = await tx.fetchval(_ERASE_CUSTOMER, shop, customer_id)
    erased = await tx.fetch(_ERASE_ORDER_EMAILS, shop, orders_to_redact, customer_uuid)
    orders = sorted({row["shopify_id"] for row in erased} | set(orders_to_redact))
    lowered = sorted({value.lower() for value in identifiers if value})
    rows = await tx.fetch(_LEDGER_TO_SCRUB, shop, customer_id, orders, lowered)
    await _store_scrubbed(tx, rows, [value for value in known if value])
    await _remember_shopify_shop_id(tx, shop, payload.shop_id)
    return Outcome.processed


async def _store_scrubbed(tx: Transaction, rows: Sequence[Any], known: list[str]) -> None:
    if rows:
        scrubbed = [scrub_text(row["payload"], known) for row in rows]
        await tx.execute(_STORE_SCRUBBED, [row["id"] for row in rows], scrubbed)


async def _data_request(
    tx: Transaction, recording: Recording, payload: CustomersDataRequestPayload
) -> Outcome:
    # Recorded for the merchant; the export endpoint answers it.
    await lock(tx, recording.shop)
    if await record(tx, recording) is None:
        return Outcome.duplicate
    await _remember_shopify_shop_id(tx, recording.shop, payload.shop_id)
    return Outcome.processed


# Children before parents; the redact's own ledger row stays (it holds no personal data).
_ERASE_SHOP = (
    "DELETE FROM message_logs WHERE shop_id = $1",
    "DELETE FROM automations WHERE shop_id = $1",
    "DELETE FROM orders WHERE shop_id = $1",
    "DELETE FROM customers WHERE shop_id = $1",
)


async def _redact_shop(
    tx: Transaction, recording: Recording, payload: ShopRedactPayload
) -> Outcome:
    # The whole shop, exclusively: waits for its deliveries in flight, holds off new ones.
    await lock(tx, recording.shop, whole_shop=True)
    ledger_id = await record(tx, recording)
    if ledger_id is None:
        return Outcome.duplicate
    for statement in _ERASE_SHOP:
        await tx.execute(statement, recording.shop)
    await tx.execute(
        "DELETE FROM webhook_events WHERE shop_id = $1 AND id <> $2", recording.shop, ledger_id
    )
    await tx.execute("UPDATE shops SET redacted_at = now() WHERE shop_id = $1", recording.shop)
    await _remember_shopify_shop_id(tx, recording.shop, payload.shop_id)
    return Outcome.processed


async def _remember_shopify_shop_id(
    tx: Transaction, shop: str, shopify_shop_id: int | None
) -> None:
    if shopify_shop_id is not None:
        await tx.execute(
            "UPDATE shops SET shopify_shop_id = $2 WHERE shop_id = $1"
            " AND shopify_shop_id IS DISTINCT FROM $2",
            shop,
            str(shopify_shop_id),
        )


CUSTOMERS_REDACT = Handler(
    CustomersRedactPayload,
    in_transaction(_redact_customer, PRIVACY_STATEMENT_TIMEOUT),
    ledger_payload=_redact_ledger_payload,
)
DATA_REQUEST = Handler(CustomersDataRequestPayload, in_transaction(_data_request))
SHOP_REDACT = Handler(ShopRedactPayload, in_transaction(_redact_shop, PRIVACY_STATEMENT_TIMEOUT))
