from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Integer
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-07T23:02:04:801840"
VERSION = "1.38.0"
DESCRIPTION = "shops.events_epoch and events_node_group; customer_events.epoch"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="ingest", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="Shop",
        tablename="shops",
        column_name="events_epoch",
        db_column_name="events_epoch",
        column_class_name="Integer",
        column_class=Integer,
        params={
            "default": 0,
            "null": False,
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

    manager.add_column(
        table_class_name="Shop",
        tablename="shops",
        column_name="events_node_group",
        db_column_name="events_node_group",
        column_class_name="Integer",
        column_class=Integer,
        params={
            "default": 0,
            "null": False,
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

    manager.add_column(
        table_class_name="CustomerEvent",
        tablename="customer_events",
        column_name="epoch",
        db_column_name="epoch",
        column_class_name="Integer",
        column_class=Integer,
        params={
            "default": 0,
            "null": False,
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

    return manager
