"""The SQL functions' files: each live one frozen by a migration, and the command that does it."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from app.db.function_files import (
    FROZEN_FOLDER_NAME,
    FreezeError,
    function_changes,
    live_functions,
    migrated_functions,
    write_function_migration,
)
from app.db.piccolo_app import MIGRATIONS_FOLDER

FREEZE = 'uv run python -m app db freeze-functions "what changed"'


def test_every_live_function_is_installed_by_a_migration_as_it_is() -> None:
    changes = function_changes()
    assert not changes, (
        f"app/db/functions/ differs from what the migrations install: changed or new"
        f" {sorted(changes.changed)}, removed {changes.dropped}. Write the migration:"
        f" {FREEZE} (app/db/functions/README.md)"
    )


def test_each_file_creates_the_one_function_it_is_named_after() -> None:
    """The migrations drop a function by its file's name before creating it again."""
    for name, source in live_functions().items():
        created = re.findall(r"^CREATE (?:OR REPLACE )?FUNCTION (\w+)\(", source, re.MULTILINE)
        assert created == [name], f"{name}.sql"
        assert source.startswith("-- "), f"{name}.sql: a header comment says what it guarantees"


def test_every_frozen_folder_belongs_to_a_migration() -> None:
    """A folder without its migration would never be installed, nor checked above."""
    folders = {path.name for path in (MIGRATIONS_FOLDER / FROZEN_FOLDER_NAME).iterdir()}
    modules = {path.stem for path in MIGRATIONS_FOLDER.glob("*.py")}
    assert folders <= modules


def function(name: str, body: str) -> str:
    create = f"CREATE OR REPLACE FUNCTION {name}() RETURNS int LANGUAGE sql AS $$ {body} $$;"
    return f"-- {name}\n{create}\n"


def test_freeze_functions_writes_a_migration_for_what_changed(tmp_path: Path) -> None:
    live = tmp_path / "functions"
    migrations = tmp_path / "migrations"
    live.mkdir()
    migrations.mkdir()
    (live / "f_kept.sql").write_text(function("f_kept", "SELECT 1"))
    (live / "f_changed.sql").write_text(function("f_changed", "SELECT 2"))
    (live / "f_dropped.sql").write_text(function("f_dropped", "SELECT 3"))

    first = write_function_migration("first", datetime(2099, 1, 1, 0, 0, 0), live, migrations)

    assert first is not None and first.name == "ingest_2099_01_01t00_00_00_000000.py"
    assert 'ID = "2099-01-01T00:00:00:000000"' in first.read_text()
    frozen = migrations / "sql" / first.stem
    assert sorted(path.name for path in frozen.iterdir()) == [
        "f_changed.sql",
        "f_dropped.sql",
        "f_kept.sql",
    ]
    assert migrated_functions(migrations) == live_functions(live)
    assert write_function_migration("none", datetime(2099, 1, 1, 0, 0, 1), live, migrations) is None

    (live / "f_changed.sql").write_text(function("f_changed", "SELECT 20"))
    (live / "f_dropped.sql").unlink()
    (live / "f_new.sql").write_text(function("f_new", "SELECT 4"))
    with pytest.raises(FreezeError):
        write_function_migration("too early", datetime(2098, 1, 1), live, migrations)
    second = write_function_migration("second", datetime(2099, 1, 2), live, migrations)

    assert second is not None
    frozen = migrations / "sql" / second.stem
    assert sorted(path.name for path in frozen.iterdir()) == ["f_changed.sql", "f_new.sql"]
    assert 'DROPPED_FUNCTIONS: tuple[str, ...] = (\n    "f_dropped",\n)' in second.read_text()
    assert migrated_functions(migrations) == live_functions(live)
    assert (migrations / "sql" / first.stem / "f_changed.sql").read_text() == function(
        "f_changed", "SELECT 2"
    ), "a frozen copy stays as it was"
