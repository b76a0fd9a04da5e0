"""Reading the database back in tests: rows as dicts, counts, and searches.

Every helper opens its own pooled connection on the test's `db` fixture, so it
sees whatever the application committed.
"""

from __future__ import annotations

from typing import Any

from app.db.database import Database
from tests.support.shopify import SHOP

TABLES = ("shops", "customers", "orders", "automations", "message_logs", "webhook_events")


async def fetch(db: Database, sql: str, *args: Any) -> list[dict[str, Any]]:
    async with db.connection() as connection:
        return [dict(row) for row in await connection.fetch(sql, *args)]


async def fetchrow(db: Database, sql: str, *args: Any) -> dict[str, Any] | None:
    rows = await fetch(db, sql, *args)
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


async def fetchval(db: Database, sql: str, *args: Any) -> Any:
    async with db.connection() as connection:
        return await connection.fetchval(sql, *args)


async def execute(db: Database, sql: str, *args: Any) -> None:
    async with db.connection() as connection:
        await connection.execute(sql, *args)


async def lock_waits(db: Database, statement_like: str = "%") -> int:
    """Backends of the test database blocked on a lock, running a statement LIKE the pattern.

    On Citus a row's lock is waited for on the worker holding its shard, in a
    backend Citus opened there, running the shard's statement (`UPDATE
    public.customers_102008 ...`): citus_stat_activity shows every node's.
    """
    view = "citus_stat_activity" if await db.on_citus() else "pg_stat_activity"
    count: int = await fetchval(
        db,
        f"SELECT count(*) FROM {view}"
        " WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE $1",
        statement_like,
    )
    return count


async def customer(db: Database, shopify_id: int | str, shop: str = SHOP) -> dict[str, Any] | None:
    return await fetchrow(
        db,
        "SELECT * FROM customers WHERE shop_id = $1 AND shopify_id = $2",
        shop,
        str(shopify_id),
    )


async def order(db: Database, shopify_id: int | str, shop: str = SHOP) -> dict[str, Any] | None:
    return await fetchrow(
        db,
        "SELECT o.*, c.shopify_id AS customer_shopify_id FROM orders o"
        " LEFT JOIN customers c ON c.shop_id = o.shop_id AND c.id = o.customer_id"
        " WHERE o.shop_id = $1 AND o.shopify_id = $2",
        shop,
        str(shopify_id),
    )


async def shop(db: Database, shop_id: str = SHOP) -> dict[str, Any] | None:
    return await fetchrow(db, "SELECT * FROM shops WHERE shop_id = $1", shop_id)


async def ledger(db: Database, shop: str | None = None) -> list[dict[str, Any]]:
    """Ledger rows (payload as text), oldest first; of one shop or of all."""
    return await fetch(
        db,
        "SELECT *, payload::text AS payload_text FROM webhook_events"
        " WHERE $1::varchar IS NULL OR shop_id = $1 ORDER BY received_at, created_at",
        shop,
    )


async def ledger_row(db: Database, webhook_id: str, shop: str = SHOP) -> dict[str, Any]:
    row = await fetchrow(
        db,
        "SELECT *, payload::text AS payload_text FROM webhook_events"
        " WHERE shop_id = $1 AND webhook_id = $2",
        shop,
        webhook_id,
    )
    assert row is not None, f"no ledger row for {webhook_id}"
    return row


async def counts(db: Database) -> dict[str, int]:
    """Rows per table of the schema."""
    result = {}
    for table in TABLES:
        result[table] = await fetchval(db, f"SELECT count(*) FROM {table}")
    return result


async def nothing_stored(db: Database) -> bool:
    return all(count == 0 for count in (await counts(db)).values())


async def text_columns(db: Database) -> list[tuple[str, str]]:
    """(table, column) for every column of the public schema that can hold text."""
    rows = await fetch(
        db,
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public'"
        "   AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY')"
        " ORDER BY table_name, column_name",
    )
    return [(row["table_name"], row["column_name"]) for row in rows]


async def where_found(db: Database, *needles: str) -> list[str]:
    """`table.column: needle` for every text-like column holding one of the needles.

    Searches case-insensitively, in every table of the public schema (jsonb and
    arrays through their text form), so a value left anywhere is found.
    """
    found: list[str] = []
    lowered = [needle.lower() for needle in needles]
    if not lowered:
        return found
    for table, column in await text_columns(db):
        # One query per column for all the needles, each its own aggregate (a
        # plain scan of the table: on Citus, one over every shard).
        tests = ", ".join(
            f'coalesce(bool_or(strpos(lower("{column}"::text), ${n}) > 0), false) AS "{n}"'
            for n in range(1, len(lowered) + 1)
        )
        row = (await fetch(db, f'SELECT {tests} FROM "{table}"', *lowered))[0]
        found.extend(
            f"{table}.{column}: {needle}"
            for n, needle in enumerate(needles, start=1)
            if row[str(n)]
        )
    return found
