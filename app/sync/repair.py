"""Repairing rows stored with times Shopify could not have sent (app/shopify/times.py).

Before such times were refused, an `updated_at` from the future could be
stored as a row's version (every later real change was then `stale`) or move
a watermark past every change to come, and a time outside the years 1-9999 in
UTC made every read of its row fail. A full sync of a resource first clears
such times from the shop's rows, so that what it fetches is applied again,
and drops such a watermark; a resource with one gets a full sync. So
`python -m app sync --shop SHOP --full` repairs a shop.
"""

from __future__ import annotations

from app.db.database import Database, Transaction
from app.db.enums import SyncResource
from app.shopify.times import CLOCK_SKEW

# $2: the skew allowed, in seconds.
BROKEN = "({column} > now() + make_interval(secs => $2) OR {column} < '0001-01-01 00:00:00+00')"

_TIME_COLUMNS = {
    SyncResource.customers: (
        "customers",
        (
            "shopify_created_at",
            "shopify_updated_at",
            "email_marketing_consent_updated_at",
            "sms_marketing_consent_updated_at",
            "first_order_at",
            "last_order_at",
            "shopify_summary_at",
        ),
    ),
    SyncResource.orders: ("orders", ("shopify_created_at", "shopify_updated_at", "cancelled_at")),
}


def broken(column: str) -> str:
    """SQL: whether `column` holds a time in the future or out of range ($2: the skew)."""
    return BROKEN.format(column=column)


def _clear_statement(table: str, columns: tuple[str, ...]) -> str:
    assignments = ", ".join(
        f"{column} = CASE WHEN {broken(column)} THEN NULL ELSE {column} END" for column in columns
    )
    condition = " OR ".join(broken(column) for column in columns)
    return f"UPDATE {table} SET {assignments} WHERE shop_id = $1 AND ({condition})"  # noqa: S608


_CLEAR = {resource: _clear_statement(*table) for resource, table in _TIME_COLUMNS.items()}
_CLEAR_TAG_EVENTS = (
    f"DELETE FROM customer_tag_events WHERE shop_id = $1 AND {broken('occurred_at')}"  # noqa: S608
)
_CLEAR_WATERMARK = (
    "UPDATE sync_state SET watermark = NULL"  # noqa: S608
    f" WHERE shop_id = $1 AND resource = $3 AND {broken('watermark')}"
)


async def repair_times(database: Database, shop: str, resource: SyncResource) -> int:
    """Clear the shop's broken times of this resource; returns how many rows were changed."""
    skew = CLOCK_SKEW.total_seconds()

    async def repair(tx: Transaction) -> int:
        repaired = _count(await tx.execute(_CLEAR[resource], shop, skew))
        if resource is SyncResource.customers:
            repaired += _count(await tx.execute(_CLEAR_TAG_EVENTS, shop, skew))
        await tx.execute(_CLEAR_WATERMARK, shop, skew, resource.value)
        return repaired

    return await database.run_in_transaction(repair, statement_timeout=600.0)


def _count(status: str) -> int:
    """The row count of an UPDATE or DELETE command tag ("UPDATE 42")."""
    return int(status.rsplit(" ", 1)[-1])
