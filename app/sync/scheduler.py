"""Every shop with credentials, synced on a schedule (`python -m app sync --all --every N`).

Each shop gets its own phase (a jitter derived from its domain, plus a little
randomness each round), so thousands of shops do not all call Shopify, and
hit the database, in the same second. Shops run one after another: the
database work of a sync is what it costs, and one runner per replica keeps
that bounded; run more replicas for more shops (the lease keeps them apart).

One shop's failure never stops the schedule: a run records its own failure
(app/sync/runner.py), and whatever escapes a shop's turn is logged and the
schedule goes on with the next shop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time

from app.access.credentials import shops_to_sync
from app.db.database import DatabaseUnavailable
from app.db.enums import SyncRunStatus
from app.sync.runner import SyncRefused, SyncRequest, SyncRunner
from app.sync.runs import RunInProgress

log = logging.getLogger("app.sync")

# A new shop's first run comes within this many seconds (or the interval, if shorter).
FIRST_RUN_WITHIN = 60.0
# How often the list of shops is read again (new credentials, uninstalls).
RESCAN_SECONDS = 30.0
# How often refresh tokens close to their 90-day end are looked for (app/access/tokens.py).
KEEP_ALIVE_SECONDS = 3600.0


async def sync_all_once(runner: SyncRunner) -> list[str]:
    """Sync every shop once; returns the shops whose run did not succeed."""
    await _keep_refresh_tokens_alive(runner)
    failed = []
    for shop in await shops_to_sync(runner.database):
        if await _sync(runner, shop) is not SyncRunStatus.succeeded:
            failed.append(shop)
    return failed


async def run_every(runner: SyncRunner, every: float) -> None:
    """Sync each shop every `every` seconds until cancelled."""
    due: dict[str, float] = {}
    kept_alive_at = -KEEP_ALIVE_SECONDS
    while True:
        if time.monotonic() - kept_alive_at >= KEEP_ALIVE_SECONDS:
            kept_alive_at = time.monotonic()
            await _keep_refresh_tokens_alive(runner)
        try:
            shops = await shops_to_sync(runner.database)
        except Exception as error:  # the database away, or worse: the schedule waits and goes on
            log.warning(
                "sync schedule: shops not read",
                extra={"fields": {"error": type(error).__name__, "reason": str(error)[:200]}},
            )
            await asyncio.sleep(RESCAN_SECONDS)
            continue
        now = time.monotonic()
        due = {
            shop: due.get(shop, now + _phase(shop, min(every, FIRST_RUN_WITHIN))) for shop in shops
        }
        for shop in sorted(due, key=due.__getitem__):
            if due[shop] > time.monotonic():
                break
            await _sync(runner, shop)
            due[shop] = time.monotonic() + every * random.uniform(0.9, 1.1)  # noqa: S311
        next_due = min(due.values(), default=time.monotonic() + RESCAN_SECONDS)
        await asyncio.sleep(max(0.5, min(next_due - time.monotonic(), RESCAN_SECONDS)))


async def _sync(runner: SyncRunner, shop: str) -> SyncRunStatus | None:
    try:
        _, status = await runner.sync(SyncRequest(shop=shop))
    except RunInProgress:
        return SyncRunStatus.succeeded  # another runner has it in hand
    except (SyncRefused, DatabaseUnavailable) as error:
        log.warning("sync skipped", extra={"fields": {"shop": shop, "reason": str(error)}})
        return None
    except Exception as error:  # the next shop's turn comes whatever happened in this one
        log.error(
            "sync of a shop failed unexpectedly",
            extra={"fields": {"shop": shop, "error": type(error).__name__}},
        )
        return None
    return status


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
