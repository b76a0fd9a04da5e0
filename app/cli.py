"""Command line: `python -m app serve | migrate`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from app.config import ConfigError, Settings, load_settings
from app.db.embedded import embedded_postgres
from app.operations.logs import configure_logging, server_logging_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("serve", help="run the HTTP service (HOST, PORT, WEB_CONCURRENCY)")
    commands.add_parser("migrate", help="apply pending database migrations")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.log_level)
        return COMMANDS[args.command](settings, args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


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


def serve(settings: Settings, args: argparse.Namespace) -> int:
    settings.require_secret()
    with database_url(settings):
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


def migrate(settings: Settings, args: argparse.Namespace) -> int:
    with database_url(settings) as url:
        if url == settings.database_url:
            _migrate()
    return 0


def _migrate() -> None:
    from app.db.migrations import apply_migrations

    asyncio.run(apply_migrations())


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "serve": serve,
    "migrate": migrate,
}
