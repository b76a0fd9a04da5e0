"""Sync runs, per-shop state and the lease that keeps one run per shop at a time.

The lease is a row (sync_leases), taken with one atomic statement and renewed
while the run works. PgBouncer in transaction mode rules out session advisory
locks; a row also survives the process and simply expires when its holder
crashes (SYNC_LEASE_SECONDS).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import asyncpg

from app.db.database import Connection, Database, Transaction
from app.db.enums import SyncKind, SyncResource, SyncRunStatus
from app.shopify.client import Usage
from app.shopify.times import CLOCK_SKEW
from app.sync.repair import broken

RUN_COLUMNS = (
    "id, shop_id, kind, resource, status, started_at, finished_at, fetched, applied, stale,"
    " failed, deleted, api_cost, throttle_wait_seconds, last_error, note"
)

# Takes the lease unless a live one is held (an expired one is taken over).
# $4 is the transaction's now(): Citus refuses now() in ON CONFLICT's WHERE.
_TAKE_LEASE = """
INSERT INTO sync_leases (shop_id, run_id, expires_at)
VALUES ($1, $2, now() + make_interval(secs => $3))
ON CONFLICT (shop_id) DO UPDATE SET run_id = EXCLUDED.run_id, expires_at = EXCLUDED.expires_at
WHERE sync_leases.expires_at < $4
RETURNING run_id
"""

# A run whose lease expired was abandoned by its process (crash, kill -9).
_ABANDONED = """
UPDATE sync_runs SET status = 'failed', finished_at = now(),
    last_error = coalesce(last_error, 'abandoned: its process stopped before it finished')
WHERE shop_id = $1 AND status = 'running' AND id <> $2
"""


@dataclass
class RunCounts:
    fetched: int = 0
    applied: int = 0
    stale: int = 0
    failed: int = 0
    # Rows a complete full export no longer listed, marked deleted.
    deleted: int = 0

    def add(self, other: RunCounts) -> None:
        self.fetched += other.fetched
        self.applied += other.applied
        self.stale += other.stale
        self.failed += other.failed
        self.deleted += other.deleted


@dataclass
class Run:
    """A run in progress: what it does, and what it has done so far."""

    id: UUID
    shop: str
    kind: SyncKind
    resources: tuple[SyncResource, ...]
    counts: RunCounts = field(default_factory=RunCounts)
    notes: list[str] = field(default_factory=list)

    @property
    def resource(self) -> str:
        return ",".join(resource.value for resource in self.resources)


# Called as a run's counts grow (the runner saves them and tells its caller).
ReportProgress = Callable[[Run], Awaitable[None]]


@dataclass(frozen=True)
class SyncState:
    watermark: datetime | None
    full_sync_completed_at: datetime | None
    # A watermark in the future or out of range (stored before such times were
    # refused): left unread, and the resource needs a full sync (app/sync/repair.py).
    watermark_broken: bool = False


class RunInProgress(Exception):
    def __init__(self, run_id: UUID | None) -> None:
        super().__init__(f"a sync of this shop is already running (run {run_id})")
        self.run_id = run_id


async def begin_run(
    database: Database,
    shop: str,
    kind: SyncKind,
    resources: tuple[SyncResource, ...],
    lease_seconds: float,
) -> Run:
    """Take the shop's lease and record a running run; RunInProgress when another holds it."""

    async def begin(tx: Transaction) -> Run:
        fresh = await tx.fetchrow("SELECT gen_random_uuid() AS id, now() AS now")
        assert fresh is not None
        run_id: UUID = fresh["id"]
        holder = await tx.fetchval(_TAKE_LEASE, shop, run_id, lease_seconds, fresh["now"])
        if holder is None:
            raise RunInProgress(await _lease_holder(tx, shop))
        await tx.execute(_ABANDONED, shop, run_id)
        run = Run(run_id, shop, kind, resources)
        await tx.execute(
            "INSERT INTO sync_runs (id, shop_id, kind, resource, status)"
            " VALUES ($1, $2, $3, $4, 'running')",
            run_id,
            shop,
            kind.value,
            run.resource,
        )
        return run

    return await database.run_in_transaction(begin)


async def _lease_holder(tx: Transaction, shop: str) -> UUID | None:
    holder: UUID | None = await tx.fetchval(
        "SELECT run_id FROM sync_leases WHERE shop_id = $1", shop
    )
    return holder


async def renew_lease(database: Database, run: Run, lease_seconds: float) -> bool:
    """Extend the lease; False when it was lost (expired and taken by another run)."""
    async with database.connection() as connection:
        status = await connection.execute(
            "UPDATE sync_leases SET expires_at = now() + make_interval(secs => $3)"
            " WHERE shop_id = $1 AND run_id = $2",
            run.shop,
            run.id,
            lease_seconds,
        )
    return status != "UPDATE 0"


async def save_progress(database: Database, run: Run, usage: Usage) -> None:
    """Write the run's counts so far (GET /sync/runs/{id} shows a run's progress)."""
    async with database.connection() as connection:
        await connection.execute(
            "UPDATE sync_runs SET fetched = $2, applied = $3, stale = $4, failed = $5,"
            " deleted = $6, api_cost = $7, throttle_wait_seconds = $8"
            " WHERE shop_id = $9 AND id = $1",
            run.id,
            *_figures(run, usage),
            run.shop,
        )


@dataclass(frozen=True)
class RunError:
    """Why a run failed, and what kind of failure it was (sync_runs.error_kind)."""

    message: str
    kind: str


async def finish_run(
    database: Database, run: Run, usage: Usage, status: SyncRunStatus, error: RunError | None
) -> None:
    """Record how the run ended and release the shop's lease, in one transaction."""

    async def finish(tx: Transaction) -> None:
        await tx.execute(
            "UPDATE sync_runs SET status = $9, finished_at = now(), fetched = $2, applied = $3,"
            " stale = $4, failed = $5, deleted = $6, api_cost = $7, throttle_wait_seconds = $8,"
            " last_error = $10, error_kind = $11, note = $12 WHERE shop_id = $13 AND id = $1",
            run.id,
            *_figures(run, usage),
            status.value,
            error and _text(error.message),
            error and error.kind,
            _text("; ".join(run.notes)) or None,
            run.shop,
        )
        await tx.execute(
            "DELETE FROM sync_leases WHERE shop_id = $1 AND run_id = $2", run.shop, run.id
        )

    await database.run_in_transaction(finish)


def _text(value: str) -> str:
    """Text for a column: reasons can quote Shopify's answers, and PostgreSQL refuses NUL."""
    return value.replace("\x00", "")[:2000]


async def record_failure(database: Database, run: Run, error: RunError) -> None:
    """Record the run as failed for `error`, whatever it recorded itself, and free its lease."""

    async def fail(tx: Transaction) -> None:
        # least() keeps a finish time already recorded (in the past) and takes
        # now() for none (it skips NULLs); Citus refuses now() inside coalesce
        # in an UPDATE.
        await tx.execute(
            "UPDATE sync_runs SET status = 'failed', finished_at = least(finished_at, now()),"
            " last_error = $2, error_kind = $3 WHERE shop_id = $4 AND id = $1",
            run.id,
            _text(error.message),
            error.kind,
            run.shop,
        )
        await tx.execute(
            "DELETE FROM sync_leases WHERE shop_id = $1 AND run_id = $2", run.shop, run.id
        )

    await database.run_in_transaction(fail)


def _figures(run: Run, usage: Usage) -> tuple[int, int, int, int, int, int, float]:
    counts = run.counts
    return (
        counts.fetched,
        counts.applied,
        counts.stale,
        counts.failed,
        counts.deleted,
        usage.api_cost,
        round(usage.throttle_wait_seconds, 3),
    )


_SYNC_STATE = f"""
SELECT CASE WHEN NOT {broken("watermark")} THEN watermark END AS watermark,
       coalesce({broken("watermark")}, false) AS watermark_broken, full_sync_completed_at
FROM sync_state WHERE shop_id = $1 AND resource = $3
"""  # noqa: S608 (static)


async def sync_state(connection: Connection, shop: str, resource: SyncResource) -> SyncState:
    row = await connection.fetchrow(_SYNC_STATE, shop, CLOCK_SKEW.total_seconds(), resource.value)
    if row is None:
        return SyncState(None, None)
    return SyncState(row["watermark"], row["full_sync_completed_at"], row["watermark_broken"])


_UPSERT_STATE = """
INSERT INTO sync_state AS s (shop_id, resource, watermark, full_sync_completed_at,
                             last_success_at, last_failure_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (shop_id, resource) DO UPDATE
SET watermark = greatest(s.watermark, EXCLUDED.watermark),
    full_sync_completed_at = coalesce(EXCLUDED.full_sync_completed_at, s.full_sync_completed_at),
    last_success_at = coalesce(EXCLUDED.last_success_at, s.last_success_at),
    last_failure_at = coalesce(EXCLUDED.last_failure_at, s.last_failure_at)
"""


async def advance_watermark(
    tx: Transaction | Connection, shop: str, resource: SyncResource, watermark: datetime
) -> None:
    """Move the watermark forward (never back), in the transaction that applied the page."""
    await tx.execute(_UPSERT_STATE, shop, resource.value, watermark, None, None, None)


async def record_outcome(
    database: Database,
    shop: str,
    resource: SyncResource,
    *,
    succeeded: bool,
    full_sync_watermark: datetime | None = None,
) -> None:
    """After a resource's sync: when it last succeeded or failed, and a finished full sync."""
    async with database.connection() as connection:
        now = await connection.fetchval("SELECT now()")
        await connection.execute(
            _UPSERT_STATE,
            shop,
            resource.value,
            full_sync_watermark,
            now if full_sync_watermark is not None else None,
            now if succeeded else None,
            None if succeeded else now,
        )


async def get_run(connection: Connection, run_id: UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await connection.fetchrow(
        f"SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = $1",  # noqa: S608
        run_id,
    )
    return row


async def recent_runs(connection: Connection, shop: str, limit: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await connection.fetch(
        f"SELECT {RUN_COLUMNS} FROM sync_runs WHERE shop_id = $1"  # noqa: S608
        " ORDER BY started_at DESC, id DESC LIMIT $2",
        shop,
        limit,
    )
    return rows
