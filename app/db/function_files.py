"""The SQL functions' files: the live ones and the frozen copies the migrations install.

Each function the service calls is written once, in app/db/functions/<name>.sql
(the folder's README says how to change one). A migration that changes
functions installs frozen copies of them, taken when it was written and never
edited afterwards, from migrations/sql/<migration module>/, and names the
functions it drops in DROPPED_FUNCTIONS; so every migration installs what it
did when it was written. `python -m app db freeze-functions` writes such a
migration for what changed in app/db/functions/ since the last one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from string import Template

from piccolo import __VERSION__ as PICCOLO_VERSION
from piccolo.apps.migrations.commands.base import BaseMigrationManager

from app.db.piccolo_app import APP_CONFIG, MIGRATIONS_FOLDER

LIVE_FOLDER = Path(__file__).resolve().parent / "functions"
FROZEN_FOLDER_NAME = "sql"


def live_functions(folder: Path = LIVE_FOLDER) -> dict[str, str]:
    """Each function's source, by name (the file's name without .sql)."""
    return {path.stem: path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.sql"))}


def frozen_folder(migrations_folder: Path, module_name: str) -> Path:
    """Where the migration `module_name` keeps the functions it installs."""
    return migrations_folder / FROZEN_FOLDER_NAME / module_name


def migrated_functions(migrations_folder: Path = MIGRATIONS_FOLDER) -> dict[str, str]:
    """Each function as the migrations leave it: its latest frozen copy, unless dropped since.

    Functions only ever written inline in older migrations are not known here.
    """
    modules = BaseMigrationManager().get_migration_modules(str(migrations_folder))
    functions: dict[str, str] = {}
    for migration_id in sorted(modules):
        module = modules[migration_id]
        for name in getattr(module, "DROPPED_FUNCTIONS", ()):
            functions.pop(name, None)
        functions.update(live_functions(frozen_folder(migrations_folder, module.__name__)))
    return functions


@dataclass(frozen=True)
class FunctionChanges:
    """What a new migration must do to bring the migrated functions in line with the live ones."""

    changed: dict[str, str]  # name: the live source, new or different
    dropped: list[str]

    def __bool__(self) -> bool:
        return bool(self.changed or self.dropped)


def function_changes(
    live_folder: Path = LIVE_FOLDER, migrations_folder: Path = MIGRATIONS_FOLDER
) -> FunctionChanges:
    live = live_functions(live_folder)
    migrated = migrated_functions(migrations_folder)
    return FunctionChanges(
        changed={name: text for name, text in live.items() if migrated.get(name) != text},
        dropped=sorted(set(migrated) - set(live)),
    )


class FreezeError(Exception):
    pass


MIGRATION_TEMPLATE = Template('''\
"""${description}

Written by `python -m app db freeze-functions`: drops DROPPED_FUNCTIONS and
installs the functions in FROZEN, copies of app/db/functions/ taken when this
migration was written (never edited afterwards).
"""

import re
from pathlib import Path

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "${migration_id}"
VERSION = "${piccolo_version}"
DESCRIPTION = ${description_literal}

FROZEN = Path(__file__).parent / "sql" / Path(__file__).stem
DROPPED_FUNCTIONS: tuple[str, ...] = ${dropped}
TRIGGER_FUNCTION = re.compile(r"\\bRETURNS\\s+trigger\\b", re.IGNORECASE)


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
    manager = MigrationManager(migration_id=ID, app_name="${app_name}", description=DESCRIPTION)
    manager.add_raw(replace_functions)
    return manager
''')


def write_function_migration(
    description: str,
    now: datetime,
    live_folder: Path = LIVE_FOLDER,
    migrations_folder: Path = MIGRATIONS_FOLDER,
) -> Path | None:
    """Freeze the functions changed since the last migration and write the migration.

    Returns the migration's path; None when no function changed.
    """
    changes = function_changes(live_folder, migrations_folder)
    if not changes:
        return None
    # Hand-written migrations end in zeros (Piccolo's own carry microseconds).
    migration_id = now.strftime("%Y-%m-%dT%H:%M:%S:000000")
    latest = max(BaseMigrationManager().get_migration_modules(str(migrations_folder)), default="")
    if migration_id <= latest:
        raise FreezeError(f"the latest migration, {latest}, is not older than now")
    module = f"{APP_CONFIG.app_name}_{re.sub('[-:]', '_', migration_id).lower()}"
    folder = frozen_folder(migrations_folder, module)
    folder.mkdir(parents=True)
    for name, text in changes.changed.items():
        (folder / f"{name}.sql").write_text(text, encoding="utf-8")
    path = migrations_folder / f"{module}.py"
    path.write_text(
        MIGRATION_TEMPLATE.substitute(
            description=description,
            description_literal=json.dumps(description),
            migration_id=migration_id,
            piccolo_version=PICCOLO_VERSION,
            dropped=_tuple_literal(changes.dropped),
            app_name=APP_CONFIG.app_name,
        ),
        encoding="utf-8",
    )
    return path


def _tuple_literal(names: list[str]) -> str:
    if not names:
        return "()"
    return "(\n" + "".join(f"    {json.dumps(name)},\n" for name in names) + ")"
