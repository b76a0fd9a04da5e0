"""The schema a fresh database gets from `python -m app migrate`.

Table and column names, types, nullability, defaults, keys, value sets and
indexes are a contract (marketing tools query these tables directly), so they
are written out literally in migrations/schema.sql, a normalised `pg_dump
--schema-only` (app/db/schema_dump.py), and compared with a freshly migrated
database here. The other tests check what a dump cannot show: that the
installed functions are app/db/functions/, and what the database does with
rows (value sets refused, defaults generated, ON DELETE rules applied).
"""

from __future__ import annotations

import difflib
import os
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from app.db.function_files import live_functions
from app.db.schema_dump import SCHEMA_FILE, committed_major, dump_schema, pg_dump_major
from app.db.tables import ALL_TABLES
from tests.support import citus

SHOP = "schema-test.myshopify.com"

# The smallest valid row of each table checked here: its NOT NULL columns without a default.
MINIMAL_ROWS: dict[str, dict[str, Any]] = {
    "customers": {"shop_id": SHOP, "shopify_id": "1"},
    "orders": {"shop_id": SHOP, "shopify_id": "1"},
    "automations": {
        "shop_id": SHOP,
        "name": "welcome",
        "trigger_type": "first_order",
        "action_type": "send_email",
    },
    "message_logs": {"shop_id": SHOP, "channel": "email", "status": "sent"},
    "shops": {"shop_id": SHOP},
    "webhook_events": {
        "shop_id": SHOP,
        "webhook_id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "topic": "orders/create",
    },
    "erasures": {"shop_id": SHOP, "ledger_id": uuid.uuid4(), "kind": "customer", "phase": "x"},
    "sync_runs": {"shop_id": SHOP, "kind": "full", "resource": "orders", "status": "running"},
    "sync_state": {"shop_id": SHOP, "resource": "orders"},
}
# The same for tables without a uuid key and created_at (docs/schema.md says which).
OTHER_MINIMAL_ROWS: dict[str, dict[str, Any]] = {
    "customer_events": {
        "shop_id": SHOP,
        "transaction_id": 1,
        "customer_shopify_id": "1",
        "kind": "tag_added",
        "data": "{}",
    },
}

# (table, column, the values the service writes): each has a CHECK constraint.
VALUE_SETS = [
    (table._meta.tablename, column._meta.db_column_name, [str(c.value) for c in choices])
    for table in ALL_TABLES
    for column in table._meta.columns
    if (choices := column._meta.choices)
]


@pytest.fixture(scope="module")
def fresh_database_url(create_database: Any) -> str:
    """An empty database migrated through `python -m app migrate`, for this module alone."""
    url: str = create_database()
    return url


@pytest.fixture(scope="module")
async def connection(fresh_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(fresh_database_url)
    yield connection
    await connection.close()


@asynccontextmanager
async def rolled_back(connection: asyncpg.Connection) -> AsyncIterator[None]:
    """A transaction that is always rolled back: nothing written here outlives it."""
    transaction = connection.transaction()
    await transaction.start()
    try:
        yield
    finally:
        await transaction.rollback()


async def insert(
    connection: asyncpg.Connection, table: str, values: Mapping[str, Any]
) -> asyncpg.Record:
    names = ", ".join(f'"{name}"' for name in values)
    placeholders = ", ".join(f"${number}" for number in range(1, len(values) + 1))
    row = await connection.fetchrow(
        f'INSERT INTO "{table}" ({names}) VALUES ({placeholders}) RETURNING *',
        *values.values(),
    )
    assert row is not None
    return row


# -- the committed schema ----------------------------------------------------------------------


async def test_the_committed_schema_is_what_the_migrations_create(
    fresh_database_url: str, connection: asyncpg.Connection
) -> None:
    committed = SCHEMA_FILE.read_text(encoding="utf-8")
    major = committed_major(committed)
    server = connection.get_server_version().major
    client = pg_dump_major()
    if server != major or client != major:
        reason = (
            f"{SCHEMA_FILE.name} is PostgreSQL {major}'s dump; this test needs a PostgreSQL"
            f" {major} server (TEST_DATABASE_URL; here {server}) and its pg_dump on PATH"
            f" (here {client})"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)

    dumped = citus.without_extension(dump_schema(fresh_database_url))

    if dumped != committed:
        diff = difflib.unified_diff(
            committed.splitlines(), dumped.splitlines(), "committed", "migrated", lineterm=""
        )
        pytest.fail(
            f"the migrations create another schema than {SCHEMA_FILE}:\n"
            + "\n".join(diff)
            + f"\n\nIf that change is meant, write the file again: DATABASE_URL=<a PostgreSQL"
            f" {major} server> uv run python -m app db dump-schema",
            pytrace=False,
        )


async def test_the_installed_functions_are_app_db_functions(
    connection: asyncpg.Connection,
) -> None:
    """No function left over, none missing, each body the live file's (the dump leaves them out)."""
    rows = await connection.fetch(
        "SELECT proname, prosrc FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
    )
    installed = {row["proname"]: row["prosrc"] for row in rows}
    bodies = {}
    for name, source in live_functions().items():
        body = re.search(r"\$\$(.*)\$\$", source, re.DOTALL)
        assert body is not None, f"{name}.sql: no $$-quoted body"
        bodies[name] = body.group(1)
    assert installed == bodies


# -- what the database does with rows ----------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "column", "members"), VALUE_SETS, ids=[f"{t}.{c}" for t, c, _ in VALUE_SETS]
)
async def test_value_sets_accept_their_members_and_refuse_others(
    connection: asyncpg.Connection, table: str, column: str, members: list[str]
) -> None:
    minimal = {**MINIMAL_ROWS, **OTHER_MINIMAL_ROWS}[table]
    for value in members:
        async with rolled_back(connection):
            row = await insert(connection, table, {**minimal, column: value})
        assert row[column] == value
    for outsider in ("bogus", "", members[0].upper(), f"{members[0]} "):
        with pytest.raises(asyncpg.CheckViolationError) as raised:
            async with rolled_back(connection):
                await insert(connection, table, {**minimal, column: outsider})
        # Citus reports the shard's violation without the table's name.
        assert raised.value.table_name == (None if citus.URL else table), outsider
        assert f'constraint "{table}_{column}_check"' in str(raised.value), outsider


async def test_defaults_are_generated_by_the_database(connection: asyncpg.Connection) -> None:
    async with rolled_back(connection):
        now = await connection.fetchval("SELECT now()")  # the transaction's start
        rows = {
            table: await insert(connection, table, values) for table, values in MINIMAL_ROWS.items()
        }
    ids = {row["id"] for row in rows.values()}
    assert all(isinstance(value, uuid.UUID) for value in ids)
    assert len(ids) == len(rows)
    created = {table: row["created_at"] for table, row in rows.items()}
    created["webhook_events.received_at"] = rows["webhook_events"]["received_at"]
    if citus.URL:
        # On Citus now() is the start of each node's part of the transaction.
        assert min(created.values()) >= now, created
    else:
        assert created == dict.fromkeys(created, now)
    assert rows["customers"]["order_count"] == 0
    assert rows["automations"]["enabled"] is True


async def test_on_delete_behaviour(connection: asyncpg.Connection) -> None:
    """What the three ON DELETE rules mean for the rows that point at a deleted one."""
    async with rolled_back(connection):
        customer = await insert(connection, "customers", MINIMAL_ROWS["customers"])
        automation = await insert(connection, "automations", MINIMAL_ROWS["automations"])
        log_row = {
            **MINIMAL_ROWS["message_logs"],
            "customer_id": customer["id"],
            "automation_id": automation["id"],
        }
        kept = await insert(connection, "message_logs", log_row)
        await connection.execute("DELETE FROM automations WHERE id = $1", automation["id"])
        assert (
            await connection.fetchval(
                "SELECT automation_id FROM message_logs WHERE id = $1", kept["id"]
            )
            is None
        ), "SET NULL: the log stays, without its automation"

        await connection.execute("DELETE FROM customers WHERE id = $1", customer["id"])
        assert await connection.fetchval("SELECT count(*) FROM message_logs") == 0, "CASCADE"

    with pytest.raises(asyncpg.ForeignKeyViolationError):
        async with rolled_back(connection):
            customer = await insert(connection, "customers", MINIMAL_ROWS["customers"])
            order = {**MINIMAL_ROWS["orders"], "customer_id": customer["id"]}
            await insert(connection, "orders", order)
            await connection.execute("DELETE FROM customers WHERE id = $1", customer["id"])
