"""Applying Piccolo's migrations, and telling whether any are pending."""

from __future__ import annotations

from functools import cache

import asyncpg
from piccolo.apps.migrations.commands.base import BaseMigrationManager
from piccolo.apps.migrations.commands.forwards import run_forwards
from piccolo.engine import engine_finder
from piccolo.engine.postgres import PostgresEngine

from app.db.database import Connection
from app.db.distribution import citus_installed, distribute
from app.db.piccolo_app import APP_CONFIG, MIGRATIONS_FOLDER


class MigrationError(Exception):
    pass


# Ours, then Piccolo's users and sessions (the operator console's login), whose
# migrations ship with piccolo and piccolo_api (registered in piccolo_conf.py).
MIGRATED_APPS = (APP_CONFIG.app_name, "user", "session_auth")


async def apply_migrations() -> list[str] | None:
    """Apply every pending migration; a no-op when the schema is current.

    Then, where the citus extension is installed, distribute the tables not
    distributed yet (app/db/distribution.py) and return their names; None
    on plain PostgreSQL. Piccolo connects through the engine in
    piccolo_conf.py, built from DATABASE_URL.
    """
    for app_name in MIGRATED_APPS:
        result = await run_forwards(app_name=app_name)
        if not result.success:
            raise MigrationError(result.message or f"migrations of {app_name} failed")
    engine = engine_finder()
    if not isinstance(engine, PostgresEngine):
        raise MigrationError("no PostgreSQL engine is configured")
    connection = await asyncpg.connect(**engine.config)
    try:
        if not await citus_installed(connection):
            return None
        return await distribute(connection)
    finally:
        await connection.close()


@cache
def known_migration_ids() -> frozenset[str]:
    """The ids of the migrations committed in migrations/, read once."""
    modules = BaseMigrationManager().get_migration_modules(str(MIGRATIONS_FOLDER))
    return frozenset(modules)


async def pending_migration_ids(connection: Connection) -> list[str]:
    """The committed migrations this database has not run yet, oldest first."""
    try:
        rows = await connection.fetch(
            "SELECT name FROM migration WHERE app_name = $1", APP_CONFIG.app_name
        )
    except asyncpg.UndefinedTableError:
        rows = []
    applied = {row["name"] for row in rows}
    return sorted(known_migration_ids() - applied)
