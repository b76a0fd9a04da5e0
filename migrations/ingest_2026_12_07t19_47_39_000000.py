"""Citus: locks and settings on the shop's worker; segment_change from a trigger

On Citus a group commits two-phase, and Citus commits the workers after the
coordinator: advisory locks taken on the coordinator were released while the
group's rows were still prepared, not committed, on the worker, so the next
writer of the same rows read them late (a customer inserted twice: a
duplicate key). ingest_lock_keys_at takes them on the shop's worker instead,
in the transaction that writes the rows, after ingest_shop_worker has
enrolled that worker in the transaction (Citus sends a function's first
reads outside any transaction on the worker) and given it the settings that
a function's SET clause gives the coordinator only: lock_timeout (row locks
are waited for on the worker) and the planner settings scores_compute and
scores_apply choose (their statements are planned on the worker; without
them a shop not yet analysed was scored with nested loops, for seconds).

scores_write wrote its segment_change events itself, from an INSERT that on
Citus runs through the coordinator and took the coordinator's transaction
id, while the feed orders a shop's events by the worker's. The events now
come from customer_events_segment, a row trigger (created by the next
migration) that fires where the row is written, as the other events'
triggers do; scores_write only counts them.

On one PostgreSQL nothing changes but where segment_change is written.

Written by `python -m app db freeze-functions`: drops DROPPED_FUNCTIONS and
installs the functions in FROZEN, copies of app/db/functions/ taken when this
migration was written (never edited afterwards).
"""

import re
from pathlib import Path

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-07T19:47:39:000000"
VERSION = "1.38.0"
DESCRIPTION = "Citus: locks and settings on the shop's worker; segment_change from a trigger"

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
