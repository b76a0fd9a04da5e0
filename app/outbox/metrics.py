"""What /metrics shows of the relay, read from the database at each scrape.

The relay is a process of its own (python -m app events relay) without an
HTTP port; its position is in customer_event_relays, so the web service
reports how far behind it is: the age of the oldest event it has not
published yet and how many there are (counted up to LAG_COUNT_CAP). With
several relays (several streams), the one furthest behind.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Gauge

from app.db.database import Database, DatabaseUnavailable

SCRAPE_TIMEOUT = 0.5
LAG_COUNT_CAP = 100_000

_LAG = """
SELECT extract(epoch FROM now() - (
           SELECT e.occurred_at FROM customer_events AS e
           WHERE (e.transaction_id, e.id) > (r.transaction_id, r.event_id)
           ORDER BY e.transaction_id, e.id LIMIT 1)) AS seconds,
       (SELECT count(*) FROM (
           SELECT FROM customer_events AS e
           WHERE (e.transaction_id, e.id) > (r.transaction_id, r.event_id)
           LIMIT $1) AS behind) AS events
FROM customer_event_relays AS r
"""

LAG_SECONDS = Gauge(
    "shopify_ingest_events_relay_lag_seconds",
    "Age of the oldest customer event the relay has not published yet (0: none waiting,"
    " or no relay has run).",
    multiprocess_mode="mostrecent",
)
LAG_EVENTS = Gauge(
    "shopify_ingest_events_relay_lag_events",
    "Customer events the relay has not published yet (counted up to 100,000).",
    multiprocess_mode="mostrecent",
)


async def refresh_relay_metrics(database: Database) -> None:
    """Read the lag; when the database does not answer in time, the last figures stay."""
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT), database.reading() as connection:
            rows = await connection.fetch(_LAG, LAG_COUNT_CAP)
    except (DatabaseUnavailable, TimeoutError):
        return
    LAG_SECONDS.set(max([float(row["seconds"] or 0) for row in rows], default=0.0))
    LAG_EVENTS.set(max([int(row["events"]) for row in rows], default=0))
