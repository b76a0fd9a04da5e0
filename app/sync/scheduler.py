"""Every shop with credentials, synced on a schedule (`python -m app sync --all --every N`).

Shops run side by side, up to SYNC_CONCURRENCY at once: a sync mostly waits
on Shopify (round trips, a bulk export), and Shopify's rate limits are per app
and shop. Each shop holds at most one slot; when a slot frees, the shop due
longest ago takes it. Each shop gets its own phase (a jitter derived from its
domain, plus a little randomness each round), so thousands of shops do not all
call Shopify, and hit the database, in the same second. The database's share
is bounded apart from the slots: sync batches take turns for the process's
share of its pool (Database.sync_turn: the `sync` command's whole pool, a
quarter of the web service's), and a run waiting on Shopify holds no
connection.
The lease (app/sync/runs.py) still keeps one run per shop across replicas.

A shop's failure of any kind (refused credentials, Shopify or the database
failing, a bug, a run past its deadline) is recorded as a failed run with its
reason and never stops the other shops or the scheduler: a run records its own
failure (app/sync/runner.py, SYNC_RUN_DEADLINE_SECONDS included); what escapes
it, or a run still going a while past that deadline, is recorded here.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time

from app.access.credentials import shops_to_sync
from app.db.database import DatabaseUnavailable, describe_error
from app.db.enums import SyncRunStatus
from app.sync.runner import SyncRefused, SyncRequest, SyncRunner
from app.sync.runs import Run, RunError, RunInProgress, record_failure

log = logging.getLogger("app.sync")

# A new shop's first run comes within this many seconds (or the interval, if shorter).
FIRST_RUN_WITHIN = 60.0
# How often the list of shops is read again (new credentials, uninstalls).
RESCAN_SECONDS = 30.0
# How often refresh tokens close to their 90-day end are looked for (app/access/tokens.py).
KEEP_ALIVE_SECONDS = 3600.0
# How long past its own deadline a run may take to record its end before the
# scheduler stops it and records it (its slot is freed either way).
DEADLINE_GRACE_SECONDS = 30.0


async def sync_all_once(runner: SyncRunner, concurrency: int | None = None) -> list[str]:
    """Sync every shop once, side by side; returns the shops whose run did not succeed."""
    await _keep_refresh_tokens_alive(runner)
    slots = asyncio.Semaphore(concurrency or runner.settings.sync_concurrency)

    async def one(shop: str) -> SyncRunStatus | None:
        async with slots:
            return await sync_shop(runner, shop)

    shops = await shops_to_sync(runner.database)
    statuses = await asyncio.gather(*(one(shop) for shop in shops))
    return [
        shop
        for shop, status in zip(shops, statuses, strict=True)
        if status is not SyncRunStatus.succeeded
    ]


async def run_every(runner: SyncRunner, every: float, concurrency: int | None = None) -> None:
    """Sync each shop every `every` seconds, up to `concurrency` at once, until cancelled."""
    slots = concurrency or runner.settings.sync_concurrency
    due: dict[str, float] = {}
    running: dict[asyncio.Task[SyncRunStatus | None], str] = {}
    kept_alive_at = scanned_at = -max(KEEP_ALIVE_SECONDS, RESCAN_SECONDS)
    try:
        while True:
            if time.monotonic() - kept_alive_at >= KEEP_ALIVE_SECONDS:
                kept_alive_at = time.monotonic()
                await _keep_refresh_tokens_alive(runner)
            if time.monotonic() - scanned_at >= RESCAN_SECONDS:
                scanned_at = time.monotonic()
                due = await _rescan(runner, due, min(every, FIRST_RUN_WITHIN))
            busy = set(running.values())
            waiting = sorted((s for s in due if s not in busy), key=due.__getitem__)
            for shop in waiting[: max(0, slots - len(running))]:
                if due[shop] > time.monotonic():
                    break
                running[asyncio.create_task(sync_shop(runner, shop))] = shop
            next_due = min((due[s] for s in waiting if s not in running.values()), default=None)
            wake = scanned_at + RESCAN_SECONDS
            if next_due is not None and len(running) < slots:
                wake = min(wake, next_due)
            timeout = max(0.5, wake - time.monotonic())
            if not running:
                await asyncio.sleep(timeout)
                continue
            done, _ = await asyncio.wait(
                running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                shop = running.pop(task)
                if shop in due:
                    due[shop] = time.monotonic() + every * random.uniform(0.9, 1.1)  # noqa: S311
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


async def _rescan(runner: SyncRunner, due: dict[str, float], spread: float) -> dict[str, float]:
    """The shops to sync now: known ones keep their due time, new ones get their phase."""
    try:
        shops = await shops_to_sync(runner.database)
    except Exception as error:  # the database away, or worse: the schedule waits and goes on
        log.warning(
            "sync schedule: shops not read",
            extra={"fields": {"error": type(error).__name__, "reason": str(error)[:200]}},
        )
        return due
    now = time.monotonic()
    return {shop: due.get(shop, now + _phase(shop, spread)) for shop in shops}


async def sync_shop(runner: SyncRunner, shop: str) -> SyncRunStatus | None:
    """One run of the shop, within its deadline; never raises (but when cancelled).

    Returns the run's status; None when no run could be made (its credentials
    are unusable, the database was unavailable).
    """
    try:
        started = await runner.begin(SyncRequest(shop=shop))
    except RunInProgress:
        return SyncRunStatus.succeeded  # another runner has it in hand
    except (SyncRefused, DatabaseUnavailable) as error:
        log.warning("sync skipped", extra={"fields": {"shop": shop, "reason": str(error)}})
        return None
    except Exception as error:
        log.exception("sync could not start", extra={"fields": {"shop": shop}})
        log.warning("sync skipped", extra={"fields": {"shop": shop, "reason": repr(error)}})
        return None
    run = started.run
    deadline = runner.settings.sync_run_deadline_seconds + DEADLINE_GRACE_SECONDS
    try:
        async with asyncio.timeout(deadline):
            return await runner.execute(started)
    except TimeoutError:
        reason = RunError(
            f"stopped: still running after its deadline of {deadline:g} s", "deadline"
        )
    except Exception as error:
        log.exception("sync run crashed", extra={"fields": {"shop": shop, "run_id": str(run.id)}})
        reason = RunError(f"crashed: {describe_error(error)}", "crashed")
    await _record(runner, run, reason)
    return SyncRunStatus.failed


async def _record(runner: SyncRunner, run: Run, reason: RunError) -> None:
    """The run's failure and its reason, over whatever the run recorded as it ended."""
    log.warning(
        "sync run failed",
        extra={
            "fields": {
                "shop": run.shop,
                "run_id": str(run.id),
                "error": reason.message,
                "error_kind": reason.kind,
            }
        },
    )
    try:
        await record_failure(runner.database, run, reason)
    except DatabaseUnavailable as error:
        log.warning("sync failure not recorded", extra={"fields": {"error": str(error)}})


async def _keep_refresh_tokens_alive(runner: SyncRunner) -> None:
    """Refresh the shops whose refresh token nears its end, even if nothing needs them."""
    try:
        renewed = await runner.tokens.keep_refresh_tokens_alive()
    except Exception as error:  # never a reason to stop the schedule
        log.warning(
            "refresh tokens not checked",
            extra={"fields": {"error": type(error).__name__, "reason": str(error)[:200]}},
        )
        return
    if renewed:
        log.info("refresh tokens renewed", extra={"fields": {"shops": renewed}})


def _phase(shop: str, spread: float) -> float:
    """A stable offset in [0, spread) for this shop."""
    digest = hashlib.sha256(shop.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * spread
