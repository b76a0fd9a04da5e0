"""The schema's keys by shop, the upgrade that makes them, and distribution on Citus.

On plain PostgreSQL (CI): the keys contain shop_id and hold across shops,
an existing database with rows gets them, and nothing is distributed. With
CITUS_TEST_URL (tests/support/citus.py): `migrate` distributes every shop's
table by shop_id, colocated, `db distribution` says so, a populated
single-node database moves onto the cluster, and one shop's statements go
to one shard.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from app.db.distribution import PER_SHOP, REFERENCE
from tests.support import citus
from tests.support.ops import ROOT, cli_environment, run_cli
from tests.support.servers import execute, with_database

# The last migration before the keys changed: the schema an existing database has.
BEFORE_KEYS = "2026-12-07T11:47:50:000000"
SHOP, OTHER_SHOP = "keys.myshopify.com", "other.myshopify.com"


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(url, statement_cache_size=0)
    try:
        yield connection
    finally:
        await connection.close()


@asynccontextmanager
async def scratch_database(postgres_url: str) -> AsyncIterator[str]:
    """An empty database, without Citus even on a coordinator, dropped afterwards."""
    name = f"ingest_keys_{uuid.uuid4().hex[:10]}"
    await execute(postgres_url, f'CREATE DATABASE "{name}"')
    try:
        yield with_database(postgres_url, name)
    finally:
        await execute(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def migrate(url: str) -> str:
    result = await asyncio.to_thread(run_cli, url, "migrate", timeout=180)
    assert result.returncode == 0, f"migrate failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


async def migrate_until(url: str, migration_id: str) -> None:
    """Piccolo's own command: the migrations up to and including `migration_id`."""
    for command in (
        ("forwards", "user"),
        ("forwards", "session_auth"),
        ("forwards", "ingest", migration_id),
    ):
        completed = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "piccolo.main", "migrations", *command],
            env=cli_environment(url),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr


async def distribution_lines(url: str) -> dict[str, list[str]]:
    result = await asyncio.to_thread(run_cli, url, "db", "distribution")
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0] == ["table", "placement", "column", "colocation", "shards"]
    return {cells[0]: cells[1:] for cells in lines[1:]}


async def add_rows(connection: asyncpg.Connection) -> dict[str, Any]:
    """A shop with a customer, an order, a message log and staged sync lines."""
    customer = await connection.fetchval(
        "INSERT INTO customers (id, shop_id, shopify_id, tags) VALUES"
        " (gen_random_uuid(), $1, '1', '{vip}') RETURNING id",
        SHOP,
    )
    await connection.execute("INSERT INTO shops (id, shop_id) VALUES (gen_random_uuid(), $1)", SHOP)
    await connection.execute(
        "INSERT INTO orders (id, shop_id, shopify_id, customer_id, total_price)"
        " VALUES (gen_random_uuid(), $1, '10', $2, 5)",
        SHOP,
        customer,
    )
    await connection.execute(
        "INSERT INTO message_logs (id, shop_id, customer_id, channel, status)"
        " VALUES (gen_random_uuid(), $1, $2, 'email', 'sent')",
        SHOP,
        customer,
    )
    run = await connection.fetchval(
        "INSERT INTO sync_runs (id, shop_id, kind, resource, status)"
        " VALUES (gen_random_uuid(), $1, 'full', 'orders', 'running') RETURNING id",
        SHOP,
    )
    return {"customer": customer, "run": run}


async def counts(connection: asyncpg.Connection) -> dict[str, int]:
    tables = ("shops", "customers", "orders", "message_logs", "customer_events")
    return {table: await connection.fetchval(f"SELECT count(*) FROM {table}") for table in tables}


async def primary_keys(connection: asyncpg.Connection) -> dict[str, str]:
    rows = await connection.fetch(
        "SELECT conrelid::regclass::text AS tab, pg_get_constraintdef(oid) AS definition"
        " FROM pg_constraint WHERE contype = 'p' AND connamespace = 'public'::regnamespace"
    )
    return {row["tab"]: row["definition"] for row in rows}


async def assert_keys_hold_per_shop(connection: asyncpg.Connection, customer: Any) -> None:
    """Another shop's order cannot point at this shop's customer."""
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await connection.execute(
            "INSERT INTO orders (id, shop_id, shopify_id, customer_id)"
            " VALUES (gen_random_uuid(), $1, '11', $2)",
            OTHER_SHOP,
            customer,
        )


async def test_every_shop_table_is_keyed_by_shop(database_url: str) -> None:
    async with connect(database_url) as connection:
        keys = await primary_keys(connection)
        with_shop_id = {
            row["table_name"]
            for row in await connection.fetch(
                "SELECT table_name::text FROM information_schema.columns"
                " WHERE table_schema = 'public' AND column_name = 'shop_id'"
            )
        }
    assert with_shop_id == set(PER_SHOP) | {"automations"}, "the lists in app/db/distribution.py"
    for table in PER_SHOP:
        assert keys[table] == "PRIMARY KEY (shop_id, id)", table
    assert keys["automations"] == "PRIMARY KEY (id)", "a reference table on Citus"


@pytest.mark.skipif(citus.URL is not None, reason="the test server is a Citus coordinator")
async def test_plain_postgresql_is_not_distributed(database_url: str) -> None:
    assert "citus" not in await migrate(database_url)
    placements = await distribution_lines(database_url)
    assert set(placements) >= {*PER_SHOP, *REFERENCE, "migration"}
    assert {cells[0] for cells in placements.values()} == {"local"}


async def test_an_existing_database_with_rows_gets_the_keys(postgres_url: str) -> None:
    async with scratch_database(postgres_url) as url:
        await migrate_until(url, BEFORE_KEYS)
        async with connect(url) as connection:
            rows = await add_rows(connection)
            await connection.execute(
                "INSERT INTO sync_bulk_rows (run_id, gid, document)"
                " VALUES ($1, 'gid://shopify/Order/1', '{}'), ($2, 'gid://shopify/Order/2', '{}')",
                rows["run"],
                uuid.uuid4(),  # a line whose run is gone: it can never be applied
            )
            before = await counts(connection)

        output = await migrate(url)

        assert "citus" not in output
        async with connect(url) as connection:
            assert await counts(connection) == before
            assert before["customer_events"] == 2, "tag_added and first_order, before the upgrade"
            staged = await connection.fetch("SELECT shop_id, run_id FROM sync_bulk_rows")
            assert [tuple(row) for row in staged] == [(SHOP, rows["run"])]
            assert (await primary_keys(connection))["orders"] == "PRIMARY KEY (shop_id, id)"
            await assert_keys_hold_per_shop(connection, rows["customer"])
            # The triggers were made again: a customer's first order is announced.
            customer = await connection.fetchval(
                "INSERT INTO customers (id, shop_id, shopify_id) VALUES"
                " (gen_random_uuid(), $1, '2') RETURNING id",
                SHOP,
            )
            await connection.execute(
                "INSERT INTO orders (id, shop_id, shopify_id, customer_id)"
                " VALUES (gen_random_uuid(), $1, '12', $2)",
                SHOP,
                customer,
            )
            assert (
                await connection.fetchval(
                    "SELECT count(*) FROM customer_events WHERE kind = 'first_order'"
                )
                == 2
            )


@citus.required
async def test_migrate_distributes_every_shop_table_together(database_url: str) -> None:
    placements = await distribution_lines(database_url)

    for table in PER_SHOP:
        assert placements[table][:2] == ["distributed", "shop_id"], table
    assert len({placements[table][2] for table in PER_SHOP}) == 1, "one colocation group"
    for table in REFERENCE:
        assert placements[table][0] == "reference", table
    for table in ("migration", "piccolo_user", "sessions"):
        assert placements[table][0] == "local", table
    assert "citus: every table is distributed already" in await migrate(database_url)


@citus.required
async def test_one_shops_statements_go_to_one_shard(database_url: str) -> None:
    async with connect(database_url) as connection:
        plans = [
            "\n".join(row[0] for row in await connection.fetch(f"EXPLAIN {statement}", SHOP))
            for statement in (
                "SELECT * FROM orders WHERE shop_id = $1 AND shopify_id = '1'",
                "SELECT * FROM customers AS c JOIN orders AS o"
                " ON o.shop_id = c.shop_id AND o.customer_id = c.id WHERE c.shop_id = $1",
                "UPDATE webhook_events SET status = 'processed' WHERE shop_id = $1",
            )
        ]
    for plan in plans:
        assert "Task Count: 1" in plan, plan


@citus.required
async def test_a_populated_single_node_database_moves_onto_the_cluster(
    postgres_url: str,
) -> None:
    async with scratch_database(postgres_url) as url:
        assert "citus" not in await migrate(url)
        async with connect(url) as connection:
            rows = await add_rows(connection)
            before = await counts(connection)

        await citus.prepare(postgres_url, url.rpartition("/")[2])
        output = await migrate(url)

        assert f"citus: distributed {len(PER_SHOP) + len(REFERENCE)} tables" in output
        async with connect(url) as connection:
            assert await counts(connection) == before, "copied, and no trigger fired again"
            await assert_keys_hold_per_shop(connection, rows["customer"])
            # The triggers run on the shards now: a new tag is announced once.
            await connection.execute(
                "INSERT INTO customers (id, shop_id, shopify_id, tags)"
                " VALUES (gen_random_uuid(), $1, '3', '{new}')",
                SHOP,
            )
            assert (
                await connection.fetchval(
                    "SELECT count(*) FROM customer_events"
                    " WHERE shop_id = $1 AND kind = 'tag_added'",
                    SHOP,
                )
                == 2
            )
        assert (await distribution_lines(url))["orders"][:2] == ["distributed", "shop_id"]
