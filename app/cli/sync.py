"""`python -m app sync`: sync one shop now, or every shop with credentials on a schedule.

    python -m app sync --shop example.myshopify.com [--full] [--resources customers,orders]
    python -m app sync --all [--every SECONDS]

One shop: a progress line on a terminal, a one-line summary, exit 0 when the
run succeeded (1 otherwise, a partial run included). A run that finds another
run of the shop in progress does nothing, says so and exits 0. Shops with
stored tokens but no TOKEN_ENCRYPTION_KEY to read them: a one-line error and
exit 2 (with --every: said at start, and the schedule runs on without them,
rather than a service restarting again and again). --every says at start what
it will do, and when no shop has credentials yet.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager, suppress
from typing import Any, TextIO

from app.access.cipher import TokenKeyMissing
from app.access.credentials import shops_to_sync
from app.cli.database import database_url
from app.cli.tokens import token_service
from app.config import Settings
from app.db.enums import SyncRunStatus
from app.sync.runner import SyncRefused, SyncRequest, SyncRunner
from app.sync.runs import Run, RunInProgress
from app.sync.scheduler import FIRST_RUN_WITHIN, RESCAN_SECONDS, run_every, sync_all_once


def run(settings: Settings, args: argparse.Namespace) -> int:
    with database_url(settings) as url:
        return asyncio.run(_main(settings, url, args))


async def _main(settings: Settings, url: str, args: argparse.Namespace) -> int:
    async with _runner(settings, url) as runner:
        if args.all:
            shops = await shops_to_sync(runner.database)
            unreadable = bool(shops) and not runner.tokens.cipher.configured
            if unreadable:
                print(
                    f"error: {TokenKeyMissing()} ({len(shops)} shop(s) have stored tokens)",
                    file=sys.stderr,
                    flush=True,
                )
                if args.every is None:
                    return 2
            if args.every is None:
                failed = await sync_all_once(runner)
                return 1 if failed else 0
            await until_stopped(run_every(runner, args.every), _plan(len(shops), args.every))
            return 0
        request = SyncRequest(shop=args.shop, full=args.full, resources=args.resources)
        return await _sync_one(runner, request)


@asynccontextmanager
async def _runner(settings: Settings, url: str) -> AsyncIterator[SyncRunner]:
    async with token_service(settings, url) as tokens:
        tokens.database.give_the_pool_to_sync()
        yield SyncRunner(tokens.database, settings, tokens.http, tokens)


async def _sync_one(runner: SyncRunner, request: SyncRequest) -> int:
    progress = _ProgressLine(sys.stderr)
    try:
        run, status = await runner.sync(request, progress.show)
    except RunInProgress as busy:
        print(f"{request.shop}: another sync is running (run {busy.run_id}); nothing done")
        return 0
    except SyncRefused as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2 if refused.key_missing else 1
    progress.finish()
    print(_summary(run, status))
    return 0 if status is SyncRunStatus.succeeded else 1


def _plan(shops: int, every: float) -> str:
    """What `--every` is going to do, said at start."""
    schedule = (
        f"each shop with credentials every {every:g} s (a new shop's first run within"
        f" {min(every, FIRST_RUN_WITHIN):g} s; the list is read again every {RESCAN_SECONDS:g} s)"
    )
    if not shops:
        return f"sync: no shop has credentials yet; then: {schedule}"
    return f"sync: {shops} shop(s) with credentials; {schedule}"


async def until_stopped(work: Coroutine[Any, Any, None], plan: str | None = None) -> None:
    """Runs the schedule until SIGTERM or SIGINT; a run in progress is recorded as interrupted.

    The plan, if any, is said once the signals are handled: whoever reads it may stop the schedule.
    """
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for stop in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stop, task.cancel)
    if plan is not None:
        print(plan, flush=True)
    with suppress(asyncio.CancelledError):
        await task


def _summary(run: Run, status: SyncRunStatus) -> str:
    counts = run.counts
    notes = f" ({'; '.join(run.notes)})" if run.notes else ""
    return (
        f"{run.shop}: {run.kind.value} sync of {run.resource} {status.value} (run {run.id}): "
        f"fetched {counts.fetched}, applied {counts.applied}, stale {counts.stale}, "
        f"failed {counts.failed}, deleted {counts.deleted}{notes}"
    )


class _ProgressLine:
    """One line, rewritten in place on a terminal: counts so far and the rate."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.shown = 0.0

    def show(self, run: Run) -> None:
        now = time.monotonic()
        if not self.stream.isatty() or now - self.shown < 0.2:
            return
        self.shown = now
        counts = run.counts
        rate = (counts.applied + counts.stale) / max(now - self.started, 1e-9)
        self.stream.write(
            f"\r{run.shop} {run.resource}: fetched {counts.fetched}, applied {counts.applied}, "
            f"stale {counts.stale}, failed {counts.failed} ({rate:.0f}/s) "
        )
        self.stream.flush()

    def finish(self) -> None:
        if self.stream.isatty() and self.shown:
            self.stream.write("\n")
