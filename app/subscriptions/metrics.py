"""What /metrics shows of subscription health, read from the database at each scrape.

Counts, never a label per shop: how many shops went silent, and how many
lacked subscriptions at their last check.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Gauge

from app.db.database import Database, DatabaseUnavailable
from app.observability.metrics import SCRAPE_TIMEOUT
from app.subscriptions.silence import health_counts

SILENT = Gauge(
    "shopify_ingest_shops_silent",
    "Shops that had webhook traffic and received nothing for longer than usual "
    "(3 times their usual gap, at least SILENCE_AFTER).",
    multiprocess_mode="mostrecent",
)
MISSING_SUBSCRIPTIONS = Gauge(
    "shopify_ingest_shops_missing_subscriptions",
    "Shops whose last subscription check found needed webhook topics not subscribed.",
    multiprocess_mode="mostrecent",
)


async def refresh_subscription_metrics(database: Database, silence_after_seconds: float) -> None:
    """Read the counts; when the database does not answer in time, the last ones stay."""
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT), database.reading() as connection:
            counts = await health_counts(connection, silence_after_seconds)
    except (DatabaseUnavailable, TimeoutError):
        return
    SILENT.set(counts["silent"])
    MISSING_SUBSCRIPTIONS.set(counts["missing_subscriptions"])
