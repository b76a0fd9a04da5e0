"""Full sync: a shop's whole history through one bulk operation per resource.

Customers are applied as their lines stream in. Orders come with their line
items as separate lines (`__parentId`), in no promised order, so the lines are
first staged in sync_bulk_rows and then applied order by order with their
line items: memory stays bounded whatever the shop's size. When Shopify fails
an operation partway, the partial data it wrote is applied and the run ends
`partial`. A line that cannot be used (too long, not UTF-8, not JSON, nested
too deeply, or holding text PostgreSQL refuses) is counted as a failed object
and skipped; the rest of the result is applied. After a complete export, what
it no longer lists is marked deleted (app/sync/deletions.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import msgspec

from app.db.database import Database, refused_by_database
from app.db.enums import SyncResource
from app.shopify.bulk import (
    DownloadLimits,
    FinishedSignal,
    OversizedLine,
    result_lines,
    start_bulk_query,
    wait_for_bulk_operation,
)
from app.shopify.client import AdminClient
from app.shopify.errors import ExportFailed
from app.shopify.nodes import BulkOperation, CustomerNode, LineItemNode, OrderNode
from app.shopify.queries import BULK_CUSTOMERS, BULK_ORDERS
from app.sync.apply import BATCH_SIZE, apply_batch
from app.sync.deletions import SeenIds, database_now, reconcile_deletions
from app.sync.records import RecordError, customer_record, decode_line, order_record
from app.sync.runs import ReportProgress, Run, RunCounts

log = logging.getLogger("app.sync")

BULK_QUERIES = {SyncResource.customers: BULK_CUSTOMERS, SyncResource.orders: BULK_ORDERS}
# Staged lines written per COPY, and read back per query (by id range).
STAGE_CHUNK = 2000
# A bulk load grows a table faster than autovacuum analyses it. The SQL
# functions' cached plans, made while the table was small, then looked rows up
# through the shop_id index alone (a scan of the shop's rows per lookup:
# quadratic). ANALYZE after 1,000 rows, then each time the count quadruples,
# makes every connection plan again with real statistics.
ANALYZE_FIRST = 1000
ANALYZE_GROWTH = 4
BATCHES_IN_FLIGHT = 2

# Result lines decoded straight into the nodes they hold (no dicts in between).
_CUSTOMER = msgspec.json.Decoder(CustomerNode)
_ORDER = msgspec.json.Decoder(OrderNode)
_LINE_ITEMS = msgspec.json.Decoder(list[LineItemNode])


class Line(msgspec.Struct):
    """What staging needs of a JSONL line: its id and its parent's."""

    id: str
    parent_id: str | None = msgspec.field(name="__parentId", default=None)


class FullSyncResult(msgspec.Struct):
    complete: bool
    # Shopify's time when the operation was created: every change after it
    # is for the next incremental sync to fetch.
    snapshot_at: datetime | None


async def sync_fully(
    database: Database,
    client: AdminClient,
    http: httpx.AsyncClient,
    run: Run,
    resource: SyncResource,
    finished_signal: FinishedSignal,
    on_progress: ReportProgress,
    limits: DownloadLimits,
    *,
    reconcile: bool = True,
) -> FullSyncResult:
    """The resource's full sync; with `reconcile`, a complete export's absent rows are deleted."""
    export_started = await database_now(database)
    operation = await start_bulk_query(client, BULK_QUERIES[resource])
    _log(run, resource, "bulk operation started", operation=operation.id)
    operation = await wait_for_bulk_operation(client, operation.id, finished_signal)
    url = _result_url(run, resource, operation)
    seen = SeenIds()
    if url is not None:
        lines = result_lines(http, url, limits)
        if resource is SyncResource.customers:
            await _apply_customers(database, run, lines, on_progress, seen)
        else:
            await _apply_orders(database, run, lines, on_progress, seen)
    complete = operation.status == "COMPLETED"
    if complete and reconcile:
        await reconcile_deletions(database, run, resource, seen, export_started)
    return FullSyncResult(complete, operation.created_at)


def _result_url(run: Run, resource: SyncResource, operation: BulkOperation) -> str | None:
    if operation.status == "COMPLETED":
        _log(run, resource, "bulk operation completed", objects=operation.object_count)
        return operation.url  # None when the query matched nothing
    reason = f"bulk operation {operation.status.lower()} ({operation.error_code or 'no code'})"
    if operation.partial_data_url is None:
        raise ExportFailed(f"{reason}, with no partial data")
    run.notes.append(f"{resource.value}: {reason}; its partial data was applied")
    _log(run, resource, "bulk operation failed; applying its partial data", reason=reason)
    return operation.partial_data_url


Lines = AsyncIterator[bytes | OversizedLine]


async def _apply_customers(
    database: Database,
    run: Run,
    lines: Lines,
    on_progress: ReportProgress,
    seen: SeenIds,
) -> None:
    async with _Pipeline(database, run, SyncResource.customers, on_progress) as batches:
        batch: list[dict[str, Any]] = []
        async for line in lines:
            run.counts.fetched += 1
            try:
                record = customer_record(decode_line(_within_limit(line), _CUSTOMER))
            except RecordError as error:
                _skip(run, SyncResource.customers, error)
                seen.unreadable += 1
            else:
                batch.append(record)
                seen.add(record["shopify_id"])
            if len(batch) >= BATCH_SIZE:
                await batches.submit(batch)
                batch = []
        await batches.submit(batch)


def _within_limit(line: bytes | OversizedLine) -> bytes:
    """The line; RecordError for one too long to have been read."""
    if isinstance(line, OversizedLine):
        raise _too_long(line)
    return line


async def _apply_orders(
    database: Database,
    run: Run,
    lines: Lines,
    on_progress: ReportProgress,
    seen: SeenIds,
) -> None:
    try:
        started = time.perf_counter()
        staged = await _stage(database, run, lines, seen)
        _log(
            run,
            SyncResource.orders,
            "bulk result staged",
            lines=staged,
            seconds=round(time.perf_counter() - started, 2),
        )
        # Fresh statistics, so the read-back below finds each order's line
        # items through the parent_gid index (without them PostgreSQL may
        # combine the run_id index, which matches every staged row).
        await analyze(database, "sync_bulk_rows")
        await _apply_staged_orders(database, run, on_progress, seen)
    finally:
        await discard_staged(database, run)


# shop_id, run_id, gid, parent_gid, document
StagedRow = tuple[str, UUID, str, str | None, str]


async def _stage(database: Database, run: Run, lines: Lines, seen: SeenIds) -> int:
    """Copy the result's lines into sync_bulk_rows; returns how many.

    Each chunk is copied while the next one is read and parsed. A line that
    is not a node is counted as a failed object (its own, or a line item of
    an order, which is then stored without it), and as unreadable in `seen`
    (it may have been an order still there: no deletions then).
    """
    count = 0
    rows: list[StagedRow] = []
    copying: asyncio.Task[None] | None = None
    try:
        async for line in lines:
            try:
                rows.append(_staged_row(run, line))
            except RecordError as error:
                run.counts.fetched += 1
                _skip(run, SyncResource.orders, error)
                seen.unreadable += 1
                continue
            count += 1
            if len(rows) >= STAGE_CHUNK:
                if copying is not None:
                    await copying
                copying, rows = asyncio.create_task(_copy(database, run, rows, seen)), []
        if copying is not None:
            await copying
        await _copy(database, run, rows, seen)
    finally:
        if copying is not None and not copying.done():
            copying.cancel()
            await asyncio.gather(copying, return_exceptions=True)
    return count


def _too_long(line: OversizedLine) -> RecordError:
    return RecordError(
        f"a result line of {line.size} bytes is longer than SYNC_BULK_MAX_LINE_BYTES"
    )


def _staged_row(run: Run, line: bytes | OversizedLine) -> StagedRow:
    if isinstance(line, OversizedLine):
        raise _too_long(line)
    try:
        parsed = msgspec.json.decode(line, type=Line)
        return (run.shop, run.id, parsed.id, parsed.parent_id, line.decode())
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        raise RecordError(f"a result line is not a node: {error}") from None
    except RecursionError:
        raise RecordError("a result line is nested too deeply to be read") from None


async def _copy(database: Database, run: Run, rows: list[StagedRow], seen: SeenIds) -> None:
    """COPY the rows; when PostgreSQL refuses one of them, each row on its own."""
    if not rows:
        return
    try:
        await _copy_rows(database, rows)
    except Exception as error:
        if not refused_by_database(error):
            raise
        for row in rows:
            try:
                await _copy_rows(database, [row])
            except Exception as refused:
                if not refused_by_database(refused):
                    raise
                run.counts.fetched += 1
                _skip(run, SyncResource.orders, RecordError(_refusal(refused)))
                seen.unreadable += 1


async def _copy_rows(database: Database, rows: list[StagedRow]) -> None:
    async with database.connection() as connection:
        await connection.copy_records_to_table(
            "sync_bulk_rows",
            records=rows,
            columns=("shop_id", "run_id", "gid", "parent_gid", "document"),
        )


def _refusal(error: BaseException) -> str:
    return f"PostgreSQL refused it: {error}"[:500]


# Parents staged in an id range, each with its children in the order they came
# (by shop too: on Citus that is what sends the query to the shop's node alone).
_STAGED_PARENTS = """
SELECT p.id, p.document::text AS document,
       (SELECT coalesce(json_agg(c.document ORDER BY c.id), '[]')::text
        FROM sync_bulk_rows AS c
        WHERE c.shop_id = p.shop_id AND c.parent_gid = p.gid AND c.run_id = p.run_id) AS children
FROM sync_bulk_rows AS p
WHERE p.shop_id = $1 AND p.run_id = $2 AND p.parent_gid IS NULL AND p.id > $3 AND p.id <= $4
ORDER BY p.id
"""


async def _apply_staged_orders(
    database: Database, run: Run, on_progress: ReportProgress, seen: SeenIds
) -> None:
    async with database.connection() as connection:
        bounds = await connection.fetchrow(
            "SELECT min(id) AS first, max(id) AS last FROM sync_bulk_rows"
            " WHERE shop_id = $1 AND run_id = $2",
            run.shop,
            run.id,
        )
    if bounds is None or bounds["first"] is None:
        return
    async with _Pipeline(database, run, SyncResource.orders, on_progress) as batches:
        start = bounds["first"] - 1
        while start < bounds["last"]:
            async with database.connection() as connection:
                parents = await connection.fetch(
                    _STAGED_PARENTS, run.shop, run.id, start, start + STAGE_CHUNK, timeout=60
                )
            start += STAGE_CHUNK
            records = [record for row in parents if (record := _order(run, row, seen)) is not None]
            await batches.submit_by_customer(records)


def _order(run: Run, row: Any, seen: SeenIds) -> dict[str, Any] | None:
    run.counts.fetched += 1
    try:
        record = order_record(
            decode_line(row["document"], _ORDER), decode_line(row["children"], _LINE_ITEMS)
        )
    except RecordError as error:
        _skip(run, SyncResource.orders, error)
        seen.unreadable += 1
        return None
    seen.add(record["shopify_id"])
    return record


async def analyze(database: Database, table: str) -> None:
    """Refresh the table's statistics (a no-op where the database user may not)."""
    async with database.connection() as connection:
        try:
            await connection.execute(f"ANALYZE {table}", timeout=60)
        except asyncpg.InsufficientPrivilegeError:
            log.warning("cannot ANALYZE; planning may be slow", extra={"fields": {"table": table}})


async def discard_abandoned(database: Database, shop: str, run_id: UUID) -> None:
    """The staged lines of the shop's earlier runs: a run killed before it could
    discard its own leaves them (customers' emails among them) until this one."""
    async with database.connection() as connection:
        await connection.execute(
            "DELETE FROM sync_bulk_rows WHERE shop_id = $1 AND run_id <> $2",
            shop,
            run_id,
        )


async def discard_staged(database: Database, run: Run) -> None:
    async with database.connection() as connection:
        await connection.execute(
            "DELETE FROM sync_bulk_rows WHERE shop_id = $1 AND run_id = $2", run.shop, run.id
        )


class _Pipeline:
    """Applies batches on a few connections while the next ones are read.

    Two batches in flight keep both the database and Python busy. They cannot
    deadlock: each takes its orders' locks, then its customers', in key order,
    as deliveries do; batches sharing a customer simply queue. Orders go by
    customer (submit_by_customer): each lane holds its own customers and has
    one batch in flight, so batches in flight do not share a customer and do
    not queue for each other's locks (orders of random customers, two at a
    time, queued for most of a full sync's apply time).
    """

    def __init__(
        self, database: Database, run: Run, resource: SyncResource, on_progress: ReportProgress
    ) -> None:
        self.database = database
        self.run = run
        self.resource = resource
        self.on_progress = on_progress
        self.pending: set[asyncio.Task[None]] = set()
        self.reported = time.monotonic()
        self.written = 0
        self.analyze_at = ANALYZE_FIRST
        self.lanes: list[list[dict[str, Any]]] = [[] for _ in range(BATCHES_IN_FLIGHT)]
        self.lane_tasks: list[asyncio.Task[None] | None] = [None] * BATCHES_IN_FLIGHT

    async def __aenter__(self) -> _Pipeline:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            for lane, records in enumerate(self.lanes):
                await self._submit_lane(lane, records)
            await self._wait(until=0)
            return
        # The run is failing anyway: stop the batches in flight, quietly.
        for task in self.pending:
            task.cancel()
        await asyncio.gather(*self.pending, return_exceptions=True)

    async def submit(self, records: list[dict[str, Any]]) -> None:
        await self._wait(until=BATCHES_IN_FLIGHT - 1)
        if records:
            self.pending.add(asyncio.create_task(self._apply(records)))

    async def submit_by_customer(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            key = record.get("customer_shopify_id") or record["shopify_id"]
            lane = hash(str(key)) % BATCHES_IN_FLIGHT
            self.lanes[lane].append(record)
            if len(self.lanes[lane]) >= BATCH_SIZE:
                await self._submit_lane(lane, self.lanes[lane])
                self.lanes[lane] = []

    async def _submit_lane(self, lane: int, records: list[dict[str, Any]]) -> None:
        """Apply `records` once the lane's batch before has finished (its failure fails the run)."""
        before = self.lane_tasks[lane]
        if before is not None:
            await asyncio.wait({before})
            self.pending.discard(before)
            before.result()
        if records:
            task = asyncio.create_task(self._apply(records))
            self.pending.add(task)
            self.lane_tasks[lane] = task

    async def _wait(self, until: int) -> None:
        """Wait until at most `until` batches are in flight; a failed batch fails the run."""
        while len(self.pending) > until:
            done, self.pending = await asyncio.wait(
                self.pending, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                task.result()

    async def _apply(self, records: list[dict[str, Any]]) -> None:
        counts: RunCounts = await apply_batch(self.database, self.run.shop, self.resource, records)
        self.run.counts.applied += counts.applied
        self.run.counts.stale += counts.stale
        self.run.counts.failed += counts.failed
        self.written += len(records)
        if self.written >= self.analyze_at:
            self.analyze_at *= ANALYZE_GROWTH
            await analyze(self.database, self.resource.value)
        if time.monotonic() - self.reported > 1.0:
            self.reported = time.monotonic()
            await self.on_progress(self.run)


def _skip(run: Run, resource: SyncResource, error: Exception) -> None:
    run.counts.failed += 1
    log.warning(
        "fetched object skipped",
        extra={"fields": {"shop": run.shop, "resource": resource.value, "reason": str(error)}},
    )


def _log(run: Run, resource: SyncResource, message: str, **fields: Any) -> None:
    log.info(
        message,
        extra={
            "fields": {
                "run_id": str(run.id),
                "shop": run.shop,
                "resource": resource.value,
                **fields,
            }
        },
    )
