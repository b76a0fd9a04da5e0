"""A shop's events by epoch: customer_events_epoch, customer_events_node_group

A shop's feed reads its events by (transaction_id, id), and transaction ids
are a node's own: on a Citus cluster, once the shop's shards moved to another
node, the events written there were compared with the old node's ids, so a
reader's cursor could pass them, or hold them back, around the move. The
trigger functions' Citus branch now writes each event with the shop's events
epoch (customer_events_epoch: raised, in shops, by the first event written on
a node other than the shop's last) and with customer_events_node_group, and
the feed reads by (epoch, transaction_id, id).

On one PostgreSQL nothing changes: every event has epoch 0.

Written by `python -m app db freeze-functions`: drops DROPPED_FUNCTIONS and
installs the functions in FROZEN, copies of app/db/functions/ taken when this
migration was written (never edited afterwards).
"""

import re
from pathlib import Path

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-07T23:02:40:000000"
VERSION = "1.38.0"
DESCRIPTION = "a shop's events by epoch: customer_events_epoch, customer_events_node_group"

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
