"""What the application keeps in Litestar's `app.state`, read with types."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection

from app.config import Settings
from app.db.database import Database


def database_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Database:
    database: Database = connection.app.state.database
    return database


def settings_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Settings:
    settings: Settings = connection.app.state.settings
    return settings
