"""The operator console: Piccolo Admin at /admin/, off unless CONSOLE_ENABLED is set.

Read-only views of shops, customers, orders, webhook deliveries and sync
runs, forms to replay a shop's failed deliveries and to start a sync, behind
Piccolo's session login (users: `python -m app console-user`). Nothing of it
(FastAPI, Piccolo Admin) is imported while it is off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.config import Settings
    from app.db.database import Database
    from app.http.background import BackgroundRuns


def console_parts(
    settings: Settings, database: Database, background_runs: BackgroundRuns
) -> tuple[list[Any], list[Any]]:
    """(route handlers, lifespans) to add to the application: none when the console is off."""
    if not settings.console_enabled:
        return [], []
    from app.console.app import Console

    console = Console(settings, database, background_runs)
    return [console.route_handler], [console.lifespan]
