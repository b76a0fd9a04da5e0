"""What /metrics shows of the sync, read from the database at each scrape.

Runs happen in other processes (the compose `sync` service, other replicas,
a command line), so the figures come from where they all write: sync_runs
(never deleted, so its sums only grow and work as counters) and sync_state.
Shops are counted, never a label: thousands of shops must not become
thousands of series.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.db.database import Connection, Database, DatabaseUnavailable
from app.db.enums import SyncRunStatus

# Reading the figures may take this long; after it, the scrape goes on without them.
SCRAPE_TIMEOUT = 0.5

_RUNS = """
SELECT status, count(*) AS runs, sum(applied) AS applied, sum(stale) AS stale,
       sum(failed) AS failed, sum(api_cost) AS api_cost,
       sum(throttle_wait_seconds) AS throttle_wait
FROM sync_runs GROUP BY status
"""

# Per shop with credentials: its stalest resource's last success, and whether
# any resource failed after its last success (or Shopify refused the token).
_SHOPS = """
WITH shop AS (
    SELECT c.created_at,
           c.invalid_at IS NOT NULL OR EXISTS (
               SELECT FROM sync_state AS s WHERE s.shop_id = c.shop_id
               AND s.last_failure_at > coalesce(s.last_success_at, '-infinity')) AS failing,
           (SELECT min(s.last_success_at) FROM sync_state AS s WHERE s.shop_id = c.shop_id)
               AS last_success
    FROM shop_credentials AS c
)
SELECT count(*) FILTER (WHERE failing) AS failing,
       count(*) FILTER (WHERE NOT failing AND coalesce(last_success, created_at)
                        < now() - make_interval(secs => $1)) AS overdue,
       extract(epoch FROM now() - min(last_success)) AS oldest_success_age
FROM shop
"""

# Customers whose totals disagree with Shopify's (customers/purchasing_summary)
# by more than rounding; listed by GET /shops/{shop}/customers/mismatched.
MISMATCHED = """
c.shopify_order_count IS NOT NULL AND c.deleted_at IS NULL AND c.redacted_at IS NULL
AND (c.shopify_order_count IS DISTINCT FROM coalesce(c.order_count, 0)
     OR abs(coalesce(c.total_spent, 0) - coalesce(c.shopify_amount_spent, 0)) > 0.01)
"""
_MISMATCHED_COUNT = f"SELECT count(*) FROM customers AS c WHERE {MISMATCHED}"  # noqa: S608


class _Snapshot(Collector):
    def __init__(
        self, runs: list[dict[str, Any]], shops: dict[str, Any], mismatched: int = 0
    ) -> None:
        self.runs = runs
        self.shops = shops
        self.mismatched = mismatched

    def collect(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "shopify_ingest_sync_runs", "Sync runs by status.", labels=["status"]
        )
        by_status = {row["status"]: row for row in self.runs}
        for status in SyncRunStatus:
            runs.add_metric([status.value], float(by_status.get(status.value, {}).get("runs", 0)))
        yield runs
        objects = CounterMetricFamily(
            "shopify_ingest_sync_objects", "Fetched objects by outcome.", labels=["outcome"]
        )
        for outcome in ("applied", "stale", "failed"):
            objects.add_metric([outcome], self._sum(outcome))
        yield objects
        yield CounterMetricFamily(
            "shopify_ingest_sync_api_cost", "Admin API cost points spent.", self._sum("api_cost")
        )
        yield CounterMetricFamily(
            "shopify_ingest_sync_throttle_wait_seconds",
            "Time spent waiting for the Admin API's rate limit.",
            self._sum("throttle_wait"),
        )
        yield GaugeMetricFamily(
            "shopify_ingest_sync_oldest_success_age_seconds",
            "Age of the oldest last successful sync among shops with credentials.",
            float(self.shops.get("oldest_success_age") or 0),
        )
        shops = GaugeMetricFamily(
            "shopify_ingest_sync_shops",
            "Shops whose sync is failing, or overdue (no success within SYNC_OVERDUE_SECONDS).",
            labels=["state"],
        )
        for state in ("failing", "overdue"):
            shops.add_metric([state], float(self.shops.get(state) or 0))
        yield shops
        yield GaugeMetricFamily(
            "shopify_ingest_customers_mismatched",
            "Customers whose order count or amount spent differs from Shopify's own figures"
            " (customers/purchasing_summary) by more than 0.01.",
            float(self.mismatched),
        )

    def _sum(self, column: str) -> float:
        return float(sum(float(row[column] or 0) for row in self.runs))


async def _read(connection: Connection, overdue_seconds: float) -> _Snapshot:
    runs = [dict(row) for row in await connection.fetch(_RUNS)]
    shops = await connection.fetchrow(_SHOPS, overdue_seconds)
    mismatched = await connection.fetchval(_MISMATCHED_COUNT)
    return _Snapshot(runs, dict(shops) if shops is not None else {}, int(mismatched or 0))


async def render_sync_metrics(database: Database, overdue_seconds: float) -> bytes:
    """The sync's metrics in Prometheus' text format; empty when the database does not answer."""
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT), database.connection() as connection:
            snapshot = await _read(connection, overdue_seconds)
    except (DatabaseUnavailable, TimeoutError):
        return b""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(snapshot)
    return generate_latest(registry)
