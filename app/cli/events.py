"""`python -m app events`: recorded deliveries, newest first, as a table.

`python -m app events relay`: customer events to NATS JetStream (app/outbox/relay.py).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from typing import Any, TextIO

from app.admin_api.events import EventFilter, list_events
from app.cli.database import database_url, started_database
from app.cli.filters import event_filter
from app.config import Settings
from app.webhooks.recorded import Event

COLUMNS = ("received_at", "shop_id", "topic", "status", "attempts", "webhook_id", "last_error")


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "relay":
        from app.cli.relay import run_relay

        return run_relay(settings)
    with database_url(settings) as url:
        rows = asyncio.run(_events(settings, url, event_filter(args), args.limit))
    _print_table(rows, sys.stdout)
    return 0


async def _events(settings: Settings, url: str, where: EventFilter, limit: int) -> list[Event]:
    async with started_database(settings, url) as database, database.connection() as connection:
        page = await list_events(connection, where, limit=limit)
    return page.events


def _print_table(rows: list[Event], out: TextIO) -> None:
    cells = [[_cell(getattr(row, column)) for column in COLUMNS] for row in rows]
    widths = [max([len(name), *(len(line[i]) for line in cells)]) for i, name in enumerate(COLUMNS)]
    for line in [list(COLUMNS), *cells]:
        out.write("  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)))
        out.write("\n")


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    text = "" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
