"""Deletions reconciled: what a complete full export no longer lists is marked deleted.

A customer or order deleted in Shopify while its delete webhook was lost
would otherwise stay here forever. A complete bulk export is exactly the list
of what still exists, so after one, every stored row of the shop that was
created here before the export began and is absent from it is deleted as a
delete webhook would delete it (SQL: sync_apply_deletions, through the
webhooks' own rules: a tombstone a late webhook cannot undo, totals
recomputed). A partial export deletes nothing, nor does an incremental run,
nor an export with objects that could not be read (their ids are unknown).
"""

from __future__ import annotations

import logging
from array import array
from datetime import datetime

from app.db.database import Database, Transaction
from app.db.enums import SyncResource
from app.sync.apply import BATCH_SIZE, BATCH_STATEMENT_TIMEOUT
from app.sync.runs import Run

log = logging.getLogger("app.sync")

# Stored rows of the shop, alive, created before the export, that it did not list.
_MISSING = {
    resource: f"""
SELECT t.shopify_id FROM {resource.value} AS t
WHERE t.shop_id = $1 AND t.deleted_at IS NULL AND t.created_at < $2
  AND NOT EXISTS (SELECT FROM unnest($3::bigint[]) AS seen(id) WHERE seen.id::text = t.shopify_id)
ORDER BY t.shopify_id
"""  # noqa: S608 (the table name is one of two enum values)
    for resource in SyncResource
}
_DELETE = "SELECT deleted FROM sync_apply_deletions($1, $2, $3, $4::text[])"


class SeenIds:
    """The Shopify ids an export listed (8 bytes each), and how many lines could not be read."""

    def __init__(self) -> None:
        self.ids = array("q")
        self.unreadable = 0

    def add(self, shopify_id: str) -> None:
        self.ids.append(int(shopify_id))


async def database_now(database: Database) -> datetime:
    """The database's clock: rows' created_at is by it."""
    async with database.connection() as connection:
        now: datetime = await connection.fetchval("SELECT now()")
    return now


async def reconcile_deletions(
    database: Database,
    run: Run,
    resource: SyncResource,
    seen: SeenIds,
    export_started: datetime,
) -> int:
    """Mark deleted what the complete export of `resource` did not list; how many were."""
    if seen.unreadable:
        note = (
            f"{resource.value}: deletions not reconciled, {seen.unreadable} exported objects"
            " could not be read"
        )
        run.notes.append(note)
        log.warning(note, extra={"fields": {"shop": run.shop, "run_id": str(run.id)}})
        return 0
    async with database.connection() as connection:
        rows = await connection.fetch(
            _MISSING[resource], run.shop, export_started, list(seen.ids), timeout=60
        )
    missing = [row["shopify_id"] for row in rows]
    deleted = 0
    for start in range(0, len(missing), BATCH_SIZE):
        deleted += await _delete(database, run.shop, resource, missing[start : start + BATCH_SIZE])
    run.counts.deleted += deleted
    log.info(
        "deletions reconciled",
        extra={
            "fields": {
                "run_id": str(run.id),
                "shop": run.shop,
                "resource": resource.value,
                "listed": len(seen.ids),
                "deleted": deleted,
            }
        },
    )
    return deleted


async def _delete(database: Database, shop: str, resource: SyncResource, ids: list[str]) -> int:
    async def work(tx: Transaction) -> int:
        deleted: int = await tx.fetchval(_DELETE, tx.lock_timeout_ms, shop, resource.value, ids)
        return deleted

    async with database.sync_turn():
        return await database.run_in_transaction(work, statement_timeout=BATCH_STATEMENT_TIMEOUT)
