"""One sync run of one shop, from taking the lease to recording how it ended.

`SyncRunner.begin` checks the shop's credentials, takes its lease and records
a `running` run (fast: the HTTP endpoint answers 202 after it); `execute` does
the work: for each resource a full sync (the first time, until one has
succeeded, or when asked) or an incremental one, then records the outcome and
releases the lease. One JSON log line per run, one per page.

Whatever goes wrong inside a run ends it `failed` with the reason and its kind
(`sync_runs.error_kind`), including what nobody foresaw (`unexpected`, logged
with where it was raised); a run that passes SYNC_RUN_DEADLINE_SECONDS is
stopped and ends `failed` (`deadline`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx

from app.access.credentials import (
    ALL_ORDERS_SCOPE,
    Credentials,
    CredentialsKeyMissing,
    CredentialsUnusable,
    mark_needs_reauthorization,
    usable_credentials,
)
from app.access.tokens import TokenRefreshFailed, TokenService
from app.config import Settings
from app.db.database import Database, DatabaseUnavailable, is_database_failure
from app.db.enums import SyncKind, SyncResource, SyncRunStatus
from app.scores.scoring import score_shop
from app.shopify.bulk import DownloadLimits
from app.shopify.client import AdminClient
from app.shopify.errors import CredentialsRefused, ShopifyError
from app.sync.full import discard_abandoned, sync_fully
from app.sync.incremental import sync_incrementally
from app.sync.repair import repair_times
from app.sync.runs import (
    Run,
    RunError,
    begin_run,
    finish_run,
    record_outcome,
    renew_lease,
    save_progress,
    sync_state,
)

log = logging.getLogger("app.sync")

ALL_RESOURCES = (SyncResource.customers, SyncResource.orders)
# From this API version a shop may run several bulk queries at once (up to five).
PARALLEL_BULK_FROM = "2026-01"
PROGRESS_SAVE_SECONDS = 2.0
LIMITED_ORDERS_NOTE = (
    "the token lacks read_all_orders: Shopify showed only the last 60 days of orders"
)


class SyncRefused(Exception):
    """The shop cannot be synced now (no credentials, or Shopify refused them).

    `key_missing`: its tokens are stored but TOKEN_ENCRYPTION_KEY is not set
    (commands exit 2, as for any setting missing).
    """

    def __init__(self, reason: str, *, key_missing: bool = False) -> None:
        super().__init__(reason)
        self.key_missing = key_missing


@dataclass(frozen=True)
class SyncRequest:
    shop: str
    full: bool = False
    resources: tuple[SyncResource, ...] = ALL_RESOURCES


@dataclass
class Started:
    run: Run
    credentials: Credentials
    full_resources: frozenset[SyncResource]


ProgressCallback = Callable[[Run], None]


class SyncRunner:
    def __init__(
        self, database: Database, settings: Settings, http: httpx.AsyncClient, tokens: TokenService
    ) -> None:
        self.database = database
        self.settings = settings
        self.http = http
        self.tokens = tokens

    async def sync(
        self, request: SyncRequest, on_progress: ProgressCallback | None = None
    ) -> tuple[Run, SyncRunStatus]:
        """begin + execute. Raises RunInProgress when another run holds the shop."""
        started = await self.begin(request)
        status = await self.execute(started, on_progress)
        return started.run, status

    async def begin(self, request: SyncRequest) -> Started:
        credentials = await self._credentials(request.shop)
        full_resources = await self._needing_full_sync(request)
        kind = SyncKind.full if full_resources else SyncKind.incremental
        run = await begin_run(
            self.database, request.shop, kind, request.resources, self.settings.sync_lease_seconds
        )
        return Started(run, credentials, full_resources)

    async def _credentials(self, shop: str) -> Credentials:
        try:
            return await usable_credentials(self.database, self.tokens.cipher, shop)
        except CredentialsUnusable as error:
            key_missing = isinstance(error, CredentialsKeyMissing)
            raise SyncRefused(str(error), key_missing=key_missing) from None

    async def _needing_full_sync(self, request: SyncRequest) -> frozenset[SyncResource]:
        if request.full:
            return frozenset(request.resources)
        async with self.database.connection() as connection:
            states = {
                resource: await sync_state(connection, request.shop, resource)
                for resource in request.resources
            }
        return frozenset(
            resource
            for resource, state in states.items()
            if state.full_sync_completed_at is None or state.watermark_broken
        )

    async def execute(
        self, started: Started, on_progress: ProgressCallback | None = None
    ) -> SyncRunStatus:
        run = started.run
        client = AdminClient(
            self.http,
            shop=run.shop,
            tokens=self.tokens.for_shop(run.shop, started.credentials),
            base_url=self.settings.shopify_admin_base_url,
            api_version=self.settings.shopify_api_version,
        )
        progress = _Progress(self.database, client, on_progress)
        began = time.perf_counter()
        status, error = SyncRunStatus.succeeded, None
        lease = asyncio.create_task(self._keep_lease(run, asyncio.current_task()))
        deadline = asyncio.timeout(self.settings.sync_run_deadline_seconds)
        try:
            async with deadline:
                await discard_abandoned(self.database, run.shop, run.id)
                if not all(await self._sync_resources(started, client, progress)):
                    status = SyncRunStatus.partial
        except TimeoutError as failure:
            status = SyncRunStatus.failed
            if deadline.expired():
                error = _past_deadline(self.settings)
            else:  # a database call that timed out
                error = RunError(str(failure) or "a database call timed out", "database")
        except CredentialsRefused as failure:
            status, error = SyncRunStatus.failed, RunError(str(failure), failure.kind)
            await mark_needs_reauthorization(self.database, run.shop, str(failure))
        except ShopifyError as failure:
            status, error = SyncRunStatus.failed, RunError(str(failure), failure.kind)
        except DatabaseUnavailable as failure:
            status, error = SyncRunStatus.failed, RunError(str(failure), "database")
        except CredentialsUnusable as failure:
            status, error = SyncRunStatus.failed, RunError(str(failure), "credentials_unusable")
        except TokenRefreshFailed as failure:
            status, error = SyncRunStatus.failed, RunError(str(failure), "token_refresh_failed")
        except asyncio.CancelledError:
            status = SyncRunStatus.failed
            error = RunError("interrupted before it finished", "interrupted")
            raise
        except Exception as failure:  # a run must end recorded, whatever went wrong
            status, error = SyncRunStatus.failed, _unexpected(run, failure)
        finally:
            if deadline.expired():  # whatever the deadline's cancellation became on its way
                status, error = SyncRunStatus.failed, _past_deadline(self.settings)
            lease.cancel()
            await _shielded(finish_run(self.database, run, client.usage, status, error))
            _log_run(run, client, status, error, time.perf_counter() - began)
        if run.kind is SyncKind.full and status is not SyncRunStatus.failed:
            await self._score(run.shop)
        return status

    async def _sync_resources(
        self, started: Started, client: AdminClient, progress: _Progress
    ) -> list[bool]:
        """Each resource's sync, in order; full syncs side by side where the API allows
        several bulk operations per shop. Whether each got all its data."""
        resources = started.run.resources
        fully = [resource for resource in resources if resource in started.full_resources]
        if len(fully) < 2 or self.settings.shopify_api_version < PARALLEL_BULK_FROM:
            return [
                await self._sync_resource(started, client, resource, progress)
                for resource in resources
            ]
        return await _side_by_side(
            [self._sync_resource(started, client, resource, progress) for resource in resources]
        )

    async def _score(self, shop: str) -> None:
        """A full sync brings a shop's history: its customers are scored again at once."""
        try:
            await score_shop(self.database, shop, self.settings.new_customer_days)
        except Exception as error:  # the sync succeeded; the next scheduled pass scores them
            if not is_database_failure(error):
                raise
            log.warning(
                "scoring after the full sync failed",
                extra={"fields": {"shop": shop, "error": str(error)}},
            )

    async def _sync_resource(
        self, started: Started, client: AdminClient, resource: SyncResource, progress: _Progress
    ) -> bool:
        """Sync one resource; False when only part of its data could be had."""
        run, shop = started.run, started.run.shop
        try:
            if resource not in started.full_resources:
                await sync_incrementally(self.database, client, run, resource, progress)
                await record_outcome(self.database, shop, resource, succeeded=True)
                return True
            self._note_scope(started, resource)
            repaired = await repair_times(self.database, shop, resource)
            if repaired:
                run.notes.append(
                    f"{resource.value}: {repaired} stored rows had times in the future or out of"
                    " range; they were cleared and fetched again"
                )
            result = await sync_fully(
                self.database,
                client,
                self.http,
                run,
                resource,
                self._finished_signal(shop),
                progress,
                DownloadLimits(
                    deadline_seconds=self.settings.sync_bulk_download_seconds,
                    max_line_bytes=self.settings.sync_bulk_max_line_bytes,
                ),
                # Without read_all_orders the export shows only recent orders.
                reconcile=resource is not SyncResource.orders
                or ALL_ORDERS_SCOPE in started.credentials.scopes,
            )
        except BaseException:
            await _shielded(record_outcome(self.database, shop, resource, succeeded=False))
            raise
        await record_outcome(
            self.database,
            shop,
            resource,
            succeeded=result.complete,
            full_sync_watermark=result.snapshot_at if result.complete else None,
        )
        return result.complete

    def _note_scope(self, started: Started, resource: SyncResource) -> None:
        if resource is SyncResource.orders and ALL_ORDERS_SCOPE not in started.credentials.scopes:
            started.run.notes.append(LIMITED_ORDERS_NOTE)
            log.warning(
                "full sync without read_all_orders",
                extra={"fields": {"shop": started.run.shop, "run_id": str(started.run.id)}},
            )

    def _finished_signal(self, shop: str) -> Callable[[str], Awaitable[bool]]:
        """Whether Shopify's bulk_operations/finish webhook for the operation has arrived."""

        async def announced(operation_id: str) -> bool:
            async with self.database.connection() as connection:
                found: bool = await connection.fetchval(
                    "SELECT EXISTS (SELECT FROM webhook_events WHERE shop_id = $1"
                    " AND topic = 'bulk_operations/finish'"
                    " AND payload ->> 'admin_graphql_api_id' = $2)",
                    shop,
                    operation_id,
                )
            return found

        return announced

    async def _keep_lease(self, run: Run, worker: asyncio.Task[object] | None) -> None:
        """Renews the lease while the run works; stops the run if the lease was lost."""
        interval = self.settings.sync_lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                held = await renew_lease(self.database, run, self.settings.sync_lease_seconds)
            except DatabaseUnavailable:
                continue  # the lease outlives a short outage; try again
            if not held:
                log.error("sync lease lost", extra={"fields": {"run_id": str(run.id)}})
                if worker is not None:
                    worker.cancel()
                return


class _Progress:
    """Saves a run's counts every few seconds, and tells the caller (progress bar)."""

    def __init__(
        self, database: Database, client: AdminClient, callback: ProgressCallback | None
    ) -> None:
        self.database = database
        self.client = client
        self.callback = callback
        self.saved = time.monotonic()

    async def __call__(self, run: Run) -> None:
        if self.callback is not None:
            self.callback(run)
        if time.monotonic() - self.saved >= PROGRESS_SAVE_SECONDS:
            self.saved = time.monotonic()
            with contextlib.suppress(DatabaseUnavailable):
                await save_progress(self.database, run, self.client.usage)


def _past_deadline(settings: Settings) -> RunError:
    seconds = settings.sync_run_deadline_seconds
    return RunError(
        f"the run did not finish within {seconds:g} s (SYNC_RUN_DEADLINE_SECONDS)", "deadline"
    )


def _unexpected(run: Run, failure: BaseException) -> RunError:
    """A failure nobody foresaw: its type and where it was raised (never its text,
    which may quote the data), logged with the traceback's location for the developers."""
    frames = traceback.extract_tb(failure.__traceback__)
    where = f"{frames[-1].filename.rsplit('/app/', 1)[-1]}:{frames[-1].lineno}" if frames else "?"
    log.error(
        "sync run failed unexpectedly",
        extra={
            "fields": {
                "run_id": str(run.id),
                "shop": run.shop,
                "error": type(failure).__name__,
                "where": where,
            }
        },
    )
    return RunError(f"unexpected {type(failure).__name__} at {where}", "unexpected")


async def _side_by_side(work: list[Coroutine[Any, Any, bool]]) -> list[bool]:
    """Run side by side, each to its end; then the first failure, if any, is raised.

    A failing resource does not cancel the other: cancelled midway (in a token
    refresh, say), it would leave its work half done until it expired.
    """
    results = await asyncio.gather(*work, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [result for result in results if not isinstance(result, BaseException)]


async def _shielded(work: Awaitable[None]) -> None:
    """Finish bookkeeping even when the run is being cancelled."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def _log_run(
    run: Run, client: AdminClient, status: SyncRunStatus, error: RunError | None, seconds: float
) -> None:
    counts = run.counts
    level = logging.INFO if status is SyncRunStatus.succeeded else logging.WARNING
    log.log(
        level,
        "sync run %s",
        status.value,
        extra={
            "fields": {
                "run_id": str(run.id),
                "shop": run.shop,
                "kind": run.kind.value,
                "resource": run.resource,
                "status": status.value,
                "fetched": counts.fetched,
                "applied": counts.applied,
                "stale": counts.stale,
                "failed": counts.failed,
                "deleted": counts.deleted,
                "api_cost": client.usage.api_cost,
                "throttle_wait_s": round(client.usage.throttle_wait_seconds, 3),
                "duration_s": round(seconds, 3),
                "error": error and error.message,
                "error_kind": error and error.kind,
                "note": "; ".join(run.notes) or None,
            }
        },
    )
