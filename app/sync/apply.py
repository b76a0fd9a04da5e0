"""Applying fetched customers and orders, through the same rules as webhook deliveries.

A batch of records is mapped here onto the changes ingest_apply_changes
reads (the fields of a webhook group's items, ingest_changes), once in Python
rather than per row in SQL; the SQL functions sync_apply_customers and
sync_apply_orders (app/db/functions/) take their locks and apply them through
ingest_apply_changes, the function that applies webhook groups. Batches take
turns for a share of the pool (Database.sync_turn). A page is applied in one
transaction together with the watermark it moves, so an interrupted sync
resumes exactly after the last committed page.

When PostgreSQL refuses a batch for a value in it (two valid orders whose
customer's total would overflow numeric(19,4), say), each record is applied
on its own: the ones it refuses are counted as failed, with the reason in the
log, and the rest are stored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from app.db.database import Database, Transaction, refused_by_database
from app.db.enums import SyncResource
from app.sync.runs import RunCounts, advance_watermark

# Rows per transaction. Every row takes an advisory lock (orders also lock
# their customers), and PostgreSQL's lock table is shared by all sessions
# (64 per connection by default): a few hundred keeps well clear of it.
BATCH_SIZE = 200
# A batch of a few hundred rows takes tens of milliseconds; generous, but
# bounded, so a stuck database fails the run instead of hanging it.
BATCH_STATEMENT_TIMEOUT = 30.0

_FUNCTIONS = {
    SyncResource.customers: "SELECT applied, stale FROM sync_apply_customers($1, $2, $3::jsonb)",
    SyncResource.orders: "SELECT applied, stale FROM sync_apply_orders($1, $2, $3::jsonb)",
}

_encoder = msgspec.json.Encoder()

# A synced customer's fields under the names of a change (ingest_changes).
_CUSTOMER_FIELDS = {
    "shopify_id": "customer_shopify_id",
    "email": "customer_email",
    "name": "customer_name",
    "phone": "customer_phone",
    "tags": "customer_tags",
    "created_at": "customer_created_at",
    "updated_at": "customer_updated_at",
    "email_marketing_state": "customer_email_marketing_state",
    "email_marketing_opt_in_level": "customer_email_marketing_opt_in_level",
    "email_marketing_updated_at": "customer_email_marketing_updated_at",
    "sms_marketing_state": "customer_sms_marketing_state",
    "sms_marketing_opt_in_level": "customer_sms_marketing_opt_in_level",
    "sms_marketing_updated_at": "customer_sms_marketing_updated_at",
}
# A synced order's fields that keep their names in a change.
_ORDER_FIELDS = (
    "customer_shopify_id",
    "total_price",
    "current_total_price",
    "currency",
    "financial_status",
    "fulfillment_status",
    "cancelled_at",
    "name",
    "email",
    "test",
    "line_items",
    "created_at",
    "updated_at",
)

log = logging.getLogger("app.sync")


async def apply_batch(
    database: Database,
    shop: str,
    resource: SyncResource,
    records: Sequence[dict[str, Any]],
    *,
    watermark: datetime | None = None,
) -> RunCounts:
    """Apply one batch of records (and move the watermark) in one transaction."""
    if not records and watermark is None:
        return RunCounts()
    try:
        return await _apply(database, shop, resource, records, watermark)
    except Exception as error:
        if not records or not refused_by_database(error):
            raise
    counts = RunCounts()
    for record in records:
        try:
            counts.add(await _apply(database, shop, resource, [record], None))
        except Exception as error:
            if not refused_by_database(error):
                raise
            counts.failed += 1
            log.warning(
                "fetched object skipped",
                extra={
                    "fields": {
                        "shop": shop,
                        "resource": resource.value,
                        "shopify_id": record.get("shopify_id"),
                        "reason": f"PostgreSQL refused it: {error}"[:500],
                    }
                },
            )
    if watermark is not None:
        counts.add(await _apply(database, shop, resource, [], watermark))
    return counts


async def _apply(
    database: Database,
    shop: str,
    resource: SyncResource,
    records: Sequence[dict[str, Any]],
    watermark: datetime | None,
) -> RunCounts:
    async def work(tx: Transaction) -> RunCounts:
        counts = RunCounts()
        if records:
            row = await tx.fetchrow(
                _FUNCTIONS[resource],
                tx.lock_timeout_ms,
                shop,
                _encoder.encode(changes(shop, resource, records)).decode(),
            )
            assert row is not None
            counts.applied, counts.stale = row["applied"], row["stale"]
        if watermark is not None:
            await advance_watermark(tx, shop, resource, watermark)
        return counts

    async with database.sync_turn():
        return await database.run_in_transaction(work, statement_timeout=BATCH_STATEMENT_TIMEOUT)


def changes(
    shop: str, resource: SyncResource, records: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The records (app/sync/records.py) as the changes ingest_apply_changes applies.

    A customer's tags are always given (the sync reads them); its marketing
    consent comes as the consent webhooks give it.
    """
    if resource is SyncResource.customers:
        return [
            {
                "kind": "customer",
                "shop": shop,
                "customer_has_tags": True,
                **{name: record.get(field) for field, name in _CUSTOMER_FIELDS.items()},
            }
            for record in records
        ]
    return [
        {
            "kind": "order",
            "shop": shop,
            "order_shopify_id": record["shopify_id"],
            **{field: record.get(field) for field in _ORDER_FIELDS},
        }
        for record in records
    ]
