"""Room for HOT updates in orders and customers; lz4 for the ledger's payloads (issue 22).

The profile of update storms (bench/README.md, 2026-12-07) found most order
updates were not HOT: pages filled to the brim leave no room for the new row
version, so every update also wrote every index of the table. A fill factor
below 100 keeps room on each page (it applies to pages written from now on;
VACUUM FULL or a rewrite applies it to the old ones). The ledger's payloads
(jsonb of a few KB, compressed by TOAST) are compressed with lz4 where the
server has it, which costs less CPU than the default pglz (new rows only).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-07T11:27:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "fill factor for orders and customers, lz4 for ledger payloads"

STATEMENTS = (
    "ALTER TABLE orders SET (fillfactor = 80)",
    "ALTER TABLE customers SET (fillfactor = 85)",
    # Only where the server was built with lz4 (the setting's allowed values say so).
    """
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_settings
               WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)) THEN
        ALTER TABLE webhook_events ALTER COLUMN payload SET COMPRESSION lz4;
    END IF;
END
$$
""",
)


class RawTable(Table):
    """Only a handle for running raw SQL inside the migration's transaction."""


async def apply_settings():
    for statement in STATEMENTS:
        await RawTable.raw(statement)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="ingest", description=DESCRIPTION)
    manager.add_raw(apply_settings)
    return manager
