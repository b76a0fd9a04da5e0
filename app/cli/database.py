"""The database a command works on: DATABASE_URL, or the embedded development server.

Only the database: `migrate`, run before every deployment, loads nothing more
(the shops' tokens are in tokens.py, the ledger's filter in filters.py).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from app.config import Settings
from app.db.database import Database
from app.db.embedded import embedded_postgres


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
        apply_migrations()
        yield url


def apply_migrations() -> list[str] | None:
    """Apply the migrations; on Citus, the tables distributed now (None: plain PostgreSQL)."""
    from app.db.migrations import apply_migrations

    return asyncio.run(apply_migrations())


@asynccontextmanager
async def started_database(settings: Settings, url: str) -> AsyncIterator[Database]:
    """A small pool for one command; statements may take longer than in the service."""
    database = Database.from_settings(
        settings,
        url,
        # A sync applies two batches at once while it reads the next.
        pool_size=4,
        acquire_timeout=settings.db_connect_timeout + settings.db_acquire_timeout,
        statement_timeout=max(settings.db_statement_timeout, 60.0),
    )
    await database.start()
    try:
        yield database
    finally:
        await database.stop()
