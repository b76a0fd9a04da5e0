from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Integer
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod
from piccolo.constraints import Unique

ID = "2026-12-07T22:03:51:585220"
VERSION = "1.38.0"
DESCRIPTION = "customer_events.node_group; relay positions per relay and node group"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="ingest", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="CustomerEvent",
        tablename="customer_events",
        column_name="node_group",
        db_column_name="node_group",
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
        table_class_name="CustomerEventRelay",
        tablename="customer_event_relays",
        column_name="node_group",
        db_column_name="node_group",
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

    manager.alter_column(
        table_class_name="CustomerEventRelay",
        tablename="customer_event_relays",
        column_name="name",
        db_column_name="name",
        params={"unique": False},
        old_params={"unique": True},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    manager.add_constraint(
        table_class_name="CustomerEventRelay",
        tablename="customer_event_relays",
        constraint_name="customer_event_relays_name_node_group_key",
        constraint_class=Unique,
        params={"columns": ["name", "node_group"], "nulls_distinct": True},
        schema=None,
    )

    return manager
