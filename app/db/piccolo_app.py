"""Registers the tables with Piccolo, with migrations in the top-level migrations/ folder."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from app.db.tables import ALL_TABLES

MIGRATIONS_FOLDER = Path(__file__).resolve().parents[2] / "migrations"

APP_CONFIG = AppConfig(
    app_name="ingest",
    migrations_folder_path=str(MIGRATIONS_FOLDER),
    table_classes=ALL_TABLES,
    migration_dependencies=[],
    commands=[],
)
