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

# The latest time Shopify could have sent: the transaction's now() plus the
# skew allowed ($2, in seconds) where Citus allows now() (a query), or that
# time passed in as $2 to a statement that changes rows (Citus refuses now()
# inside CASE in an UPDATE).
LATEST_IN_QUERY = "now() + make_interval(secs => $2)"
BROKEN = "({column} > {latest} OR {column} < '0001-01-01 00:00:00+00')"

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


def broken(column: str, latest: str = LATEST_IN_QUERY) -> str:
    """SQL: whether `column` holds a time in the future (after `latest`) or out of range."""
    return BROKEN.format(column=column, latest=latest)


def _clear_statement(table: str, columns: tuple[str, ...]) -> str:
    assignments = ", ".join(
        f"{column} = CASE WHEN {broken(column, '$2')} THEN NULL ELSE {column} END"
        for column in columns
    )
    condition = " OR ".join(broken(column, "$2") for column in columns)
    return f"UPDATE {table} SET {assignments} WHERE shop_id = $1 AND ({condition})"  # noqa: S608


_CLEAR = {resource: _clear_statement(*table) for resource, table in _TIME_COLUMNS.items()}
_CLEAR_TAG_EVENTS = (
    f"DELETE FROM customer_tag_events WHERE shop_id = $1 AND {broken('occurred_at', '$2')}"  # noqa: S608
)
_CLEAR_WATERMARK = (
    "UPDATE sync_state SET watermark = NULL"  # noqa: S608
    f" WHERE shop_id = $1 AND resource = $3 AND {broken('watermark', '$2')}"
)


async def repair_times(database: Database, shop: str, resource: SyncResource) -> int:
    """Clear the shop's broken times of this resource; returns how many rows were changed."""
    skew = CLOCK_SKEW.total_seconds()

    async def repair(tx: Transaction) -> int:
        latest = await tx.fetchval("SELECT now() + make_interval(secs => $1)", skew)
        repaired = _count(await tx.execute(_CLEAR[resource], shop, latest))
        if resource is SyncResource.customers:
            repaired += _count(await tx.execute(_CLEAR_TAG_EVENTS, shop, latest))
        await tx.execute(_CLEAR_WATERMARK, shop, latest, resource.value)
        return repaired

    return await database.run_in_transaction(repair, statement_timeout=600.0)


def _count(status: str) -> int:
    """The row count of an UPDATE or DELETE command tag ("UPDATE 42")."""
    return int(status.rsplit(" ", 1)[-1])
