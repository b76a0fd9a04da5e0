"""`python -m app scores`: recompute RFM scores and segments, now or on a schedule.

    python -m app scores --shop example.myshopify.com
    python -m app scores --all [--every SECONDS]

One line per shop scored; exit 0, or 1 when a shop could not be scored.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

from app.cli.database import database_url, started_database
from app.cli.sync import until_stopped
from app.config import Settings
from app.db.database import Database, is_database_failure
from app.scores.scoring import score_shop, shops_to_score

log = logging.getLogger("app.scores")


def run(settings: Settings, args: argparse.Namespace) -> int:
    with database_url(settings) as url:
        return asyncio.run(_main(settings, url, args))


async def _main(settings: Settings, url: str, args: argparse.Namespace) -> int:
    async with started_database(settings, url) as database:
        if args.shop:
            report = await score_shop(database, args.shop, settings.new_customer_days)
            print(report.summary())
            return 0
        if args.every is None:
            return 1 if await _score_all(database, settings, echo=True) else 0
        await until_stopped(_every(database, settings, args.every))
        return 0


async def _score_all(database: Database, settings: Settings, *, echo: bool) -> list[str]:
    """Score every shop once; the shops that failed."""
    failed = []
    for shop in await shops_to_score(database):
        try:
            report = await score_shop(database, shop, settings.new_customer_days)
        except Exception as error:
            if not is_database_failure(error):
                raise
            log.warning("scoring failed", extra={"fields": {"shop": shop, "error": str(error)}})
            failed.append(shop)
            continue
        if echo:
            print(report.summary())
    return failed


async def _every(database: Database, settings: Settings, every: float) -> None:
    """A round over every shop, then the next one `every` seconds after this one began."""
    while True:
        began = time.monotonic()
        try:
            await _score_all(database, settings, echo=False)
        except Exception as error:
            if not is_database_failure(error):
                raise
            log.warning("scoring round failed", extra={"fields": {"error": str(error)}})
        await asyncio.sleep(max(1.0, every - (time.monotonic() - began)))
