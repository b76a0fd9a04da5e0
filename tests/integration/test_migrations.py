"""`python -m app migrate`: idempotent, visible to readiness, and in step with app/db/tables.py."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from itertools import chain
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from piccolo.apps.migrations.commands.new import AutoMigrationManager
from piccolo.columns import Varchar
from piccolo.conf.apps import AppConfig
from piccolo.table import TABLE_REGISTRY

from app.db import tables
from app.db.migrations import MIGRATED_APPS, pending_migration_ids
from app.db.piccolo_app import APP_CONFIG
from tests.support.ops import CliResult, run_cli

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "migrations"
TABLES = {"customers", "orders", "automations", "message_logs", "shops", "webhook_events"}


async def migrate(database_url: str) -> CliResult:
    """The real command line, as an operator (or the deploy job) runs it."""
    result = await asyncio.to_thread(run_cli, database_url, "migrate", timeout=120)
    assert result.returncode == 0, f"migrate failed:\n{result.stdout}\n{result.stderr}"
    return result


def committed_migration_ids() -> list[str]:
    """The ID of every migration module in migrations/, read from the files themselves."""
    ids = []
    for path in MIGRATIONS.glob("*.py"):
        if match := re.search(r"^ID\s*=\s*[\"']([^\"']+)[\"']", path.read_text(), re.MULTILINE):
            ids.append(match.group(1))
    return sorted(ids)


async def schema_snapshot(connection: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every column, constraint and index of the public schema."""
    columns = await connection.fetch(
        """
        SELECT table_name, column_name, data_type, character_maximum_length,
               numeric_precision, numeric_scale, is_nullable, column_default
        FROM information_schema.columns WHERE table_schema = 'public'
        ORDER BY table_name, column_name
        """
    )
    constraints = await connection.fetch(
        """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace
        ORDER BY 1, 2
        """
    )
    indexes = await connection.fetch(
        "SELECT tablename, indexname, indexdef FROM pg_indexes"
        " WHERE schemaname = 'public' ORDER BY 1, 2"
    )
    return {
        "columns": [tuple(row) for row in columns],
        "constraints": [tuple(row) for row in constraints],
        "indexes": [tuple(row) for row in indexes],
    }


async def migration_rows(connection: asyncpg.Connection) -> list[tuple[Any, ...]]:
    rows = await connection.fetch("SELECT id, name, app_name, ran_on FROM migration ORDER BY id")
    return [tuple(row) for row in rows]


@pytest.fixture
def empty_database_url(create_database: Any) -> str:
    url: str = create_database(migrated=False)
    return url


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(url)
    try:
        yield connection
    finally:
        await connection.close()


async def test_migrate_twice_is_a_no_op(empty_database_url: str) -> None:
    await migrate(empty_database_url)
    async with connect(empty_database_url) as connection:
        schema = await schema_snapshot(connection)
        applied = await migration_rows(connection)

    await migrate(empty_database_url)
    async with connect(empty_database_url) as connection:
        assert await schema_snapshot(connection) == schema
        assert await migration_rows(connection) == applied

    created = {column[0] for column in schema["columns"]}
    assert created >= TABLES, "the first run created the schema"
    names = Counter(name for _, name, app, _ in applied if app == APP_CONFIG.app_name)
    assert names == Counter(committed_migration_ids()), "one row per committed migration"
    # Also Piccolo's own apps for the console's users and sessions.
    assert {app_name for _, _, app_name, _ in applied} == set(MIGRATED_APPS)


async def test_pending_migrations_are_reported_until_migrated(empty_database_url: str) -> None:
    committed = committed_migration_ids()
    assert committed, "migrations/ holds at least the initial migration"
    async with connect(empty_database_url) as connection:
        assert await pending_migration_ids(connection) == committed

    await migrate(empty_database_url)
    async with connect(empty_database_url) as connection:
        assert await pending_migration_ids(connection) == []

        # A database that has not run the newest migration reports exactly that one.
        transaction = connection.transaction()
        await transaction.start()
        try:
            await connection.execute("DELETE FROM migration WHERE name = $1", committed[-1])
            assert await pending_migration_ids(connection) == [committed[-1]]
        finally:
            await transaction.rollback()


async def alter_statements(app_config: AppConfig) -> list[str]:
    """What `piccolo migrations new --auto` would write for app_config: nothing when in step."""
    altered = await AutoMigrationManager().get_alter_statements(app_config=app_config)
    return list(chain.from_iterable(statements.statements for statements in altered))


async def test_tables_and_committed_migrations_agree() -> None:
    assert await alter_statements(APP_CONFIG) == []


async def test_drift_check_notices_a_column_missing_from_the_migrations() -> None:
    """The check above can fail: a table class with one more column yields a statement."""

    class Shop(tables.Shop, tablename="shops"):
        drift_probe = Varchar(length=10, null=True, default=None)

    try:
        drifted = AppConfig(
            app_name=APP_CONFIG.app_name,
            migrations_folder_path=APP_CONFIG.migrations_folder_path,
            table_classes=[Shop if cls is tables.Shop else cls for cls in APP_CONFIG.table_classes],
        )
        statements = await alter_statements(drifted)
    finally:
        TABLE_REGISTRY.remove(Shop)  # Piccolo lists every Table subclass ever defined
    assert len(statements) == 1
    assert "add_column" in statements[0]
    assert "column_name='drift_probe'" in statements[0]
    assert "tablename='shops'" in statements[0]
