"""Set-based apply shared by webhooks and sync (issues 22, 23).

ingest_deliveries applied a group one delivery at a time, a chain of PL/pgSQL
calls and about ten statements per delivery; the sync did the same per
fetched row. Each statement paid its executor start-up and CHECK constraint
preparation again, and an update storm rewrote rows and recomputed totals that
had not changed (bench/README.md, the profile of 2026-12-07). Now:

- ingest_apply_changes applies a whole group (or sync batch) with a few
  set-based statements, with the result of applying the changes one by one;
  the webhooks and the sync both call it (ingest_changes reads the items), so
  each rule is written once. Rows are only rewritten when a value changes, and
  totals only recomputed (ingest_recompute_totals, set-based) for customers
  whose counted orders changed.
- ingest_record_deliveries records a group's ledger rows at once, creating the
  group's new shops first and in sorted order: two groups creating the same new
  shops in different orders deadlocked (a second's wait, 503s past the lock
  timeout). ingest_record applies it for one delivery.
- The per-row functions go: ingest_apply_order, ingest_apply_order_delete,
  ingest_apply_customer_delete, ingest_upsert_customer, sync_apply_consent,
  ingest_customer_redacted. The functions the previous release calls keep
  their signatures, so it works against this schema during a rolling deploy.

Written by `python -m app db freeze-functions`: drops DROPPED_FUNCTIONS and
installs the functions in FROZEN, copies of app/db/functions/ taken when this
migration was written (never edited afterwards).
"""

from pathlib import Path

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-07T11:20:58:000000"
VERSION = "1.38.0"
DESCRIPTION = "set-based apply shared by webhooks and sync (issues 22, 23)"

FROZEN = Path(__file__).parent / "sql" / Path(__file__).stem
DROPPED_FUNCTIONS: tuple[str, ...] = (
    "ingest_apply_customer_delete",
    "ingest_apply_order",
    "ingest_apply_order_delete",
    "ingest_customer_redacted",
    "ingest_upsert_customer",
    "sync_apply_consent",
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
