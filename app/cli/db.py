"""`python -m app db`: the developers' tools for the schema's committed sources.

    python -m app db freeze-functions "what changed"
    DATABASE_URL=postgresql://... python -m app db dump-schema
    python -m app db distribution

freeze-functions writes the migration for the SQL functions changed in
app/db/functions/ since the last one (app/db/functions/README.md).
dump-schema migrates a scratch database on DATABASE_URL's server (which must
be the production's PostgreSQL version), then writes its schema to
migrations/schema.sql (app/db/schema_dump.py).
distribution lists each table of the database and how it is placed: on a
Citus coordinator distributed (by which column, colocated with what, in how
many shards) or a reference table; elsewhere, and for the tables left on the
coordinator, local (app/db/distribution.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from app.cli.database import apply_migrations, database_url
from app.config import Settings
from app.db.distribution import TableDistribution, distribution
from app.db.function_files import FreezeError, write_function_migration
from app.db.schema_dump import SCHEMA_FILE, SchemaDumpError, dump_schema


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "freeze-functions":
        return _freeze_functions(args.description)
    if args.action == "distribution":
        return _distribution(settings)
    return _dump_schema(settings)


def _freeze_functions(description: str) -> int:
    try:
        path = write_function_migration(description, datetime.now())
    except FreezeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if path is None:
        print("no function changed since the last migration")
    else:
        print(f"wrote {path} and the frozen functions beside it; say why in its docstring")
    return 0


def _dump_schema(settings: Settings) -> int:
    if not settings.database_url:
        print(
            "error: set DATABASE_URL to a server of the production's PostgreSQL version"
            " (the embedded one is another version)",
            file=sys.stderr,
        )
        return 2
    try:
        with _scratch_database(settings.database_url, settings.db_connect_timeout) as url:
            os.environ["DATABASE_URL"] = url  # what piccolo_conf.py migrates
            apply_migrations()
            schema = dump_schema(url)
    except SchemaDumpError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    SCHEMA_FILE.write_text(schema, encoding="utf-8")
    print(f"wrote {SCHEMA_FILE}")
    return 0


def _distribution(settings: Settings) -> int:
    with database_url(settings) as url:
        tables = asyncio.run(_read_distribution(url, settings.db_connect_timeout))
    rows = [("table", "placement", "column", "colocation", "shards")]
    rows += [_columns(table) for table in tables]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    return 0


def _columns(table: TableDistribution) -> tuple[str, str, str, str, str]:
    def shown(value: object) -> str:
        return "-" if value is None else str(value)

    return (
        table.table,
        table.kind,
        shown(table.column),
        shown(table.colocation_id),
        shown(table.shards),
    )


async def _read_distribution(url: str, connect_timeout: float) -> list[TableDistribution]:
    connection = await asyncpg.connect(url, timeout=connect_timeout, statement_cache_size=0)
    try:
        return await distribution(connection)
    finally:
        await connection.close()


@contextmanager
def _scratch_database(server_url: str, connect_timeout: float) -> Iterator[str]:
    """An empty database on the server of `server_url`, dropped afterwards."""
    name = f"schema_dump_{uuid.uuid4().hex[:10]}"
    asyncio.run(_execute(server_url, connect_timeout, f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        asyncio.run(_execute(server_url, connect_timeout, drop))


async def _execute(url: str, connect_timeout: float, statement: str) -> None:
    connection = await asyncpg.connect(url, timeout=connect_timeout)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
