"""The outbox's indexes and the triggers on orders and customers that write it.

What Piccolo cannot express: customer_events' composite indexes, in the order
readers go (transaction_id, id: the relay and retention; shop_id first: the
feed) and by customer (a redaction deletes the customer's events); and the
row triggers that call customer_events_first_order (on orders) and
customer_events_tags (on customers), installed by the previous migration.
Their WHEN conditions keep every other write of those tables from calling a
function at all: a test order, a cancelled one, an update of an order already
counted, a customer write that adds no tag.

Customers who already have a counted order (not deleted, not cancelled, not a
test) are marked as announced first, so that their next order is not taken
for a first one.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-07T11:15:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer_events indexes; the triggers on orders and customers that announce events"

STATEMENTS = (
    "CREATE INDEX customer_events_position ON customer_events (transaction_id, id)",
    "CREATE INDEX customer_events_shop_position"
    " ON customer_events (shop_id, transaction_id, id)",
    "CREATE INDEX customer_events_customer ON customer_events (shop_id, customer_shopify_id)",
    """UPDATE customers AS c SET first_order_announced_at = now()
    WHERE c.first_order_announced_at IS NULL AND c.order_count > 0
      AND EXISTS (SELECT FROM orders AS o WHERE o.customer_id = c.id AND o.deleted_at IS NULL
                  AND o.cancelled_at IS NULL AND o.test IS NOT TRUE)""",
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
    """CREATE TRIGGER customers_tag_added_insert AFTER INSERT ON customers FOR EACH ROW
    WHEN (NEW.deleted_at IS NULL AND NEW.redacted_at IS NULL AND cardinality(NEW.tags) > 0)
    EXECUTE FUNCTION customer_events_tags()""",
    """CREATE TRIGGER customers_tag_added_update AFTER UPDATE ON customers FOR EACH ROW
    WHEN (NEW.deleted_at IS NULL AND NEW.redacted_at IS NULL
          AND NOT (coalesce(NEW.tags, '{{}}') <@ coalesce(OLD.tags, '{{}}')))
    EXECUTE FUNCTION customer_events_tags()""",
)


class RawTable(Table):
    """Only a handle for running raw SQL inside the migration's transaction."""


async def install():
    # raw() reads "{}" as a placeholder: the statements above double their braces.
    for statement in STATEMENTS:
        await RawTable.raw(statement)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="ingest", description=DESCRIPTION)
    manager.add_raw(install)
    return manager
