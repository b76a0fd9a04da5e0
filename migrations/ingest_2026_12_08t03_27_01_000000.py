"""scores_compute groups a shop's orders by customer alone

The orders it reads are all one shop's, and customer ids are unique across
shops: grouping and joining by the shop's id too only made the pass hash a
shop domain once more per order and per customer.

Written by `python -m app db freeze-functions`: drops DROPPED_FUNCTIONS and
installs the functions in FROZEN, copies of app/db/functions/ taken when this
migration was written (never edited afterwards).
"""

import re
from pathlib import Path

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-08T03:27:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "scores_compute groups a shop's orders by customer alone"

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
