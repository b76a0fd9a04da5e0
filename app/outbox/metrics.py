"""What /metrics shows of the relay, read from the database at each scrape.

The relay is a process of its own (python -m app events relay) without an
HTTP port; its position is in customer_event_relays, so the web service
reports how far behind it is: the age of the oldest event it has not
published yet and how many there are (counted up to LAG_COUNT_CAP), over
every node group it reads. With several relays (several streams), the one
furthest behind.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Gauge

from app.db.database import Connection, Database, DatabaseUnavailable
from app.observability.metrics import SCRAPE_TIMEOUT
from app.outbox.events import horizons

LAG_COUNT_CAP = 100_000

# Every relay's positions (one per node group), then what follows each: separate
# statements, because Citus refuses a correlated subquery over a distributed
# table from a reference table (customer_event_relays is one on a cluster).
_POSITIONS = "SELECT name, node_group, transaction_id, event_id FROM customer_event_relays"
_LAG = """
SELECT extract(epoch FROM now() - (
           SELECT e.occurred_at FROM customer_events AS e
           WHERE e.node_group = $1 AND (e.transaction_id, e.id) > ($2, $3)
           ORDER BY e.transaction_id, e.id LIMIT 1)) AS seconds,
       (SELECT count(*) FROM (
           -- A column, not none: Citus plans this subquery on its own and
           -- refuses a result without columns.
           SELECT 1 FROM customer_events AS e
           WHERE e.node_group = $1 AND (e.transaction_id, e.id) > ($2, $3)
           LIMIT $4) AS behind) AS events
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
            lags = await _lags(connection)
    except (DatabaseUnavailable, TimeoutError):
        return
    LAG_SECONDS.set(max((seconds for seconds, _ in lags.values()), default=0.0))
    LAG_EVENTS.set(max((events for _, events in lags.values()), default=0))


async def _lags(connection: Connection) -> dict[str, tuple[float, int]]:
    """Each relay's lag: the age of its oldest unpublished event and their count, over
    every node group (a group it has not read yet counts from its beginning)."""
    positions: dict[str, dict[int, tuple[int, int]]] = {}
    for row in await connection.fetch(_POSITIONS):
        by_group = positions.setdefault(row["name"], {})
        by_group[row["node_group"]] = (row["transaction_id"], row["event_id"])
    if not positions:
        return {}
    groups = await horizons(connection)
    lags: dict[str, tuple[float, int]] = {}
    for name, by_group in positions.items():
        seconds, events = 0.0, 0
        for group in sorted(groups.keys() | by_group.keys()):
            transaction_id, event_id = by_group.get(group, (0, 0))
            lag = await connection.fetchrow(_LAG, group, transaction_id, event_id, LAG_COUNT_CAP)
            assert lag is not None  # an aggregate's one row
            seconds = max(seconds, float(lag["seconds"] or 0))
            events += int(lag["events"])
        lags[name] = (seconds, min(events, LAG_COUNT_CAP))
    return lags
