"""Keys that contain shop_id: one schema for plain PostgreSQL and Citus (issue 25).

What Piccolo cannot express: a primary key of two columns and foreign keys of
two. Every table that holds a shop's rows gets the primary key (shop_id, id)
(Citus enforces a key on a distributed table only if it contains the
distribution column, shop_id), and the keys from orders and message_logs to
customers become (shop_id, customer_id) -> customers (shop_id, id), with the
actions they had but no ON UPDATE CASCADE (ids are never updated, and Citus
refuses cascading updates of keys that contain the distribution column). The
previous migration dropped the shop_id-only indexes these keys now cover, the
old keys and the triggers on orders (created again here, unchanged), and
gave sync_bulk_rows its shop_id, filled here from the lines' runs (lines of a
run no longer recorded can never be applied: they are deleted).

automations and its key from message_logs stay on `id`: that key sets NULL on
delete, which Citus allows only towards a reference table, and automations is
one (app/db/distribution.py). Nothing here needs Citus: distributing the
tables is a separate step that `python -m app migrate` takes where the citus
extension is installed.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-07T13:38:02:000000"
VERSION = "1.38.0"
DESCRIPTION = "primary keys (shop_id, id) and foreign keys (shop_id, customer_id)"

# The tables keyed by shop: every one holding a shop's rows, but automations.
SHOP_KEYED = (
    "shops",
    "customers",
    "orders",
    "message_logs",
    "webhook_events",
    "shop_credentials",
    "sync_runs",
    "sync_state",
    "sync_leases",
    "sync_bulk_rows",
    "erasures",
    "customer_tag_events",
    "customer_events",
    "subscription_checks",
)

STATEMENTS = (
    """UPDATE sync_bulk_rows AS b SET shop_id = r.shop_id FROM sync_runs AS r
    WHERE r.id = b.run_id AND b.shop_id IS NULL""",
    "DELETE FROM sync_bulk_rows WHERE shop_id IS NULL",
    *(
        f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey,"
        f" ADD CONSTRAINT {table}_pkey PRIMARY KEY (shop_id, id)"
        for table in SHOP_KEYED
    ),
    """ALTER TABLE orders ADD CONSTRAINT orders_customer_id_fkey
    FOREIGN KEY (shop_id, customer_id) REFERENCES customers (shop_id, id)""",
    """ALTER TABLE message_logs ADD CONSTRAINT message_logs_customer_id_fkey
    FOREIGN KEY (shop_id, customer_id) REFERENCES customers (shop_id, id) ON DELETE CASCADE""",
    # As migration 2026-12-07T11:15:00 made them; the previous one dropped them.
    """CREATE TRIGGER orders_first_order_insert AFTER INSERT ON orders FOR EACH ROW
    WHEN (NEW.customer_id IS NOT NULL AND NEW.deleted_at IS NULL AND NEW.cancelled_at IS NULL
          AND NEW.test IS NOT TRUE)
    EXECUTE FUNCTION customer_events_first_order()""",
    """CREATE TRIGGER orders_first_order_update AFTER UPDATE ON orders FOR EACH ROW
    WHEN (NEW.customer_id IS NOT NULL AND NEW.deleted_at IS NULL AND NEW.cancelled_at IS NULL
          AND NEW.test IS NOT TRUE
          AND NOT (OLD.customer_id IS NOT DISTINCT FROM NEW.customer_id
                   AND OLD.deleted_at IS NULL AND OLD.cancelled_at IS NULL
                   AND OLD.test IS NOT TRUE))
    EXECUTE FUNCTION customer_events_first_order()""",
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
