"""The feed's index by shop, then epoch.

What Piccolo cannot express: the shop feed's index, now (shop_id, epoch,
transaction_id, id) in place of (shop_id, transaction_id, id): a shop's feed
reads its events by epoch first (customer_events_epoch), so that on a Citus
cluster the events written after its shards moved to another node, whose
transaction ids are that node's, come after the ones written before.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-07T23:02:05:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer_events: the feed's index by shop and epoch"

STATEMENTS = (
    "DROP INDEX customer_events_shop_position",
    "CREATE INDEX customer_events_shop_position"
    " ON customer_events (shop_id, epoch, transaction_id, id)",
)


class RawTable(Table):
    """Only a handle for running raw SQL inside the migration's transaction."""


async def install():
    for statement in STATEMENTS:
        await RawTable.raw(statement)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="ingest", description=DESCRIPTION)
    manager.add_raw(install)
    return manager
