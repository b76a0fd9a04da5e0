"""The trigger on customers that announces segment changes.

What Piccolo cannot express: customers_segment_changed calls
customer_events_segment (installed by the previous migration) after a
customer's segment changed, only for a live customer (neither deleted nor
redacted), as scores_write announced them before. Its WHEN condition keeps
every other write of customers from calling a function at all.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-07T19:47:40:000000"
VERSION = "1.38.0"
DESCRIPTION = "the trigger on customers that announces segment changes"

STATEMENT = """CREATE TRIGGER customers_segment_changed AFTER UPDATE OF segment ON customers
FOR EACH ROW
WHEN (OLD.segment IS DISTINCT FROM NEW.segment
      AND NEW.deleted_at IS NULL AND NEW.redacted_at IS NULL)
EXECUTE FUNCTION customer_events_segment()"""


class RawTable(Table):
    """Only a handle for running raw SQL inside the migration's transaction."""


async def install():
    await RawTable.raw(STATEMENT)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="ingest", description=DESCRIPTION)
    manager.add_raw(install)
    return manager
