"""sync_apply_deletions; redacted customers' order emails as a rule of ingest_apply_changes (issue 23).

After a complete full export, the rows the shop no longer has are marked
deleted exactly as a delete webhook marks them, through ingest_apply_changes.
The rule that an order of a redacted customer is written without its email
moves from sync_apply_orders into ingest_apply_changes (webhook deliveries
about a redacted customer arrive scrubbed already, so nothing changes for
them), and its result rows are read without parsing each change again.
"""

from pathlib import Path

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-07T11:41:33:000000"
VERSION = "1.38.0"
DESCRIPTION = "sync_apply_deletions; redacted emails in ingest_apply_changes"

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
