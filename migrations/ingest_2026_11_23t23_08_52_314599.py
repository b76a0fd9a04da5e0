"""Indexes Piccolo cannot express (expressions over jsonb), written by hand.

customers/redact and the customer export find the ledger rows about one
customer or their orders by these ids; without the indexes that lookup reads
every payload of the shop and a redact of a big shop would time out.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-23T23:08:52:314599"
VERSION = "1.38.0"
DESCRIPTION = "ledger indexes for privacy lookups"

INDEXES = (
    "CREATE INDEX IF NOT EXISTS webhook_events_payload_id"
    " ON webhook_events (shop_id, (payload ->> 'id'))",
    "CREATE INDEX IF NOT EXISTS webhook_events_payload_customer_id"
    " ON webhook_events (shop_id, ((payload -> 'customer') ->> 'id'))",
)


class RawTable(Table):
    """Only a handle for running raw SQL inside the migration's transaction."""


async def create_indexes():
    for statement in INDEXES:
        await RawTable.raw(statement)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="ingest", description=DESCRIPTION)
    manager.add_raw(create_indexes)
    return manager
