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

# The relay furthest behind, then what follows its position: two statements,
# because Citus refuses a correlated subquery over a distributed table from a
# reference table (customer_event_relays is one on a cluster).
_FURTHEST_BEHIND = """
SELECT transaction_id, event_id FROM customer_event_relays
ORDER BY transaction_id, event_id LIMIT 1
"""
_LAG = """
SELECT extract(epoch FROM now() - (
           SELECT e.occurred_at FROM customer_events AS e
           WHERE (e.transaction_id, e.id) > ($1, $2)
           ORDER BY e.transaction_id, e.id LIMIT 1)) AS seconds,
       (SELECT count(*) FROM (
           -- A column, not none: Citus plans this subquery on its own and
           -- refuses a result without columns.
           SELECT 1 FROM customer_events AS e
           WHERE (e.transaction_id, e.id) > ($1, $2)
           LIMIT $3) AS behind) AS events
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
            relay = await connection.fetchrow(_FURTHEST_BEHIND)
            lag = relay and await connection.fetchrow(
                _LAG, relay["transaction_id"], relay["event_id"], LAG_COUNT_CAP
            )
    except (DatabaseUnavailable, TimeoutError):
        return
    LAG_SECONDS.set(float(lag["seconds"] or 0) if lag else 0.0)
    LAG_EVENTS.set(int(lag["events"]) if lag else 0)
