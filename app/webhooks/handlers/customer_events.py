"""The customer topics of API 2025-01 on, which no longer come inside customers/update.

customer.tags_added and customer.tags_removed (deltas; per customer and tag
the latest occurredAt wins, kept in customer_tag_events),
customers_email_marketing_consent/update and customers_marketing_consent/update
(consent per channel, stale-safe by consent_updated_at),
customers/purchasing_summary (Shopify's own figures beside ours, stale-safe by
occurredAt) and customers/merge.

These are rare next to customers/* and orders/*, so they run plain statements
from Python (see "Why SQL functions" in docs/schema.md), one transaction each:
the shop's and the customers' advisory locks, the ledger row, then the writes.
A customer not known yet is created (empty, totals 0), as an order's customer
is. A deleted, merged or redacted customer is left as it is (`stale`); a
delivery about a redacted customer is recorded without its personal values.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from app.db.database import Transaction
from app.webhooks.handlers.base import Handler, in_transaction
from app.webhooks.ledger import Recording, lock, record
from app.webhooks.outcomes import Outcome
from app.webhooks.payloads import (
    CustomersMergePayload,
    CustomerTagsPayload,
    EmailConsentPayload,
    MarketingConsent,
    PurchasingSummaryPayload,
    SmsConsentPayload,
)
from app.webhooks.privacy.scrub import scrub_text

_STATE = """
SELECT id, deleted_at IS NOT NULL OR redacted_at IS NOT NULL AS frozen,
       redacted_at IS NOT NULL AS redacted, merged_into
FROM customers WHERE shop_id = $1 AND shopify_id = $2
"""
_CREATE = """
INSERT INTO customers (shop_id, shopify_id, order_count, total_spent) VALUES ($1, $2, 0, 0)
ON CONFLICT (shop_id, shopify_id) DO NOTHING
"""


# Customers whose totals disagree with Shopify's (customers/purchasing_summary)
# by more than rounding; listed by GET /shops/{shop}/customers/mismatched.
MISMATCHED = """
c.shopify_order_count IS NOT NULL AND c.deleted_at IS NULL AND c.redacted_at IS NULL
AND (c.shopify_order_count IS DISTINCT FROM coalesce(c.order_count, 0)
     OR abs(coalesce(c.total_spent, 0) - coalesce(c.shopify_amount_spent, 0)) > 0.01)
"""


class _Customer(msgspec.Struct):
    frozen: bool = False
    redacted: bool = False


async def _begin(
    tx: Transaction,
    recording: Recording,
    customer: str,
    personal: Sequence[str | None] = (),
    drop_keys: Sequence[str] = (),
) -> _Customer | None:
    """Lock the customer, record the delivery; None when it is a duplicate.

    A redacted customer's delivery is recorded with `personal` values and
    `drop_keys` scrubbed from its payload.
    """
    await lock(tx, recording.shop, customers=[customer])
    row = await tx.fetchrow(_STATE, recording.shop, customer)
    state = _Customer(frozen=row["frozen"], redacted=row["redacted"]) if row else _Customer()
    if state.redacted and recording.payload is not None:
        payload = recording.payload
        if drop_keys:
            document = msgspec.json.decode(payload)
            if isinstance(document, dict):
                document.update(dict.fromkeys(drop_keys))
            payload = msgspec.json.encode(document).decode()
        recording = recording.with_payload(scrub_text(payload, [v for v in personal if v]))
    if await record(tx, recording) is None:
        return None
    if not state.frozen:
        await tx.execute(_CREATE, recording.shop, customer)
    return state


# -- tags -------------------------------------------------------------------------------------

# The tags of this delivery whose latest event it is (inserted, or newer than the stored one).
_TAG_EVENTS = """
INSERT INTO customer_tag_events AS e (shop_id, customer_shopify_id, tag, added, occurred_at)
SELECT $1, $2, t, $4, $5 FROM unnest($3::text[]) AS t
ON CONFLICT (shop_id, customer_shopify_id, tag) DO UPDATE
SET added = excluded.added, occurred_at = excluded.occurred_at
WHERE e.occurred_at < excluded.occurred_at
RETURNING e.tag
"""
_ADD_TAGS = """
UPDATE customers SET tags = ARRAY(
    SELECT DISTINCT t FROM unnest(coalesce(tags, ARRAY[]::text[]) || $3::text[]) AS t ORDER BY t)
WHERE shop_id = $1 AND shopify_id = $2
"""
_REMOVE_TAGS = """
UPDATE customers SET tags = ARRAY(
    SELECT DISTINCT t FROM unnest(coalesce(tags, ARRAY[]::text[])) AS t
    WHERE t <> ALL($3::text[]) ORDER BY t)
WHERE shop_id = $1 AND shopify_id = $2
"""


def _tags(added: bool) -> Handler[CustomerTagsPayload]:
    async def apply(tx: Transaction, recording: Recording, payload: CustomerTagsPayload) -> Outcome:
        shop, customer = recording.shop, payload.customer_shopify_id
        state = await _begin(tx, recording, customer, drop_keys=("tags",))
        if state is None:
            return Outcome.duplicate
        if state.frozen:
            return Outcome.stale
        rows = await tx.fetch(
            _TAG_EVENTS, shop, customer, payload.tag_set, added, payload.occurred_at
        )
        changed = [row["tag"] for row in rows]
        if not changed:
            return Outcome.stale if payload.tag_set else Outcome.processed
        await tx.execute(_ADD_TAGS if added else _REMOVE_TAGS, shop, customer, changed)
        return Outcome.processed

    return Handler(CustomerTagsPayload, in_transaction(apply))


# -- marketing consent ------------------------------------------------------------------------

# Written when the stored consent has no time, or is not newer. ($5 NULL: only
# over a consent without a time.) The prefix is `email` or `sms`, never input.
_CONSENT = """
UPDATE customers
SET {channel}_marketing_state = $3, {channel}_marketing_opt_in_level = $4,
    {channel}_marketing_consent_updated_at = $5
WHERE shop_id = $1 AND shopify_id = $2
  AND ({channel}_marketing_consent_updated_at IS NULL
       OR $5 >= {channel}_marketing_consent_updated_at)
"""
_EMAIL_CONSENT = _CONSENT.format(channel="email")
_SMS_CONSENT = _CONSENT.format(channel="sms")


async def _email_consent(
    tx: Transaction, recording: Recording, payload: EmailConsentPayload
) -> Outcome:
    customer, consent = str(payload.customer_id), payload.email_marketing_consent
    return await _store_consent(
        tx, recording, customer, consent, _EMAIL_CONSENT, payload.email_address
    )


async def _sms_consent(
    tx: Transaction, recording: Recording, payload: SmsConsentPayload
) -> Outcome:
    customer, consent = str(payload.id), payload.sms_marketing_consent
    return await _store_consent(tx, recording, customer, consent, _SMS_CONSENT, payload.phone)


async def _store_consent(
    tx: Transaction,
    recording: Recording,
    customer: str,
    consent: MarketingConsent,
    statement: str,
    contact: str | None,
) -> Outcome:
    """One channel's consent, unless the stored one is newer (the payload's contact is personal)."""
    state = await _begin(tx, recording, customer, personal=[contact])
    if state is None:
        return Outcome.duplicate
    if state.frozen:
        return Outcome.stale
    status = await tx.execute(
        statement,
        recording.shop,
        customer,
        consent.state,
        consent.opt_in_level,
        consent.consent_updated_at,
    )
    return Outcome.processed if status == "UPDATE 1" else Outcome.stale


# -- purchasing summary -----------------------------------------------------------------------

_SUMMARY = """
UPDATE customers
SET shopify_order_count = $3, shopify_amount_spent = $4, shopify_summary_at = $5
WHERE shop_id = $1 AND shopify_id = $2
  AND (shopify_summary_at IS NULL OR $5 >= shopify_summary_at)
"""


async def _purchasing_summary(
    tx: Transaction, recording: Recording, payload: PurchasingSummaryPayload
) -> Outcome:
    customer = payload.customer_shopify_id
    state = await _begin(tx, recording, customer)
    if state is None:
        return Outcome.duplicate
    if state.frozen:
        return Outcome.stale
    status = await tx.execute(
        _SUMMARY,
        recording.shop,
        customer,
        payload.number_of_orders,
        payload.amount_spent.amount,
        payload.occurred_at,
    )
    return Outcome.processed if status == "UPDATE 1" else Outcome.stale


# -- merge ------------------------------------------------------------------------------------

# The merged customer is also soft-deleted: every rule that leaves a deleted
# customer alone (ingest_apply_changes' frozen check, customers/delete, the
# topics above) then leaves a merged one alone too. The time is the
# transaction's, passed in: Citus refuses now() inside coalesce in an UPDATE.
_MARK_MERGED = """
UPDATE customers
SET merged_into = $3, merged_at = $4, deleted_at = coalesce(deleted_at, $4)
WHERE shop_id = $1 AND shopify_id = $2
RETURNING id
"""
_NOW = "SELECT now()"
_KEPT = "SELECT id FROM customers WHERE shop_id = $1 AND shopify_id = $2"
_MOVE_ORDERS = "UPDATE orders SET customer_id = $3 WHERE shop_id = $1 AND customer_id = $2"
_RECOMPUTE = "SELECT ingest_recompute_totals(ARRAY[$1], ARRAY[$2::uuid, $3::uuid])"


async def _merge(tx: Transaction, recording: Recording, payload: CustomersMergePayload) -> Outcome:
    shop, kept, deleted = recording.shop, payload.kept_id, payload.deleted_id
    # The customers' locks only (as customers/redact): one per order could fill
    # PostgreSQL's lock table. Order deliveries lock the customers they touch.
    await lock(tx, shop, customers=[kept, deleted])
    if await record(tx, recording) is None:
        return Outcome.duplicate
    if not payload.completed:
        return Outcome.processed  # recorded; a merge that did not happen changes nothing
    merged = await tx.fetchrow(_STATE, shop, deleted)
    if merged is not None and merged["merged_into"] is not None:
        return Outcome.stale  # merged before (the same merge delivered again)
    await tx.execute(_CREATE, shop, kept)
    await tx.execute(_CREATE, shop, deleted)
    kept_id = await tx.fetchval(_KEPT, shop, kept)
    now = await tx.fetchval(_NOW)
    deleted_id = await tx.fetchval(_MARK_MERGED, shop, deleted, kept, now)
    await tx.execute(_MOVE_ORDERS, shop, deleted_id, kept_id)
    await tx.execute(_RECOMPUTE, shop, kept_id, deleted_id)
    return Outcome.processed


TAGS_ADDED = _tags(added=True)
TAGS_REMOVED = _tags(added=False)
EMAIL_CONSENT = Handler(EmailConsentPayload, in_transaction(_email_consent))
SMS_CONSENT = Handler(SmsConsentPayload, in_transaction(_sms_consent))
PURCHASING_SUMMARY = Handler(PurchasingSummaryPayload, in_transaction(_purchasing_summary))
MERGE = Handler(CustomersMergePayload, in_transaction(_merge))
