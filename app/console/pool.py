"""The console's own database connections: few, and every wait and statement bounded.

Piccolo Admin runs its queries through Piccolo's engine (piccolo_conf.py's
`DB`, which every Piccolo table resolves to). In a worker with the console
enabled, that engine gets a pool of its own, apart from the pool deliveries
use: at most CONSOLE_POOL_SIZE connections, a wait for one bounded by
DB_ACQUIRE_TIMEOUT, and each statement by ADMIN_STATEMENT_TIMEOUT (asyncpg's
`command_timeout`, enforced by the client: no session setting, which
PgBouncer in transaction mode would not keep). However many operators click,
and however slow their queries, deliveries keep their connections.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from piccolo.engine.finder import engine_finder
from piccolo.engine.postgres import PostgresEngine

from app.config import Settings
from app.db.engine import connection_options


class BoundedPool:
    """An asyncpg pool whose `acquire()` waits at most `acquire_timeout` by default.

    Piccolo acquires its connections without a timeout; asyncpg raises
    TimeoutError when the wait runs out (answered 503).
    """

    def __init__(self, pool: asyncpg.Pool, acquire_timeout: float) -> None:
        self.pool = pool
        self.acquire_timeout = acquire_timeout

    def acquire(self, *, timeout: float | None = None) -> Any:
        return self.pool.acquire(timeout=self.acquire_timeout if timeout is None else timeout)

    def __getattr__(self, name: str) -> Any:  # release, close, get_size...
        return getattr(self.pool, name)


async def _no_reset(connection: asyncpg.Connection) -> None:
    """No reset query on release: the console sets no session state (see app/db/database.py)."""


def console_engine() -> PostgresEngine:
    """The engine Piccolo's tables (and so Piccolo Admin) query through: piccolo_conf.DB."""
    engine = engine_finder()
    if not isinstance(engine, PostgresEngine):
        raise RuntimeError("piccolo_conf.py defines no PostgreSQL engine")
    return engine


async def start_pool(settings: Settings) -> BoundedPool:
    engine = console_engine()
    if engine.pool is not None:
        raise RuntimeError("Piccolo's engine already has a connection pool")
    pool = await asyncpg.create_pool(
        # The service's DATABASE_URL (through PgBouncer), statement cache off.
        **connection_options(settings.database_url, settings.db_connect_timeout),
        # Connects on first use: the service starts while the database is down.
        min_size=0,
        max_size=settings.console_pool_size,
        command_timeout=settings.admin_statement_timeout,
        max_inactive_connection_lifetime=60.0,
        reset=_no_reset,
    )
    bounded = BoundedPool(pool, settings.db_acquire_timeout)
    # Piccolo only calls acquire(), release() and close() on it.
    engine.pool = bounded  # type: ignore[assignment]
    return bounded


async def stop_pool() -> None:
    engine = console_engine()
    pool, engine.pool = engine.pool, None
    if pool is not None:
        await pool.close()
