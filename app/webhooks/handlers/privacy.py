"""The mandatory privacy topics: customers/redact, customers/data_request, shop/redact.

Redaction erases a customer's personal data everywhere this service keeps it:
the customer row, the email on their orders, and every ledger payload about
them or those orders (the redact delivery's own payload is stored scrubbed).
Totals survive. Later deliveries about a redacted customer are scrubbed too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec

from app.db.database import Locks, Transaction
from app.webhooks.handlers.base import Handler, Outcome, delivery_locks, shop_lock
from app.webhooks.ledger import RECORD_ONLY, Recording
from app.webhooks.payloads import (
    CustomersDataRequestPayload,
    CustomersRedactPayload,
    ShopRedactPayload,
)

# Fields that hold personal data wherever they appear in a Shopify payload.
PERSONAL_FIELDS = frozenset(
    {
        "email",
        "contact_email",
        "customer_email",
        "phone",
        "first_name",
        "last_name",
        "address1",
        "address2",
        "zip",
        "company",
        "latitude",
        "longitude",
        "browser_ip",
    }
)
# Objects whose `name` is a person's name (elsewhere `name` is an order number or a product).
PERSONAL_OBJECTS = frozenset(
    {"customer", "billing_address", "shipping_address", "default_address", "addresses"}
)

# Floats as Decimal, so a scrubbed payload keeps every number exactly.
_decoder = msgspec.json.Decoder(float_hook=Decimal)
_encoder = msgspec.json.Encoder(decimal_format="number")


def scrub(document: Any, known_values: Iterable[str] = ()) -> Any:
    """A copy of a decoded JSON document with personal data replaced by null.

    Personal fields are cleared wherever they appear; so is any string that
    contains one of `known_values` (the customer's email, phone or name), which
    catches them in free text and in payload shapes this service does not know.
    """
    copy = _decoder.decode(_encoder.encode(document))
    _scrub_in_place(copy, known_values)
    return copy


def scrub_text(payload: str, known_values: Iterable[str] = ()) -> str:
    """scrub() for JSON text."""
    document = _decoder.decode(payload)
    _scrub_in_place(document, known_values)
    return _encoder.encode(document).decode()


def _scrub_in_place(document: Any, known_values: Iterable[str]) -> None:
    # An explicit stack rather than recursion: any depth the decoder accepts works.
    needles = tuple(value.lower() for value in known_values if value)
    root = [document]
    # (container, key or index, whether the value sits in a personal object)
    pending: list[tuple[Any, Any, bool]] = [(root, 0, False)]
    while pending:
        container, key, personal = pending.pop()
        value = container[key]
        if isinstance(value, dict):
            for field, item in value.items():
                if field in PERSONAL_FIELDS or (personal and field == "name"):
                    value[field] = None
                elif isinstance(item, dict | list | str):
                    pending.append((value, field, field in PERSONAL_OBJECTS))
        elif isinstance(value, list):
            pending.extend((value, index, personal) for index in range(len(value)))
        elif isinstance(value, str) and any(needle in value.lower() for needle in needles):
            container[key] = None


async def scrub_ledger_rows(
    tx: Transaction, shop_id: str, ledger_ids: Sequence[UUID], known_values: Iterable[str] = ()
) -> None:
    rows = await tx.fetch(
        "SELECT id, payload::text AS payload FROM webhook_events"
        " WHERE shop_id = $1 AND id = ANY($2::uuid[]) AND payload IS NOT NULL",
        shop_id,
        list(ledger_ids),
    )
    await _store_scrubbed(tx, rows, tuple(known_values))


async def _store_scrubbed(
    tx: Transaction, rows: Sequence[Any], known_values: tuple[str, ...]
) -> None:
    if not rows:
        return
    await tx.execute(
        "UPDATE webhook_events AS e SET payload = s.payload"
        " FROM unnest($1::uuid[], $2::jsonb[]) AS s(id, payload) WHERE e.id = s.id",
        [row["id"] for row in rows],
        [scrub_text(row["payload"], known_values) for row in rows],
    )


async def erase_order_emails(tx: Transaction, shop_id: str, order_ids: Iterable[int]) -> None:
    await tx.execute(
        "UPDATE orders SET email = NULL WHERE shop_id = $1 AND shopify_id = ANY($2::varchar[])",
        shop_id,
        [str(order_id) for order_id in order_ids],
    )


# --- customers/redact -------------------------------------------------------

# Ledger rows about a customer ($2) or their orders ($3) in a shop ($1):
# customers/* and orders/* carry the subject's id at the top; orders and the
# privacy topics nest the customer. Both expressions are indexed (see migrations).
LEDGER_ABOUT_CUSTOMER = """
shop_id = $1 AND (
    (payload -> 'customer' ->> 'id') = $2
    OR ((payload ->> 'id') = $2 AND topic LIKE 'customers/%')
    OR ((payload ->> 'id') = ANY($3::text[]) AND topic LIKE 'orders/%')
)"""

_ERASE_CUSTOMER = """
INSERT INTO customers AS c (shop_id, shopify_id, redacted_at, order_count, total_spent)
VALUES ($1, $2, now(), 0, 0)
ON CONFLICT (shop_id, shopify_id) DO UPDATE
SET email = NULL, name = NULL, phone = NULL, tags = NULL,
    redacted_at = coalesce(c.redacted_at, now())
RETURNING id
"""


def _redact_locks(shop_id: str, payload: CustomersRedactPayload) -> Locks:
    return delivery_locks(shop_id, orders=payload.orders_to_redact, customers=[payload.customer.id])


def _redact_ledger_payload(payload: CustomersRedactPayload, text: str) -> str:
    return scrub_text(text, [payload.customer.email or "", payload.customer.phone or ""])


async def _redact_customer(
    tx: Transaction, recording: Recording, payload: CustomersRedactPayload
) -> Outcome:
    ledger_id = await _record(tx, recording)
    if ledger_id is None:
        return Outcome.duplicate
    shop_id, customer_id = recording.shop_id, str(payload.customer.id)
    stored = await tx.fetchrow(
        "SELECT email, name, phone FROM customers WHERE shop_id = $1 AND shopify_id = $2",
        shop_id,
        customer_id,
    )
    known = {payload.customer.email, payload.customer.phone}
    if stored is not None:
        known |= {stored["email"], stored["name"], stored["phone"]}
    # Email and phone identify the customer in any payload; a name does not.
    identifiers = {payload.customer.email, payload.customer.phone}
    if stored is not None:
        identifiers |= {stored["email"], stored["phone"]}
    customer_uuid = await tx.fetchval(_ERASE_CUSTOMER, shop_id, customer_id)
    order_ids = await tx.fetch(
        "UPDATE orders SET email = NULL"
        " WHERE shop_id = $1 AND (shopify_id = ANY($2::varchar[]) OR customer_id = $3)"
        " RETURNING shopify_id",
        shop_id,
        [str(order_id) for order_id in payload.orders_to_redact],
        customer_uuid,
    )
    orders = {row["shopify_id"] for row in order_ids}
    orders |= {str(order_id) for order_id in payload.orders_to_redact}
    # Rows of shapes this service does not know (topics without a handler, or
    # payloads that failed) are not found by id: fulfillments/create names the
    # order as `order_id`, with the customer's email and address. Those that
    # mention the customer's email or phone are scrubbed too. Only ignored and
    # failed rows are searched this way: reading every payload of a big shop
    # would not fit in the delivery's time.
    rows = await tx.fetch(
        "SELECT id, payload::text AS payload FROM webhook_events"  # noqa: S608
        f" WHERE payload IS NOT NULL AND ({LEDGER_ABOUT_CUSTOMER}"
        "   OR (shop_id = $1 AND status IN ('ignored', 'failed')"
        "       AND EXISTS (SELECT FROM unnest($4::text[]) AS v"
        "                   WHERE strpos(lower(payload::text), v) > 0)))",
        shop_id,
        customer_id,
        sorted(orders),
        sorted({value.lower() for value in identifiers if value}),
    )
    await _store_scrubbed(tx, rows, tuple(value for value in known if value))
    await _remember_shopify_shop_id(tx, shop_id, payload.shop_id)
    return Outcome.processed


# --- customers/data_request -------------------------------------------------


async def _data_request(
    tx: Transaction, recording: Recording, payload: CustomersDataRequestPayload
) -> Outcome:
    # Recorded for the merchant; the export endpoint answers it.
    ledger_id = await _record(tx, recording)
    if ledger_id is None:
        return Outcome.duplicate
    await _remember_shopify_shop_id(tx, recording.shop_id, payload.shop_id)
    return Outcome.processed


# --- shop/redact ------------------------------------------------------------

# Children before parents; the redact's own ledger row stays (it holds no personal data).
_ERASE_SHOP = (
    "DELETE FROM message_logs WHERE shop_id = $1",
    "DELETE FROM automations WHERE shop_id = $1",
    "DELETE FROM orders WHERE shop_id = $1",
    "DELETE FROM customers WHERE shop_id = $1",
)


def _shop_redact_locks(shop_id: str, payload: ShopRedactPayload) -> Locks:
    # Exclusive: waits for the shop's deliveries in flight, and holds off new ones.
    return Locks(exclusive=[shop_lock(shop_id)])


async def _redact_shop(
    tx: Transaction, recording: Recording, payload: ShopRedactPayload
) -> Outcome:
    ledger_id = await _record(tx, recording)
    if ledger_id is None:
        return Outcome.duplicate
    for statement in _ERASE_SHOP:
        await tx.execute(statement, recording.shop_id)
    await tx.execute(
        "DELETE FROM webhook_events WHERE shop_id = $1 AND id <> $2", recording.shop_id, ledger_id
    )
    await tx.execute("UPDATE shops SET redacted_at = now() WHERE shop_id = $1", recording.shop_id)
    await _remember_shopify_shop_id(tx, recording.shop_id, payload.shop_id)
    return Outcome.processed


# --- shared -----------------------------------------------------------------


async def _record(tx: Transaction, recording: Recording) -> UUID | None:
    statement = recording.statement(RECORD_ONLY)
    ledger_id: UUID | None = await tx.fetchval(statement.text, *recording.args(statement))
    return ledger_id


async def _remember_shopify_shop_id(
    tx: Transaction, shop_id: str, shopify_shop_id: int | None
) -> None:
    if shopify_shop_id is not None:
        await tx.execute(
            "UPDATE shops SET shopify_shop_id = $2 WHERE shop_id = $1"
            " AND shopify_shop_id IS DISTINCT FROM $2",
            shop_id,
            str(shopify_shop_id),
        )


CUSTOMERS_REDACT = Handler(
    CustomersRedactPayload,
    _redact_locks,
    _redact_customer,
    ledger_payload=_redact_ledger_payload,
    statement_timeout=30.0,
)
DATA_REQUEST = Handler(
    CustomersDataRequestPayload,
    lambda shop_id, payload: delivery_locks(shop_id),
    _data_request,
)
SHOP_REDACT = Handler(ShopRedactPayload, _shop_redact_locks, _redact_shop, statement_timeout=60.0)
