"""The Piccolo engine, configured so that it works behind PgBouncer in transaction mode."""

from typing import Any

from piccolo.engine.postgres import PostgresEngine


class Engine(PostgresEngine):
    """Piccolo's PostgreSQL engine without its connection at import time.

    Piccolo opens a connection when the engine is created, only to log the
    server version. Importing configuration must never touch the network (the
    service starts, and reports not-ready, while the database is down), so
    that check is skipped; readiness probes the database instead.
    """

    async def check_version(self) -> None:
        return None


def connection_options(database_url: str | None, connect_timeout: float) -> dict[str, Any]:
    """asyncpg options shared by the pool and by one-off connections (migrations, CLI).

    Statement caching is off because PgBouncer in transaction mode hands each
    transaction a different server connection, where a named prepared
    statement from an earlier transaction does not exist.
    """
    return {"dsn": database_url, "statement_cache_size": 0, "timeout": connect_timeout}


def create_engine(database_url: str | None, connect_timeout: float) -> Engine:
    return Engine(config=connection_options(database_url, connect_timeout), extensions=())
