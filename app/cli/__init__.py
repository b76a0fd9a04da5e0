"""Command line: `python -m app serve | migrate | replay | events`.

Each command lives in its own module, imported only when it runs: `migrate`
(run before every deployment and by the tests) does not load the web stack.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from datetime import datetime

from app.config import ConfigError, load_settings
from app.db.enums import DeliveryStatus
from app.operations.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.log_level)
        command = importlib.import_module(f"app.cli.{args.command}")
        exit_code: int = command.run(settings, args)
        return exit_code
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
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
    return root


def _add_filters(command: argparse.ArgumentParser) -> None:
    command.add_argument("--shop", help="shop domain, e.g. example.myshopify.com")
    command.add_argument("--topic", help="e.g. orders/create")
    command.add_argument("--status", choices=[status.value for status in DeliveryStatus])
    command.add_argument("--since", type=datetime.fromisoformat, help="received at or after")
    command.add_argument("--until", type=datetime.fromisoformat, help="received before")
    command.add_argument("--webhook-id", dest="webhook_ids", action="append", default=[])
