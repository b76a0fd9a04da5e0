"""customer_events read by node group, then position.

What Piccolo cannot express: the relay's index, now (node_group,
transaction_id, id) in place of (transaction_id, id): transaction ids are
counted per node, so on a Citus cluster the relay reads each node group's
events on their own, from a position of its own (app/outbox/relay.py).

Events written before this migration keep node_group 0, with the position a
relay had stored (now the one of group 0): on one PostgreSQL that is every
event, as before; on a cluster they are all committed, so they are read in
that order once and nothing is skipped, and new ones carry their worker's group.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-07T22:03:52:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer_events: the relay's index by node group"

STATEMENTS = (
    "DROP INDEX customer_events_position",
    "CREATE INDEX customer_events_node_position"
    " ON customer_events (node_group, transaction_id, id)",
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
