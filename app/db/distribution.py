"""The schema on a Citus cluster: every shop's rows on one node, distributed by shop_id.

Where the `citus` extension is installed in the database, `python -m app
migrate` distributes the tables after applying the migrations (idempotent:
a table already distributed is left alone; a table a later migration adds is
distributed by the next run once it is listed here). Elsewhere nothing
happens. The keys that make this possible (every key and foreign key of a
shop's tables contains shop_id) are the migrations' own, the same on plain
PostgreSQL.

- Per-shop tables: hash-distributed by shop_id and colocated with `shops`,
  so that a statement filtering one shop runs on one node and the foreign
  keys between them hold there.
- Reference tables (a copy on every node): `automations`, because
  `message_logs.automation_id` sets NULL on delete, which Citus allows only
  towards a reference table; `customer_event_relays`, a relay's position,
  global and small.
- Left on the coordinator as plain tables: Piccolo's `migration` and the
  console's `piccolo_user` and `sessions`, which no statement joins with a
  shop's rows.

The triggers on `orders` and `customers` (customer_events_*) are created on
the shards too: Citus only allows that with `citus.enable_unsafe_triggers`,
set here while distributing and for the database (later migrations that
create or drop a trigger need it). They are safe in the sense Citus means:
each trigger touches only rows of its own row's shop, which live on the same
node (colocated).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

# Distributed first to last: a table is distributed after the tables it references.
PER_SHOP = (
    "shops",
    "customers",
    "orders",
    "message_logs",
    "webhook_events",
    "shop_credentials",
    "sync_runs",
    "sync_state",
    "sync_leases",
    "sync_bulk_rows",
    "erasures",
    "customer_tag_events",
    "customer_events",
    "subscription_checks",
)
REFERENCE = ("automations", "customer_event_relays")
DISTRIBUTION_COLUMN = "shop_id"


_FOREIGN_KEYS = """
SELECT conrelid::regclass::text AS tab, quote_ident(conname) AS name,
       pg_get_constraintdef(oid) AS definition
FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace
ORDER BY conrelid::regclass::text, conname
"""

# The schema's functions that Citus does not yet create on every node.
_LOCAL_FUNCTIONS = """
SELECT p.oid FROM pg_proc AS p
WHERE p.pronamespace = 'public'::regnamespace AND NOT EXISTS (
    SELECT FROM pg_catalog.pg_dist_object AS d
    WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid)
ORDER BY p.proname
"""
_TRIGGERED = """
SELECT DISTINCT tgrelid::regclass::text AS tab FROM pg_trigger
WHERE NOT tgisinternal AND tgrelid::regclass::text = ANY($1::text[])
"""


@dataclass(frozen=True)
class TableDistribution:
    """How one table of the schema is placed."""

    table: str
    kind: str  # distributed, reference, local (a plain table on this server)
    column: str | None = None
    colocation_id: int | None = None
    shards: int | None = None


async def citus_installed(connection: asyncpg.Connection) -> bool:
    found = await connection.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'citus'")
    return found is not None


async def distribute(connection: asyncpg.Connection) -> list[str]:
    """Distribute what is not yet; returns the tables distributed now (none: already done)."""
    done = {row.table for row in await distribution(connection) if row.kind != "local"}
    pending_reference = [table for table in REFERENCE if table not in done]
    pending = [table for table in PER_SHOP if table not in done]
    functions = await connection.fetch(_LOCAL_FUNCTIONS)
    if not pending_reference and not pending and not functions:
        return []
    async with connection.transaction():
        # Functions made before the nodes were added exist on the coordinator
        # only; the triggers run on the workers, and call them there.
        for function in functions:
            await connection.execute(
                "SELECT create_distributed_function($1::oid::regprocedure)", function["oid"]
            )
        await connection.execute("SET LOCAL citus.enable_unsafe_triggers = on")
        # One connection per node for the whole transaction: the foreign keys to
        # reference tables require it after a reference table was written.
        await connection.execute("SET LOCAL citus.multi_shard_modify_mode = 'sequential'")
        # Citus distributes no table that a plain table references, nor one that
        # references a plain table: the keys go, and come back once all are placed.
        keys = await connection.fetch(_FOREIGN_KEYS)
        for key in keys:
            await connection.execute(f"ALTER TABLE {key['tab']} DROP CONSTRAINT {key['name']}")
        # Rows copied into the shards are not new: their triggers must not fire
        # (an event would be announced twice).
        triggered = await connection.fetch(_TRIGGERED, [*pending_reference, *pending])
        for row in triggered:
            await connection.execute(f"ALTER TABLE {row['tab']} DISABLE TRIGGER USER")
        for table in pending_reference:
            await connection.execute("SELECT create_reference_table($1)", table)
        for table in pending:
            await connection.execute(
                "SELECT create_distributed_table($1, $2, colocate_with => $3)",
                table,
                DISTRIBUTION_COLUMN,
                "none" if table == PER_SHOP[0] else PER_SHOP[0],
            )
        for table in (*pending_reference, *pending):
            # A populated table's rows were copied into its shards; the originals stay
            # behind, invisible, until removed.
            await connection.execute(
                "SELECT truncate_local_data_after_distributing_table($1)", table
            )
        for key in keys:
            await connection.execute(
                f"ALTER TABLE {key['tab']} ADD CONSTRAINT {key['name']} {key['definition']}"
            )
        for row in triggered:
            await connection.execute(f"ALTER TABLE {row['tab']} ENABLE TRIGGER USER")
        database = await connection.fetchval("SELECT quote_ident(current_database())")
        await connection.execute(f"ALTER DATABASE {database} SET citus.enable_unsafe_triggers = on")
    return [*pending_reference, *pending]


async def distribution(connection: asyncpg.Connection) -> list[TableDistribution]:
    """Every table in the public schema and how it is placed, by name."""
    tables = await connection.fetch(
        "SELECT c.relname FROM pg_class AS c"
        " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname"
    )
    placed: dict[str, TableDistribution] = {}
    if await citus_installed(connection):
        rows = await connection.fetch(
            "SELECT table_name::text AS name, citus_table_type AS kind,"
            " distribution_column AS column, colocation_id, shard_count"
            " FROM citus_tables"
        )
        for row in rows:
            column = None if row["column"] in (None, "<none>") else row["column"]
            placed[row["name"]] = TableDistribution(
                row["name"], row["kind"], column, row["colocation_id"], row["shard_count"]
            )
    return [
        placed.get(row["relname"], TableDistribution(row["relname"], "local")) for row in tables
    ]
