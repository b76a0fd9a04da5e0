"""sync_apply_deletions: a full sync's deletions, applied by the webhooks' rules (issue 23).

After a complete full export, the rows the shop no longer has are marked
deleted exactly as a delete webhook marks them, through ingest_apply_changes.
"""

from pathlib import Path

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-07T11:26:45:000000"
VERSION = "1.38.0"
DESCRIPTION = "sync_apply_deletions"

FROZEN = Path(__file__).parent / "sql" / Path(__file__).stem
DROPPED_FUNCTIONS: tuple[str, ...] = ()


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
