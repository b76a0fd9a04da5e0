"""What /metrics shows of shop access: refreshes, tokens handed out, shops at risk."""

from __future__ import annotations

import asyncio

from prometheus_client import Counter, Gauge

from app.db.database import Database, DatabaseUnavailable
from app.observability.metrics import SCRAPE_TIMEOUT

TOKEN_REFRESHES = Counter(
    "shopify_ingest_token_refreshes_total",
    "Refreshes of expiring offline tokens by outcome: ok, failed (try again later),"
    " refused (the shop needs re-authorization).",
    ["outcome"],
)
TOKENS_ISSUED = Counter(
    "shopify_ingest_access_tokens_issued_total",
    "Access tokens handed to other components (POST /shops/{shop}/access-token), by caller"
    " (the X-Caller header; callers beyond the first few are counted as 'other').",
    ["caller"],
)
# Callers name themselves: a few distinct labels, never an unbounded number of series.
MAX_CALLERS = 20
_callers: set[str] = set()


def count_issued(caller: str) -> None:
    if caller not in _callers and len(_callers) >= MAX_CALLERS:
        caller = "other"
    _callers.add(caller)
    TOKENS_ISSUED.labels(caller=caller).inc()


NEEDING_REAUTHORIZATION = Gauge(
    "shopify_ingest_shops_needing_reauthorization",
    "Shops whose token or refresh Shopify refused: they are not synced until connected again.",
    multiprocess_mode="mostrecent",
)
NON_EXPIRING = Gauge(
    "shopify_ingest_shops_non_expiring_tokens",
    "Shops still on a non-expiring offline token (public apps: migrate before 2027-01-01).",
    multiprocess_mode="mostrecent",
)

_COUNTS = """
SELECT count(*) FILTER (WHERE invalid_at IS NOT NULL) AS needing_reauthorization,
       count(*) FILTER (WHERE invalid_at IS NULL AND refresh_token_encrypted IS NULL)
           AS non_expiring
FROM shop_credentials
"""


async def refresh_access_metrics(database: Database) -> None:
    """Read the figures; when the database does not answer in time, the last ones stay."""
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT), database.reading() as connection:
            counts = await connection.fetchrow(_COUNTS)
    except (DatabaseUnavailable, TimeoutError):
        return
    assert counts is not None
    NEEDING_REAUTHORIZATION.set(counts["needing_reauthorization"])
    NON_EXPIRING.set(counts["non_expiring"])
