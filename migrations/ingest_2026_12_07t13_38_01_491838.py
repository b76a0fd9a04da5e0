from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import OnDelete, OnUpdate
from piccolo.columns.column_types import ForeignKey
from piccolo.columns.column_types import UUID
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod
from piccolo.table import Table

ID = "2026-12-07T13:38:01:491838"
VERSION = "1.38.0"
DESCRIPTION = "shop_id-only indexes dropped; sync_bulk_rows.shop_id; keys to customers by hand"


class Customer(Table, tablename="customers"):
    id = UUID(primary_key=True)


# Added by hand: orders.customer_id cannot change type (even to uuid again)
# while triggers name it, nor keep its one-column keys. The next migration
# creates the triggers again and the keys on (shop_id, customer_id).
BEFORE = (
    "DROP TRIGGER orders_first_order_insert ON orders",
    "DROP TRIGGER orders_first_order_update ON orders",
    "ALTER TABLE orders DROP CONSTRAINT orders_customer_id_fkey",
    "ALTER TABLE message_logs DROP CONSTRAINT message_logs_customer_id_fkey",
)


async def before():
    for statement in BEFORE:
        await Customer.raw(statement)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="ingest", description=DESCRIPTION)
    manager.add_raw(before)

    manager.add_column(
        table_class_name="SyncBulkRow",
        tablename="sync_bulk_rows",
        column_name="shop_id",
        db_column_name="shop_id",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 255,
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.alter_column(
        table_class_name="Customer",
        tablename="customers",
        column_name="shop_id",
        db_column_name="shop_id",
        params={"index": False},
        old_params={"index": True},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Order",
        tablename="orders",
        column_name="shop_id",
        db_column_name="shop_id",
        params={"index": False},
        old_params={"index": True},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Order",
        tablename="orders",
        column_name="customer_id",
        db_column_name="customer_id",
        params={"default": None},
        # Edited: the old key's table, without which Piccolo cannot rebuild
        # the old column (the type stays uuid; the next migration replaces the key).
        old_params={"default": None, "references": Customer},
        column_class=UUID,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="MessageLog",
        tablename="message_logs",
        column_name="shop_id",
        db_column_name="shop_id",
        params={"index": False},
        old_params={"index": True},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    manager.alter_column(
        table_class_name="MessageLog",
        tablename="message_logs",
        column_name="customer_id",
        db_column_name="customer_id",
        params={"default": None},
        # Edited: the old key's table, without which Piccolo cannot rebuild
        # the old column (the type stays uuid; the next migration replaces the key).
        old_params={"default": None, "references": Customer},
        column_class=UUID,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="MessageLog",
        tablename="message_logs",
        column_name="automation_id",
        db_column_name="automation_id",
        # Edited: on_delete added, which Piccolo would otherwise reset when
        # it creates the key again for the new on_update.
        params={"on_update": OnUpdate.no_action, "on_delete": OnDelete.set_null},
        old_params={"on_update": OnUpdate.cascade, "on_delete": OnDelete.set_null},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="SyncRun",
        tablename="sync_runs",
        column_name="shop_id",
        db_column_name="shop_id",
        params={"index": False},
        old_params={"index": True},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Erasure",
        tablename="erasures",
        column_name="shop_id",
        db_column_name="shop_id",
        params={"index": False},
        old_params={"index": True},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    return manager
