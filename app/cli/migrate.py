"""`python -m app migrate`: apply every pending migration (a no-op when there is none)."""

from __future__ import annotations

import argparse

from app.cli.database import apply_migrations, database_url
from app.config import Settings


def run(settings: Settings, args: argparse.Namespace) -> int:
    with database_url(settings) as url:
        if url == settings.database_url:  # the embedded server was migrated on start
            apply_migrations()
    return 0
