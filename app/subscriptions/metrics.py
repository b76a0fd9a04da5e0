"""What /metrics shows of subscription health, read from the database at each scrape.

Counts, never a label per shop: how many shops went silent, and how many
lacked subscriptions at their last check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.db.database import Database, DatabaseUnavailable
from app.subscriptions.silence import health_counts
from app.sync.metrics import SCRAPE_TIMEOUT


class _Snapshot(Collector):
    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "shopify_ingest_shops_silent",
            "Shops that had webhook traffic and received nothing for longer than usual "
            "(3 times their usual gap, at least SILENCE_AFTER).",
            float(self.counts["silent"]),
        )
        yield GaugeMetricFamily(
            "shopify_ingest_shops_missing_subscriptions",
            "Shops whose last subscription check found needed webhook topics not subscribed.",
            float(self.counts["missing_subscriptions"]),
        )


async def render_subscription_metrics(database: Database, silence_after_seconds: float) -> bytes:
    """The gauges in Prometheus' text format; empty when the database does not answer in time."""
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT), database.connection() as connection:
            counts = await health_counts(connection, silence_after_seconds)
    except (DatabaseUnavailable, TimeoutError):
        return b""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(counts))
    return generate_latest(registry)
