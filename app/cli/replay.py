"""`python -m app replay`: apply stored deliveries again, page after page, with progress."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import TextIO

from app.admin_api.events import EventFilter
from app.admin_api.replay import MAX_REPLAY_LIMIT, ReplayReport, replay_deliveries
from app.cli.database import database_url, started_database
from app.cli.filters import event_filter
from app.config import Settings

_COUNTS = ("matched", "processed", "stale", "failed", "ignored", "missing")


def run(settings: Settings, args: argparse.Namespace) -> int:
    where = event_filter(args)
    if where.matches_everything():
        print("error: say which deliveries: --id, --webhook-id or a filter", file=sys.stderr)
        return 2
    with database_url(settings) as url:
        report = asyncio.run(_replay_all(settings, url, where, args))
    _print_summary(report, sys.stdout)
    return 1 if report.failed else 0


async def _replay_all(
    settings: Settings, url: str, where: EventFilter, args: argparse.Namespace
) -> ReplayReport:
    total = ReplayReport(dry_run=args.dry_run)
    progress = _Progress(sys.stderr)
    async with started_database(settings, url) as database:
        cursor = None
        while args.limit is None or total.matched < args.limit:
            page_size = MAX_REPLAY_LIMIT
            if args.limit is not None:
                page_size = min(page_size, args.limit - total.matched)
            page = await replay_deliveries(
                database,
                where,
                limit=page_size,
                cursor=cursor,
                dry_run=args.dry_run,
                on_progress=lambda page: progress.show(total, page),
            )
            for name in _COUNTS:
                setattr(total, name, getattr(total, name) + getattr(page, name))
            total.failed_ids += page.failed_ids
            cursor = page.next_cursor
            if cursor is None:
                break
    progress.finish()
    return total


class _Progress:
    """One line, rewritten in place on a terminal: counts so far and the rate."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.shown = 0.0

    def show(self, total: ReplayReport, page: ReplayReport) -> None:
        now = time.monotonic()
        if not self.stream.isatty() or now - self.shown < 0.2:
            return
        self.shown = now
        done = total.done + page.done
        rate = done / max(now - self.started, 1e-9)
        self.stream.write(
            f"\rreplayed {done} (processed {total.processed + page.processed}, "
            f"stale {total.stale + page.stale}, failed {total.failed + page.failed}, "
            f"ignored {total.ignored + page.ignored}) {rate:.0f}/s "
        )
        self.stream.flush()

    def finish(self) -> None:
        if self.stream.isatty() and self.shown:
            self.stream.write("\n")


def _print_summary(report: ReplayReport, out: TextIO) -> None:
    verb = "would replay" if report.dry_run else "replayed"
    out.write(
        f"{verb} {report.matched}: processed {report.processed}, stale {report.stale}, "
        f"failed {report.failed}, ignored {report.ignored}, missing {report.missing}\n"
    )
    for delivery_id in report.failed_ids:
        out.write(f"failed: {delivery_id}\n")
