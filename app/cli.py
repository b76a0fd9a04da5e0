"""Command line: `python -m app serve | migrate | replay | events`."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any, TextIO

from app.config import ConfigError, Settings, load_settings
from app.db.database import Database
from app.db.embedded import embedded_postgres
from app.db.engine import create_engine
from app.db.enums import DeliveryStatus
from app.operations.events import EventFilter, list_events
from app.operations.logs import configure_logging, server_logging_config
from app.operations.replay import MAX_REPLAY_LIMIT, ReplayReport, replay_deliveries


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.log_level)
        return COMMANDS[args.command](settings, args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("serve", help="run the HTTP service (HOST, PORT, WEB_CONCURRENCY)")
    commands.add_parser("migrate", help="apply pending database migrations")
    replay = commands.add_parser("replay", help="apply stored deliveries again")
    _add_filters(replay)
    replay.add_argument("--id", dest="ids", action="append", default=[], help="ledger row id")
    replay.add_argument("--limit", type=int, help="replay at most this many (default: all)")
    replay.add_argument("--dry-run", action="store_true", help="only count what would replay")
    events = commands.add_parser("events", help="list recorded deliveries, newest first")
    _add_filters(events)
    events.add_argument("--event-id", help="X-Shopify-Event-Id")
    events.add_argument("--limit", type=int, default=50)
    return parser


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shop", help="shop domain, e.g. example.myshopify.com")
    parser.add_argument("--topic", help="e.g. orders/create")
    parser.add_argument("--status", choices=[status.value for status in DeliveryStatus])
    parser.add_argument("--since", type=datetime.fromisoformat, help="received at or after")
    parser.add_argument("--until", type=datetime.fromisoformat, help="received before")
    parser.add_argument("--webhook-id", dest="webhook_ids", action="append", default=[])


def _filter(args: argparse.Namespace) -> EventFilter:
    return EventFilter(
        shop=args.shop,
        topic=args.topic,
        status=DeliveryStatus(args.status) if args.status else None,
        since=args.since,
        until=args.until,
        webhook_ids=args.webhook_ids,
        event_id=getattr(args, "event_id", None),
        ids=getattr(args, "ids", []),
    )


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """DATABASE_URL, or a migrated embedded PostgreSQL when it is not set.

    The URL is also put into the environment, where piccolo_conf.py and the
    server's worker processes read it.
    """
    if settings.database_url:
        yield settings.database_url
        return
    with embedded_postgres(settings.data_dir) as url:
        os.environ["DATABASE_URL"] = url
        _migrate()
        yield url


# --- serve, migrate ---------------------------------------------------------


def serve(settings: Settings, args: argparse.Namespace) -> int:
    settings.require_secret()
    with database_url(settings), _metrics_directory():
        from granian import Granian
        from granian.constants import Interfaces, Loops

        Granian(
            "app.asgi:create_app",
            factory=True,
            address=settings.host,
            port=settings.port,
            interface=Interfaces.ASGI,
            workers=settings.workers,
            loop=Loops.uvloop,
            websockets=False,
            log_access=False,
            log_dictconfig=server_logging_config(),
        ).serve()
    return 0


@contextmanager
def _metrics_directory() -> Iterator[None]:
    """A fresh directory where every worker keeps its metrics (see app.operations.metrics)."""
    directory = tempfile.mkdtemp(prefix="shopify-ingest-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def migrate(settings: Settings, args: argparse.Namespace) -> int:
    with database_url(settings) as url:
        if url == settings.database_url:
            _migrate()
    return 0


def _migrate() -> None:
    from app.db.migrations import apply_migrations

    asyncio.run(apply_migrations())


# --- replay, events ---------------------------------------------------------


def replay(settings: Settings, args: argparse.Namespace) -> int:
    where = _filter(args)
    if where.matches_everything():
        print("error: say which deliveries: --id, --webhook-id or a filter", file=sys.stderr)
        return 2
    with database_url(settings) as url:
        report = asyncio.run(_replay_all(replace(settings, database_url=url), where, args))
    _print_summary(report, sys.stdout)
    return 1 if report.failed else 0


async def _replay_all(
    settings: Settings, where: EventFilter, args: argparse.Namespace
) -> ReplayReport:
    """Every matching delivery, page after page, with a progress line on stderr."""
    total = ReplayReport(dry_run=args.dry_run)
    progress = _Progress(sys.stderr)
    async with _database(settings) as database:
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
            _add(total, page)
            cursor = page.next_cursor
            if cursor is None:
                break
    progress.finish()
    return total


def _add(total: ReplayReport, page: ReplayReport) -> None:
    for name in ("matched", "processed", "stale", "failed", "ignored", "missing"):
        setattr(total, name, getattr(total, name) + getattr(page, name))
    total.failed_ids += page.failed_ids


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


def events(settings: Settings, args: argparse.Namespace) -> int:
    with database_url(settings) as url:
        page = asyncio.run(_events(replace(settings, database_url=url), _filter(args), args.limit))
    _print_table(page, sys.stdout)
    return 0


async def _events(settings: Settings, where: EventFilter, limit: int) -> list[dict[str, Any]]:
    async with _database(settings) as database, database.connection() as connection:
        page = await list_events(connection, where, limit=limit)
    return page.events


def _print_table(rows: list[dict[str, Any]], out: TextIO) -> None:
    columns = ("received_at", "shop_id", "topic", "status", "attempts", "webhook_id", "last_error")
    cells = [[_cell(row[column]) for column in columns] for row in rows]
    widths = [
        max([len(column), *(len(line[i]) for line in cells)]) for i, column in enumerate(columns)
    ]
    for line in [list(columns), *cells]:
        out.write("  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)))
        out.write("\n")


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    text = "" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[Database]:
    """A started Database for one command; statements may take longer than in the service."""
    database = Database(
        create_engine(settings.database_url, settings.db_connect_timeout),
        pool_size=2,
        acquire_timeout=settings.db_connect_timeout + settings.db_acquire_timeout,
        statement_timeout=max(settings.db_statement_timeout, 60.0),
    )
    await database.start()
    try:
        yield database
    finally:
        await database.stop()


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "serve": serve,
    "migrate": migrate,
    "replay": replay,
    "events": events,
}
