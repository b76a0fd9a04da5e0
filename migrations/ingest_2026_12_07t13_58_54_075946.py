from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar

ID = "2026-12-07T13:58:54:075946"
VERSION = "1.38.0"
DESCRIPTION = "customers.segment without its index: scoring passes update rows in place (HOT)"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="ingest", description=DESCRIPTION
    )

    manager.alter_column(
        table_class_name="Customer",
        tablename="customers",
        column_name="segment",
        db_column_name="segment",
        params={"index": False},
        old_params={"index": True},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    return manager
