"""The schema a fresh database gets from `python -m app migrate`, read back from the catalog.

Table and column names, types, nullability, defaults, keys, value sets and
indexes are a contract (marketing tools query these tables directly), so the
expected schema is written out here literally rather than derived from app code.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

NOW = "now()"  # CURRENT_TIMESTAMP and now() both read back as this (see normalise_default)
VARCHAR = "varchar"  # a varchar of any length (the value-set columns)


@dataclass(frozen=True)
class Column:
    type: str
    not_null: bool = False
    default: str | None = None


def required(type_: str, default: str | None = None) -> Column:
    return Column(type_, not_null=True, default=default)


def optional(type_: str) -> Column:
    """Nullable and without a default: the rule for every column not listed as NOT NULL."""
    return Column(type_)


COMMON = {
    "id": required("uuid", "gen_random_uuid()"),
    "shop_id": required("varchar(255)"),
    "created_at": required("timestamptz", NOW),
}

EXPECTED_COLUMNS: dict[str, dict[str, Column]] = {
    "customers": {
        **COMMON,
        "shopify_id": required("varchar(255)"),
        "name": optional("varchar(255)"),
        "email": optional("varchar(255)"),
        "phone": optional("varchar(50)"),
        "rfm_r": optional("int"),
        "rfm_f": optional("int"),
        "rfm_m": optional("int"),
        "segment": optional(VARCHAR),
        "lifecycle_stage": optional("varchar(100)"),
        "tags": optional("text[]"),
        "total_spent": optional("numeric(19,4)"),
        "order_count": Column("int", not_null=False, default="0"),
        "avg_order_value": optional("numeric(19,4)"),
        "first_order_at": optional("timestamptz"),
        "last_order_at": optional("timestamptz"),
        "shopify_created_at": optional("timestamptz"),
        "shopify_updated_at": optional("timestamptz"),
        "deleted_at": optional("timestamptz"),
        "redacted_at": optional("timestamptz"),
        "email_marketing_state": optional(VARCHAR),
        "email_marketing_opt_in_level": optional(VARCHAR),
        "email_marketing_consent_updated_at": optional("timestamptz"),
        "sms_marketing_state": optional(VARCHAR),
        "sms_marketing_opt_in_level": optional(VARCHAR),
        "sms_marketing_consent_updated_at": optional("timestamptz"),
        "shopify_order_count": optional("int"),
        "shopify_amount_spent": optional("numeric(19,4)"),
        "shopify_summary_at": optional("timestamptz"),
        "merged_into": optional("varchar(255)"),
        "merged_at": optional("timestamptz"),
    },
    "orders": {
        **COMMON,
        "shopify_id": required("varchar(255)"),
        "customer_id": optional("uuid"),
        "total_price": optional("numeric(19,4)"),
        "line_items": optional("jsonb"),
        "financial_status": optional(VARCHAR),
        "name": optional("varchar(255)"),
        "email": optional("varchar(255)"),
        "currency": optional("varchar(3)"),
        "current_total_price": optional("numeric(19,4)"),
        "fulfillment_status": optional("varchar(32)"),
        "test": optional("boolean"),
        "cancelled_at": optional("timestamptz"),
        "shopify_created_at": optional("timestamptz"),
        "shopify_updated_at": optional("timestamptz"),
        "deleted_at": optional("timestamptz"),
    },
    "automations": {
        **COMMON,
        "name": required("varchar(255)"),
        "trigger_type": required(VARCHAR),
        "trigger_config": optional("jsonb"),
        "delay_value": optional("int"),
        "delay_unit": optional("varchar(50)"),
        "action_type": required(VARCHAR),
        "action_config": optional("jsonb"),
        "email_template_id": optional("varchar(255)"),
        "enabled": required("boolean", "true"),
        "last_run_at": optional("timestamptz"),
    },
    "message_logs": {
        **COMMON,
        "customer_id": optional("uuid"),
        "automation_id": optional("uuid"),
        "channel": required(VARCHAR),
        "subject": optional("varchar(500)"),
        "status": required(VARCHAR),
        "sent_at": optional("timestamptz"),
        "opened_at": optional("timestamptz"),
        "clicked_at": optional("timestamptz"),
    },
    "shops": {
        **COMMON,
        "shopify_shop_id": optional("varchar(255)"),
        "first_seen_at": optional("timestamptz"),
        "uninstalled_at": optional("timestamptz"),
        "redacted_at": optional("timestamptz"),
    },
    "webhook_events": {
        **COMMON,
        "webhook_id": required("varchar(255)"),
        "event_id": optional("varchar(255)"),
        "topic": required("varchar(255)"),
        "api_version": optional("varchar(32)"),
        "triggered_at": optional("timestamptz"),
        "received_at": required("timestamptz", NOW),
        "payload": optional("jsonb"),
        "status": optional(VARCHAR),
        "attempts": optional("int"),
        "last_error": optional("text"),
        "processed_at": optional("timestamptz"),
    },
}
TABLES = tuple(EXPECTED_COLUMNS)

# The one nullable column with a default.
NULLABLE_WITH_DEFAULT = {("customers", "order_count"): "0"}

MONEY_COLUMNS = {
    ("customers", "total_spent"),
    ("customers", "avg_order_value"),
    ("customers", "shopify_amount_spent"),
    ("orders", "total_price"),
    ("orders", "current_total_price"),
}

UNIQUE_CONSTRAINTS = {
    ("customers", ("shop_id", "shopify_id")),
    ("orders", ("shop_id", "shopify_id")),
    ("shops", ("shop_id",)),
    ("webhook_events", ("shop_id", "webhook_id")),
}

# (table, column, referenced table, referenced column, ON DELETE)
FOREIGN_KEYS = {
    ("orders", "customer_id", "customers", "id", "NO ACTION"),
    ("message_logs", "customer_id", "customers", "id", "CASCADE"),
    ("message_logs", "automation_id", "automations", "id", "SET NULL"),
}

SINGLE_COLUMN_INDEXES = {
    ("customers", "shop_id"),
    ("customers", "shopify_id"),
    ("customers", "segment"),
    ("customers", "email"),
    ("orders", "shop_id"),
    ("orders", "customer_id"),
    ("orders", "created_at"),
    ("automations", "shop_id"),
    ("automations", "enabled"),
    ("message_logs", "shop_id"),
    ("message_logs", "customer_id"),
    ("message_logs", "automation_id"),
    ("message_logs", "status"),
}

# (table, column): the values its CHECK constraint allows.
VALUE_SETS: dict[tuple[str, str], list[str]] = {
    ("customers", "segment"): [
        "champion",
        "loyal",
        "potential",
        "new",
        "at_risk",
        "hibernating",
        "lost",
    ],
    ("customers", "email_marketing_state"): [
        "subscribed",
        "not_subscribed",
        "pending",
        "unsubscribed",
        "redacted",
        "invalid",
    ],
    ("customers", "email_marketing_opt_in_level"): ["single_opt_in", "confirmed_opt_in", "unknown"],
    ("customers", "sms_marketing_state"): [
        "subscribed",
        "not_subscribed",
        "pending",
        "unsubscribed",
        "redacted",
    ],
    ("customers", "sms_marketing_opt_in_level"): ["single_opt_in", "confirmed_opt_in", "unknown"],
    ("automations", "trigger_type"): [
        "first_order",
        "segment_change",
        "days_since_order",
        "tag_added",
        "cart_abandoned",
    ],
    ("automations", "action_type"): ["send_email", "add_tag", "remove_tag"],
    ("message_logs", "channel"): ["email", "sms"],
    ("message_logs", "status"): ["sent", "opened", "clicked", "converted"],
    ("orders", "financial_status"): [
        "pending",
        "authorized",
        "partially_paid",
        "paid",
        "partially_refunded",
        "refunded",
        "voided",
        "expired",
    ],
    ("webhook_events", "status"): ["received", "processed", "failed", "ignored", "erasing"],
}

# The smallest valid row of each table: its NOT NULL columns without a default.
MINIMAL_ROWS: dict[str, dict[str, Any]] = {
    "customers": {"shop_id": "schema-test.myshopify.com", "shopify_id": "1"},
    "orders": {"shop_id": "schema-test.myshopify.com", "shopify_id": "1"},
    "automations": {
        "shop_id": "schema-test.myshopify.com",
        "name": "welcome",
        "trigger_type": "first_order",
        "action_type": "send_email",
    },
    "message_logs": {
        "shop_id": "schema-test.myshopify.com",
        "channel": "email",
        "status": "sent",
    },
    "shops": {"shop_id": "schema-test.myshopify.com"},
    "webhook_events": {
        "shop_id": "schema-test.myshopify.com",
        "webhook_id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "topic": "orders/create",
    },
}

ON_DELETE = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


# -- reading the catalog -------------------------------------------------------------------


def normalise_type(formatted: str) -> str:
    """format_type() output, in the short spelling used above."""
    return (
        formatted.replace("character varying", "varchar")
        .replace("timestamp with time zone", "timestamptz")
        .replace("integer", "int")
    )


def normalise_default(expression: str | None) -> str | None:
    """A column default; `NULL::type` is no default at all."""
    if expression is None or re.fullmatch(r"NULL(::[\w ]+)?", expression):
        return None
    if expression in ("CURRENT_TIMESTAMP", "now()"):
        return NOW
    return expression


@dataclass(frozen=True)
class Catalog:
    columns: dict[str, dict[str, Column]]
    constraints: list[asyncpg.Record]
    indexes: set[tuple[str, str]]


async def read_catalog(connection: asyncpg.Connection) -> Catalog:
    column_rows = await connection.fetch(
        """
        SELECT c.relname AS table_name, a.attname AS column_name,
               format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
               pg_get_expr(d.adbin, d.adrelid) AS default_expression
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname = ANY($1::text[])
          AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY c.relname, a.attnum
        """,
        list(TABLES),
    )
    columns: dict[str, dict[str, Column]] = {table: {} for table in TABLES}
    for row in column_rows:
        columns[row["table_name"]][row["column_name"]] = Column(
            normalise_type(row["type"]),
            row["not_null"],
            normalise_default(row["default_expression"]),
        )

    constraints = await connection.fetch(
        """
        SELECT c.relname AS table_name, con.conname AS name, con.contype::text AS kind,
               ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
                     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                     ORDER BY k.ord) AS columns,
               referenced.relname AS referenced_table,
               ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
                     JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                     ORDER BY k.ord) AS referenced_columns,
               con.confdeltype::text AS on_delete,
               pg_get_constraintdef(con.oid) AS definition
        FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_class referenced ON referenced.oid = con.confrelid
        WHERE n.nspname = 'public' AND c.relname = ANY($1::text[])
        """,
        list(TABLES),
    )

    index_rows = await connection.fetch(
        """
        SELECT t.relname AS table_name, a.attname AS column_name
        FROM pg_index i
        JOIN pg_class t ON t.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0]
        WHERE n.nspname = 'public' AND t.relname = ANY($1::text[])
          AND i.indnatts = 1 AND i.indexprs IS NULL AND i.indpred IS NULL AND i.indisvalid
        """,
        list(TABLES),
    )
    indexes = {(row["table_name"], row["column_name"]) for row in index_rows}
    return Catalog(columns, list(constraints), indexes)


def constraints_of_kind(catalog: Catalog, kind: str) -> list[asyncpg.Record]:
    return [row for row in catalog.constraints if row["kind"] == kind]


# -- fixtures ---------------------------------------------------------------------------------


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


@pytest.fixture(scope="module")
async def catalog(connection: asyncpg.Connection) -> Catalog:
    return await read_catalog(connection)


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


# -- columns ----------------------------------------------------------------------------------


@pytest.mark.parametrize("table", TABLES)
def test_columns_types_nullability_and_defaults(catalog: Catalog, table: str) -> None:
    expected = EXPECTED_COLUMNS[table]
    actual = dict(catalog.columns[table])
    assert actual, f"table {table} does not exist"
    for name, column in actual.items():
        # A value-set column may be a varchar of any length.
        wanted = expected.get(name)
        if (
            wanted is not None
            and wanted.type == VARCHAR
            and re.fullmatch(r"varchar(\(\d+\))?", column.type)
        ):
            actual[name] = Column(VARCHAR, column.not_null, column.default)
    assert actual == expected


def test_optional_columns_are_nullable_without_default(catalog: Catalog) -> None:
    """Never '' or 0 standing in for "unknown": the only nullable default is order_count's 0."""
    problems = []
    for table, columns in catalog.columns.items():
        for name, column in columns.items():
            if column.not_null:
                continue
            allowed = NULLABLE_WITH_DEFAULT.get((table, name))
            if column.default != allowed:
                problems.append(f"{table}.{name} DEFAULT {column.default} (expected {allowed})")
    assert problems == []


def test_money_columns_are_numeric_19_4(catalog: Catalog) -> None:
    numeric = {
        (table, name): column.type
        for table, columns in catalog.columns.items()
        for name, column in columns.items()
        if column.type.startswith("numeric")
    }
    assert numeric == dict.fromkeys(MONEY_COLUMNS, "numeric(19,4)")


async def test_defaults_are_generated_by_the_database(connection: asyncpg.Connection) -> None:
    async with rolled_back(connection):
        now = await connection.fetchval("SELECT now()")  # the transaction's start
        rows = {
            table: await insert(connection, table, values) for table, values in MINIMAL_ROWS.items()
        }
    ids = {row["id"] for row in rows.values()}
    assert all(isinstance(value, uuid.UUID) for value in ids)
    assert len(ids) == len(rows)
    assert {table: row["created_at"] for table, row in rows.items()} == dict.fromkeys(rows, now)
    assert rows["customers"]["order_count"] == 0
    assert rows["automations"]["enabled"] is True
    assert rows["webhook_events"]["received_at"] == now


# -- keys -------------------------------------------------------------------------------------


def test_primary_keys_are_id(catalog: Catalog) -> None:
    primary_keys = {
        row["table_name"]: tuple(row["columns"]) for row in constraints_of_kind(catalog, "p")
    }
    assert primary_keys == dict.fromkeys(TABLES, ("id",))


def test_unique_constraints(catalog: Catalog) -> None:
    unique = constraints_of_kind(catalog, "u")
    assert {(row["table_name"], tuple(row["columns"])) for row in unique} == UNIQUE_CONSTRAINTS


def test_foreign_keys_and_on_delete(catalog: Catalog) -> None:
    foreign_keys = {
        (
            row["table_name"],
            *row["columns"],
            row["referenced_table"],
            *row["referenced_columns"],
            ON_DELETE[row["on_delete"]],
        )
        for row in constraints_of_kind(catalog, "f")
    }
    assert foreign_keys == FOREIGN_KEYS


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


# -- value sets -------------------------------------------------------------------------------

VALUE_SET_IDS = [f"{table}.{column}" for table, column in VALUE_SETS]


@pytest.mark.parametrize(("table", "column"), VALUE_SETS, ids=VALUE_SET_IDS)
async def test_value_set_accepts_every_member(
    connection: asyncpg.Connection, table: str, column: str
) -> None:
    for value in VALUE_SETS[table, column]:
        async with rolled_back(connection):
            row = await insert(connection, table, {**MINIMAL_ROWS[table], column: value})
        assert row[column] == value


@pytest.mark.parametrize(("table", "column"), VALUE_SETS, ids=VALUE_SET_IDS)
async def test_value_set_rejects_outsiders(
    connection: asyncpg.Connection, table: str, column: str
) -> None:
    member = VALUE_SETS[table, column][0]
    for outsider in ("bogus", "", member.upper(), f"{member} "):
        with pytest.raises(asyncpg.CheckViolationError) as raised:
            async with rolled_back(connection):
                await insert(connection, table, {**MINIMAL_ROWS[table], column: outsider})
        assert raised.value.table_name == table, outsider


@pytest.mark.parametrize(("table", "column"), VALUE_SETS, ids=VALUE_SET_IDS)
def test_value_set_check_lists_exactly_the_set(catalog: Catalog, table: str, column: str) -> None:
    """No value beyond the set is allowed either: the CHECK's literals are the set itself."""
    literals: set[str] = set()
    for row in constraints_of_kind(catalog, "c"):
        if row["table_name"] == table and list(row["columns"]) == [column]:
            found = re.findall(r"'((?:[^']|'')*)'", row["definition"])
            literals.update(value.replace("''", "'") for value in found)
    assert literals == set(VALUE_SETS[table, column])


# -- indexes ----------------------------------------------------------------------------------


def test_single_column_indexes(catalog: Catalog) -> None:
    assert SINGLE_COLUMN_INDEXES - catalog.indexes == set()
