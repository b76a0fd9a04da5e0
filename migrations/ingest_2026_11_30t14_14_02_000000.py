"""The ledger's status CHECK constraint with `erasing`, written by hand.

DeliveryStatus gained `erasing` (a redact recorded, its erasure finishing in
the background). Piccolo does not notice a changed CHECK condition, so the
generated migration before this one only records the new choices; this one
replaces the constraint itself.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-30T14:14:02:000000"
VERSION = "1.38.0"
DESCRIPTION = "ledger status check with erasing"

STATEMENTS = (
    "ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_status_check",
    "ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_status_check"
    " CHECK (\"status\" IN ('received', 'processed', 'failed', 'ignored', 'erasing'))",
)


class RawTable(Table):
    """Only a handle for running raw SQL inside the migration's transaction."""


async def replace_status_check():
    for statement in STATEMENTS:
        await RawTable.raw(statement)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="ingest", description=DESCRIPTION)
    manager.add_raw(replace_status_check)
    return manager
