"""SQL functions from app/db/functions/; the per-delivery functions dropped.

From here on every SQL function is written once, in app/db/functions/<name>.sql,
and a migration installs frozen copies of those it changes (written by
`python -m app db freeze-functions`; app/db/functions/README.md). This one
installs all of them.

Dropped, as nothing calls them any more: ingest_order_delivery,
ingest_customer_delivery, ingest_order_delete, ingest_customer_delete and
ingest_lock_order, the per-delivery functions of the release before group
commit (kept by 2026-11-30T17:00:00 for its rolling deploy).

The rules the per-delivery and group paths shared are now written once:
- ingest_deliveries refuses a redacted customer's unscrubbed delivery, writes
  the ledger row and stops at a duplicate itself, for every kind, then applies
  the delivery through ingest_apply_order, ingest_apply_order_delete,
  ingest_upsert_customer or ingest_apply_customer_delete, which no longer take
  the ledger's arguments (ingest_apply_customer, left with nothing else to do,
  is dropped).
- ingest_apply_order writes an order with its customer for deliveries and
  sync_apply_orders alike (ingest_upsert_order, its part of that, is dropped)
  and returns the customers whose totals are due: a delivery recomputes them at
  once, a sync batch once at its end, as before.
- ingest_lock_rows and ingest_lock_shop take their locks through
  ingest_lock_keys, the one place that orders locks.
ingest_deliveries, sync_apply_customers, sync_apply_orders, ingest_record,
ingest_recompute_totals and the lock functions keep their arguments and
results, and the service its behaviour.
"""

from pathlib import Path

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-07T10:31:34:000000"
VERSION = "1.38.0"
DESCRIPTION = "SQL functions from app/db/functions; the per-delivery functions dropped"

FROZEN = Path(__file__).parent / "sql" / Path(__file__).stem
DROPPED_FUNCTIONS: tuple[str, ...] = (
    "ingest_order_delivery",
    "ingest_customer_delivery",
    "ingest_order_delete",
    "ingest_customer_delete",
    "ingest_lock_order",
    "ingest_apply_customer",
    "ingest_upsert_order",
)


class RawTable(Table):
    """Only a handle for running raw SQL inside the migration's transaction."""


async def replace_functions():
    for name in DROPPED_FUNCTIONS:
        await RawTable.raw(f"DROP FUNCTION {name}")
    files = sorted(FROZEN.glob("*.sql"))
    # A function whose arguments or result changed must not stay beside the
    # new one as an overload: each is dropped before it is created again.
    for path in files:
        await RawTable.raw(f"DROP FUNCTION IF EXISTS {path.stem}")
    for path in files:
        # raw() reads "{}" as a placeholder; doubled, a brace stands for itself.
        source = path.read_text(encoding="utf-8")
        await RawTable.raw(source.replace("{", "{{").replace("}", "}}"))


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="ingest", description=DESCRIPTION)
    manager.add_raw(replace_functions)
    return manager
