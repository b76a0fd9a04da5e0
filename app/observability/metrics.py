"""Prometheus metrics, served at GET /metrics.

With several server workers, each is its own process: `python -m app serve`
points PROMETHEUS_MULTIPROC_DIR at a fresh directory before the workers start,
and a scrape adds up every worker's values. Labels stay low-cardinality: topics
without a handler are reported as "other", and shops are never a label.
"""

from __future__ import annotations

import os
from typing import Any

from litestar import Request, Response, get
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from app.db.database import Database
from app.http.openapi import METRICS_RESPONSES
from app.http.state import database_of, settings_of
from app.subscriptions.metrics import render_subscription_metrics
from app.sync.metrics import render_sync_metrics

CONTENT_TYPE = CONTENT_TYPE_LATEST

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


def render(database: Database) -> bytes:
    record_pool(database)
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


@get(
    "/metrics",
    summary="Prometheus metrics",
    tags=["operations"],
    media_type=CONTENT_TYPE,
    responses=METRICS_RESPONSES,
)
async def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    database = database_of(request)
    settings = settings_of(request)
    sync = await render_sync_metrics(database, settings.sync_overdue_seconds)
    sync += await render_subscription_metrics(database, settings.silence_after_seconds)
    return Response(render(database) + sync, media_type=CONTENT_TYPE)
