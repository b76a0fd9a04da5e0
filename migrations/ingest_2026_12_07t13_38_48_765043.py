from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar

ID = "2026-12-07T13:38:48:765043"
VERSION = "1.38.0"
DESCRIPTION = ""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="ingest", description=DESCRIPTION)

    manager.alter_column(
        table_class_name="SyncBulkRow",
        tablename="sync_bulk_rows",
        column_name="shop_id",
        db_column_name="shop_id",
        params={"null": False},
        old_params={"null": True},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    return manager
