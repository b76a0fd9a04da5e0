"""`python -m app migrate`: apply every pending migration (a no-op when there is none).

On a Citus coordinator (the citus extension installed in the database) it
then distributes the tables by shop_id and says what it did.
"""

from __future__ import annotations

import argparse

from app.cli.database import apply_migrations, database_url
from app.config import Settings


def run(settings: Settings, args: argparse.Namespace) -> int:
    with database_url(settings) as url:
        if url == settings.database_url:  # the embedded server was migrated on start
            report(apply_migrations())
    return 0


def report(distributed: list[str] | None) -> None:
    if distributed is None:
        return
    if distributed:
        print(f"citus: distributed {len(distributed)} tables: {', '.join(distributed)}")
    else:
        print("citus: every table is distributed already")
