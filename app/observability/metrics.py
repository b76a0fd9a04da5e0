"""Prometheus metrics, served at GET /metrics.

With several server workers, each is its own process: `python -m app serve`
points PROMETHEUS_MULTIPROC_DIR at a fresh directory before the workers start,
and a scrape adds up every worker's values. Labels stay low-cardinality: topics
without a handler are reported as "other", and shops are never a label.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request
from litestar.plugins.prometheus import PrometheusController
from prometheus_client import Counter, Gauge, Histogram

from app.db.database import Database

# How long the figures a scrape reads from the database may take, per part
# (sync, subscriptions, access, relay); after it the scrape goes on without
# them and the last ones stay. Long enough for the fan-out queries on a Citus
# cluster under load; the parts in a row stay inside Prometheus's default
# scrape timeout.
SCRAPE_TIMEOUT = 1.5

DELIVERIES = Counter(
    "shopify_ingest_deliveries_total",
    "Webhook deliveries by topic and outcome (processed, duplicate, stale, failed, ignored, "
    "rejected_signature, rejected_bad_request, rejected_too_large, unavailable, error).",
    ["topic", "outcome"],
)
WEBHOOK_SECONDS = Histogram(
    "shopify_ingest_webhook_request_seconds",
    "Time to answer POST /webhooks/shopify.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
REPLAYED = Counter("shopify_ingest_replayed_total", "Replayed deliveries by outcome.", ["outcome"])
POOL_CONNECTIONS = Gauge(
    "shopify_ingest_db_pool_connections",
    "Database pool connections, open and in use (summed over workers).",
    ["state"],
    multiprocess_mode="livesum",
)
POOL_MAX = Gauge(
    "shopify_ingest_db_pool_max_connections",
    "Largest pool size allowed (summed over workers).",
    multiprocess_mode="livesum",
)


def record_pool(database: Database) -> None:
    open_connections, in_use = database.pool_usage()
    POOL_CONNECTIONS.labels(state="open").set(open_connections)
    POOL_CONNECTIONS.labels(state="in_use").set(in_use)
    POOL_MAX.set(database.pool_size)


Refresh = Callable[[Request[Any, Any, Any]], Awaitable[None]]


def metrics_controller(*refreshers: Refresh) -> type[PrometheusController]:
    """Litestar's Prometheus endpoint at /metrics, with the figures read from the
    database (`refreshers`) brought up to date before each scrape."""

    async def refresh(request: Request[Any, Any, Any]) -> None:
        for refresher in refreshers:
            await refresher(request)

    class MetricsController(PrometheusController):
        path = "/metrics"
        include_in_schema = False  # Prometheus' text format, for Prometheus
        before_request = staticmethod(refresh)

    return MetricsController
