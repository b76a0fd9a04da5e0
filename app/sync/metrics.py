"""What /metrics shows of the sync, read from the database at each scrape.

Runs happen in other processes (the compose `sync` service, other replicas,
a command line), so the figures come from where they all write: sync_runs
(never deleted, so its sums only grow and work as counters) and sync_state.
Shops are counted, never a label: thousands of shops must not become
thousands of series.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import Gauge

from app.db.database import Database, DatabaseUnavailable
from app.db.enums import SyncRunStatus
from app.observability.metrics import SCRAPE_TIMEOUT
from app.webhooks.handlers.customer_events import MISMATCHED

_RUNS = """
SELECT status, count(*) AS runs, sum(applied) AS applied, sum(stale) AS stale,
       sum(failed) AS failed, sum(api_cost) AS api_cost,
       sum(throttle_wait_seconds) AS throttle_wait
FROM sync_runs GROUP BY status
"""

# Per shop with credentials: its stalest resource's last success, and whether
# any resource failed after its last success (or Shopify refused the token).
# A join on shop_id rather than subqueries per row: Citus runs it on each shard.
_SHOPS = """
WITH state AS (
    SELECT shop_id, min(last_success_at) AS last_success,
           bool_or(last_failure_at > coalesce(last_success_at, '-infinity')) AS failed
    FROM sync_state GROUP BY shop_id
), shop AS (
    SELECT c.created_at, c.invalid_at IS NOT NULL OR coalesce(s.failed, false) AS failing,
           s.last_success
    FROM shop_credentials AS c LEFT JOIN state AS s ON s.shop_id = c.shop_id
)
SELECT count(*) FILTER (WHERE failing) AS failing,
       count(*) FILTER (WHERE NOT failing AND coalesce(last_success, created_at)
                        < now() - make_interval(secs => $1)) AS overdue,
       extract(epoch FROM now() - min(last_success)) AS oldest_success_age
FROM shop
"""

_MISMATCHED_COUNT = f"SELECT count(*) FROM customers AS c WHERE {MISMATCHED}"  # noqa: S608


# Figures from the database, set by the worker that serves a scrape: with
# several workers, the most recently set value is the one reported. The sums
# only grow, like counters, and keep their `_total` names.
RUNS = Gauge(
    "shopify_ingest_sync_runs_total",
    "Sync runs by status (recorded in the database by every process).",
    ["status"],
    multiprocess_mode="mostrecent",
)
OBJECTS = Gauge(
    "shopify_ingest_sync_objects_total",
    "Fetched objects by outcome.",
    ["outcome"],
    multiprocess_mode="mostrecent",
)
API_COST = Gauge(
    "shopify_ingest_sync_api_cost_total",
    "Admin API cost points spent.",
    multiprocess_mode="mostrecent",
)
THROTTLE_WAIT = Gauge(
    "shopify_ingest_sync_throttle_wait_seconds_total",
    "Time spent waiting for the Admin API's rate limit.",
    multiprocess_mode="mostrecent",
)
OLDEST_SUCCESS_AGE = Gauge(
    "shopify_ingest_sync_oldest_success_age_seconds",
    "Age of the oldest last successful sync among shops with credentials.",
    multiprocess_mode="mostrecent",
)
SHOPS = Gauge(
    "shopify_ingest_sync_shops",
    "Shops whose sync is failing, or overdue (no success within SYNC_OVERDUE_SECONDS).",
    ["state"],
    multiprocess_mode="mostrecent",
)
CUSTOMERS_MISMATCHED = Gauge(
    "shopify_ingest_customers_mismatched",
    "Customers whose order count or amount spent differs from Shopify's own figures"
    " (customers/purchasing_summary) by more than 0.01.",
    multiprocess_mode="mostrecent",
)


async def refresh_sync_metrics(database: Database, overdue_seconds: float) -> None:
    """Read the figures; when the database does not answer in time, the last ones stay."""
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT), database.reading() as connection:
            runs = await connection.fetch(_RUNS)
            shops = await connection.fetchrow(_SHOPS, overdue_seconds)
            mismatched = await connection.fetchval(_MISMATCHED_COUNT)
    except (DatabaseUnavailable, TimeoutError):
        return
    by_status = {row["status"]: row for row in runs}
    for status in SyncRunStatus:
        row = by_status.get(status.value)
        RUNS.labels(status=status.value).set(row["runs"] if row else 0)
    for outcome in ("applied", "stale", "failed"):
        OBJECTS.labels(outcome=outcome).set(_sum(runs, outcome))
    API_COST.set(_sum(runs, "api_cost"))
    THROTTLE_WAIT.set(_sum(runs, "throttle_wait"))
    OLDEST_SUCCESS_AGE.set(float((shops and shops["oldest_success_age"]) or 0))
    for state in ("failing", "overdue"):
        SHOPS.labels(state=state).set(float((shops and shops[state]) or 0))
    CUSTOMERS_MISMATCHED.set(int(mismatched or 0))


def _sum(runs: list[Any], column: str) -> float:
    return float(sum(float(row[column] or 0) for row in runs))
