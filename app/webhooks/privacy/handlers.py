"""The mandatory privacy topics: customers/redact, customers/data_request, shop/redact.

Redaction erases a customer's personal data everywhere this service keeps it:
the customer row, their tag history, the email and the line items' personal
fields on their orders, the sync's staged lines about them, and every ledger
payload about them or those orders, or holding one of their emails or phones
(the redact delivery's own payload is stored scrubbed).
Totals survive. Later deliveries about a redacted customer are stored
scrubbed too (see base.apply_delivery). shop/redact deletes every row
of the shop but the redact's own ledger row.

Both redacts work at any size (app/webhooks/privacy/erasure.py): one short
transaction records the redact (ledger status `erasing`), erases the customer
row or marks the shop, and writes the erasure to do; batches then finish it,
inline while time allows, otherwise in the background.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

from app.db.database import Database, Transaction
from app.db.enums import DeliveryStatus
from app.webhooks.handlers.base import Handler, check_shop, in_transaction
from app.webhooks.ledger import Recording, lock, record
from app.webhooks.outcomes import Outcome
from app.webhooks.payloads import (
    CustomersDataRequestPayload,
    CustomersRedactPayload,
    ShopRedactPayload,
)
from app.webhooks.privacy import erasure
from app.webhooks.privacy.scrub import scrub_text

# Ledger rows about a customer ($2) or their orders ($3) in a shop ($1):
# customers/* and orders/* carry the subject's id at the top; orders and the
# privacy topics nest the customer. Both expressions are indexed (see migrations).
LEDGER_ABOUT_CUSTOMER = """
shop_id = $1 AND (
    (payload -> 'customer' ->> 'id') = $2
    OR ((payload ->> 'id') = $2 AND topic LIKE 'customers/%')
    OR ((payload ->> 'id') = ANY($3::text[]) AND topic LIKE 'orders/%')
)"""

# The time comes from the row proposed (excluded): Citus refuses now() inside
# coalesce in the update.
_ERASE_CUSTOMER = """
INSERT INTO customers AS c (shop_id, shopify_id, redacted_at, order_count, total_spent)
VALUES ($1, $2, now(), 0, 0)
ON CONFLICT (shop_id, shopify_id) DO UPDATE
SET email = NULL, name = NULL, phone = NULL, tags = NULL,
    email_marketing_state = NULL, email_marketing_opt_in_level = NULL,
    email_marketing_consent_updated_at = NULL,
    sms_marketing_state = NULL, sms_marketing_opt_in_level = NULL,
    sms_marketing_consent_updated_at = NULL,
    redacted_at = coalesce(c.redacted_at, excluded.redacted_at)
RETURNING id
"""

_ERASE_TAG_EVENTS = (
    "DELETE FROM customer_tag_events WHERE shop_id = $1 AND customer_shopify_id = $2"
)
# After the customer row is erased (and locked): a scoring pass that announced
# a segment change meanwhile has committed, and none announces one any more.
_ERASE_CUSTOMER_EVENTS = (
    "DELETE FROM customer_events WHERE shop_id = $1 AND customer_shopify_id = $2"
)


def _redact_ledger_payload(payload: CustomersRedactPayload, text: str) -> str:
    return scrub_text(text, [payload.customer.email or "", payload.customer.phone or ""])


async def _redact_customer(
    database: Database, recording: Recording, payload: CustomersRedactPayload
) -> Outcome:
    started = asyncio.get_running_loop().time()
    erasure_id = await database.run_in_transaction(
        lambda tx: _record_customer_redact(tx, recording, payload)
    )
    if erasure_id is None:
        return Outcome.duplicate
    done = await erasure.erase_inline(database, recording.shop, erasure_id, started)
    return Outcome.processed if done else Outcome.erasing


async def _record_customer_redact(
    tx: Transaction, recording: Recording, payload: CustomersRedactPayload
) -> UUID | None:
    """Record the redact, erase the customer row, and write the rest of the work to do."""
    shop, customer_id = recording.shop, str(payload.customer.id)
    # The customer's lock only: one per listed order would fill PostgreSQL's
    # lock table for a customer with many orders.
    await lock(tx, shop, customers=[customer_id])
    await check_shop(tx, shop, payload.shop_domain, payload.shop_id)
    ledger_id = await record(tx, recording, DeliveryStatus.erasing)
    if ledger_id is None:
        return None
    stored = await tx.fetchrow(
        "SELECT email, name, phone FROM customers WHERE shop_id = $1 AND shopify_id = $2",
        shop,
        customer_id,
    )
    # Email and phone identify the customer in any payload; a name does not.
    identifiers = {payload.customer.email, payload.customer.phone}
    if stored is not None:
        identifiers |= {stored["email"], stored["phone"]}
    customer_uuid: UUID = await tx.fetchval(_ERASE_CUSTOMER, shop, customer_id)
    await tx.execute(_ERASE_TAG_EVENTS, shop, customer_id)
    await tx.execute(_ERASE_CUSTOMER_EVENTS, shop, customer_id)
    await _remember_shopify_shop_id(tx, shop, payload.shop_id)
    return await erasure.start_customer_erasure(
        tx,
        shop=shop,
        ledger_id=ledger_id,
        customer_shopify_id=customer_id,
        customer_id=customer_uuid,
        order_ids=sorted({str(order_id) for order_id in payload.orders_to_redact}),
        identifiers=sorted({value.lower() for value in identifiers if value}),
        name=stored["name"] if stored is not None else None,
    )


async def _data_request(
    tx: Transaction, recording: Recording, payload: CustomersDataRequestPayload
) -> Outcome:
    # Recorded for the merchant; the export endpoint answers it.
    await lock(tx, recording.shop)
    await check_shop(tx, recording.shop, payload.shop_domain, payload.shop_id)
    if await record(tx, recording) is None:
        return Outcome.duplicate
    await _remember_shopify_shop_id(tx, recording.shop, payload.shop_id)
    return Outcome.processed


async def _redact_shop(
    database: Database, recording: Recording, payload: ShopRedactPayload
) -> Outcome:
    started = asyncio.get_running_loop().time()
    erasure_id = await database.run_in_transaction(
        lambda tx: _record_shop_redact(tx, recording, payload)
    )
    if erasure_id is None:
        return Outcome.duplicate
    done = await erasure.erase_inline(database, recording.shop, erasure_id, started)
    return Outcome.processed if done else Outcome.erasing


async def _record_shop_redact(
    tx: Transaction, recording: Recording, payload: ShopRedactPayload
) -> UUID | None:
    """Record the redact, mark the shop erased, and write the erasure of its rows."""
    # The whole shop, exclusively: waits for its deliveries in flight.
    await lock(tx, recording.shop, whole_shop=True)
    await check_shop(tx, recording.shop, payload.shop_domain, payload.shop_id)
    ledger_id = await record(tx, recording, DeliveryStatus.erasing)
    if ledger_id is None:
        return None
    await _shop_erased(tx, recording.shop)
    await _remember_shopify_shop_id(tx, recording.shop, payload.shop_id)
    return await erasure.start_shop_erasure(tx, shop=recording.shop, ledger_id=ledger_id)


# The sync's runs and staged lines go in the erasure's batches (there can be many).
_SHOP_SYNC_TABLES = (
    "shop_credentials",
    "sync_leases",
    "sync_state",
    "customer_tag_events",
)


async def _shop_erased(tx: Transaction, shop: str) -> None:
    """The shop's data is to be erased: whatever is not erased in batches goes here."""
    await tx.execute("UPDATE shops SET redacted_at = now() WHERE shop_id = $1", shop)
    # The Admin API token and what the sync kept about the shop (small tables).
    for table in _SHOP_SYNC_TABLES:
        await tx.execute(f"DELETE FROM {table} WHERE shop_id = $1", shop)  # noqa: S608


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
    CustomersRedactPayload, _redact_customer, ledger_payload=_redact_ledger_payload
)
DATA_REQUEST = Handler(CustomersDataRequestPayload, in_transaction(_data_request))
SHOP_REDACT = Handler(ShopRedactPayload, _redact_shop)
