"""Command line: `python -m app COMMAND`: serve, migrate, replay, events (and events relay),
sync, scores, shops, subscriptions, console, standin.

Each command lives in its own module, imported only when it runs: `migrate`
(run before every deployment and by the tests) does not load the web stack.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from datetime import datetime
from typing import Any

from app.config import ConfigError, load_settings
from app.db.enums import DeliveryStatus, SyncResource
from app.observability.logs import configure_logging
from app.shopify.domains import shop_domain


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
    events = commands.add_parser(
        "events", help="list recorded deliveries, newest first (or: events relay)"
    )
    _add_filters(events)
    events.add_argument("--event-id", help="X-Shopify-Event-Id")
    events.add_argument("--limit", type=int, default=50)
    relay = events.add_subparsers(dest="action", metavar="ACTION")
    relay.add_parser(
        "relay",
        help="publish customer events to NATS JetStream (EVENTS_NATS_URL) until stopped",
    )
    _add_sync(commands)
    _add_scores(commands)
    _add_shops(commands)
    _add_subscriptions(commands)
    _add_console(commands)
    _add_standin(commands)
    _add_db(commands)
    return root


def _add_sync(commands: Any) -> None:
    sync = commands.add_parser("sync", help="fetch customers and orders through the Admin API")
    which = sync.add_mutually_exclusive_group(required=True)
    which.add_argument("--shop", type=shop_argument, help="the shop to sync now")
    which.add_argument("--all", action="store_true", help="every shop with credentials")
    sync.add_argument("--full", action="store_true", help="the whole history (bulk operations)")
    sync.add_argument(
        "--resources",
        type=_resources,
        default=tuple(SyncResource),
        help="comma-separated: customers,orders (default: both)",
    )
    sync.add_argument(
        "--every", type=_seconds, help="with --all: run on this schedule (seconds) until stopped"
    )


def _add_scores(commands: Any) -> None:
    scores = commands.add_parser(
        "scores", help="recompute customers' RFM scores and segments (announcing segment changes)"
    )
    which = scores.add_mutually_exclusive_group(required=True)
    which.add_argument("--shop", type=shop_argument, help="the shop to score now")
    which.add_argument("--all", action="store_true", help="every shop")
    scores.add_argument(
        "--every", type=_seconds, help="with --all: score on this schedule (seconds) until stopped"
    )


def _add_shops(commands: Any) -> None:
    shops = commands.add_parser("shops", help="the shops' Admin API access (tokens, migration)")
    actions = shops.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="each shop's token kind, expiries and state (never a token)")
    set_token = actions.add_parser("set-token", help="store a token read from standard input")
    set_token.add_argument("shop", type=shop_argument)
    set_token.add_argument(
        "--scope",
        default=None,
        help="granted scopes, e.g. read_customers,read_orders,read_all_orders",
    )
    delete_token = actions.add_parser("delete-token", help="delete a shop's credentials")
    delete_token.add_argument("shop", type=shop_argument)
    actions.add_parser("rotate-keys", help="re-encrypt every token with the first key")
    migrate = actions.add_parser(
        "migrate-tokens",
        help="turn non-expiring offline tokens into expiring ones (token exchange)",
    )
    migrate.add_argument("--shop", type=shop_argument, help="only this shop (default: all)")


def _add_subscriptions(commands: Any) -> None:
    subscriptions = commands.add_parser(
        "subscriptions", help="a shop's webhook subscriptions (PUBLIC_URL, WEBHOOK_TOPICS)"
    )
    actions = subscriptions.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check", help="compare the shop's subscriptions with the topics the service needs"
    )
    check.add_argument("--shop", type=shop_argument, required=True, help="the shop to check")
    check.add_argument(
        "--fix", action="store_true", help="create the missing subscriptions (never deletes)"
    )
    check.add_argument("--json", action="store_true", help="print the whole report as JSON")


def _add_console(commands: Any) -> None:
    console = commands.add_parser(
        "console", help="users of the operator console (password on standard input)"
    )
    actions = console.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create-user", help="create a user who can log in to /admin/")
    create.add_argument("username")
    create.add_argument("--email", required=True, help="the user's email address")
    password = actions.add_parser("set-password", help="change a password; ends its sessions")
    password.add_argument("username")
    delete = actions.add_parser("delete-user", help="delete a user and their sessions")
    delete.add_argument("username")
    actions.add_parser("list-users", help="list the console's users")


def _add_standin(commands: Any) -> None:
    standin = commands.add_parser(
        "standin",
        help="serve a stand-in Shopify with a demo shop on a loopback port (development)",
    )
    standin.add_argument("--port", type=int, default=8001)
    standin.add_argument("--shop", type=shop_argument, default="demo.myshopify.com")
    standin.add_argument("--customers", type=int, default=50)
    standin.add_argument("--orders", type=int, default=200)
    standin.add_argument(
        "--activity",
        type=float,
        default=0,
        help="seconds between new demo orders, delivered as webhooks (default: none)",
    )


def _add_db(commands: Any) -> None:
    db = commands.add_parser(
        "db", help="the SQL functions' migrations, the schema dump, the tables' distribution"
    )
    actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    freeze = actions.add_parser(
        "freeze-functions",
        help="write the migration for the functions changed in app/db/functions/",
    )
    freeze.add_argument("description", help="what changed, for the migration")
    actions.add_parser(
        "dump-schema",
        help="write migrations/schema.sql: a scratch database migrated on DATABASE_URL's server",
    )
    actions.add_parser(
        "distribution",
        help="each table and how it is placed: distributed by shop_id, reference, or local",
    )


def shop_argument(value: str) -> str:
    domain = shop_domain(value)
    if domain is None:
        raise argparse.ArgumentTypeError(f"{value!r} is not a *.myshopify.com domain")
    return domain


def _resources(value: str) -> tuple[SyncResource, ...]:
    try:
        chosen = {SyncResource(part.strip()) for part in value.split(",") if part.strip()}
    except ValueError:
        raise argparse.ArgumentTypeError("resources are customers and/or orders") from None
    # Customers first: orders then find their customers' rows complete.
    return tuple(resource for resource in SyncResource if resource in chosen)


def _seconds(value: str) -> float:
    seconds = float(value)
    if not 0 < seconds < 86400 * 7:
        raise argparse.ArgumentTypeError("seconds must be above 0 and below a week")
    return seconds


def _add_filters(command: argparse.ArgumentParser) -> None:
    command.add_argument("--shop", help="shop domain, e.g. example.myshopify.com")
    command.add_argument("--topic", help="e.g. orders/create")
    command.add_argument("--status", choices=[status.value for status in DeliveryStatus])
    command.add_argument("--since", type=datetime.fromisoformat, help="received at or after")
    command.add_argument("--until", type=datetime.fromisoformat, help="received before")
    command.add_argument("--webhook-id", dest="webhook_ids", action="append", default=[])
