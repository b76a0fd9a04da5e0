"""sync batches arrive as changes mapped in Python (no per-row mapping in SQL)

sync_apply_customers and sync_apply_orders took fetched records and built each
row's change with jsonb_build_object (a sixth of a full sync's order apply
time, copying every order's line items once more); app/sync/apply.py now sends
the changes ingest_apply_changes reads, and the functions check their kind and
shop before taking the locks.

Written by `python -m app db freeze-functions`: drops DROPPED_FUNCTIONS and
installs the functions in FROZEN, copies of app/db/functions/ taken when this
migration was written (never edited afterwards).
"""

import re
from pathlib import Path

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-07T16:19:24:000000"
VERSION = "1.38.0"
DESCRIPTION = "sync batches arrive as changes mapped in Python (no per-row mapping in SQL)"

FROZEN = Path(__file__).parent / "sql" / Path(__file__).stem
DROPPED_FUNCTIONS: tuple[str, ...] = ()
TRIGGER_FUNCTION = re.compile(r"\bRETURNS\s+trigger\b", re.IGNORECASE)


class RawTable(Table):
    """Only a handle for running raw SQL inside the migration's transaction."""


async def replace_functions():
    for name in DROPPED_FUNCTIONS:
        await RawTable.raw(f"DROP FUNCTION {name}")
    files = sorted(FROZEN.glob("*.sql"))
    # A function whose arguments or result changed must not stay beside the
    # new one as an overload: each is dropped before it is created again. A
    # trigger function (no arguments, RETURNS trigger) is replaced in place:
    # its triggers depend on it, and its signature cannot change.
    for path in files:
        if not TRIGGER_FUNCTION.search(path.read_text(encoding="utf-8")):
            await RawTable.raw(f"DROP FUNCTION IF EXISTS {path.stem}")
    for path in files:
        # raw() reads "{}" as a placeholder; doubled, a brace stands for itself.
        source = path.read_text(encoding="utf-8")
        await RawTable.raw(source.replace("{", "{{").replace("}", "}}"))


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="ingest", description=DESCRIPTION)
    manager.add_raw(replace_functions)
    return manager
