"""Shops that had traffic and went silent, from the ledger, in one bounded query.

Every row of webhook_events is a delivery the service accepted (signature
verified). Per shop: its last delivery and its usual gap, the 90th percentile
of the gaps between its last RECENT_DELIVERIES deliveries. A shop is silent
when nothing came for longer than GAP_FACTOR times its usual gap, and at least
SILENCE_AFTER. Uninstalled and erased shops are left out: their silence is
expected.

Bounded: the shops are the `shops` rows (every delivery's shop has one,
written with its first ledger row), one probe of the ledger each, not a scan
of it, and only each shop's last RECENT_DELIVERIES rows are kept (an index on
(shop_id, received_at) would let PostgreSQL read just those rows). No
recursive query: Citus refuses one over a distributed table; the per-shop
probe is a join on shop_id, which it runs on each shard.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from app.db.database import Connection

RECENT_DELIVERIES = 50
GAP_FACTOR = 3.0

_SILENT = """
WITH recent AS (
    SELECT i.shop_id, r.received_at,
           r.received_at - lag(r.received_at) OVER (PARTITION BY i.shop_id
                                                    ORDER BY r.received_at) AS gap
    FROM shops AS i
    CROSS JOIN LATERAL (
        SELECT received_at FROM webhook_events AS e WHERE e.shop_id = i.shop_id
        ORDER BY received_at DESC LIMIT $3::int
    ) AS r
),
per_shop AS (
    SELECT shop_id, max(received_at) AS last_delivery_at, count(*) AS deliveries,
           extract(epoch FROM percentile_cont(0.9) WITHIN GROUP (ORDER BY gap))::float8
               AS usual_gap_seconds
    FROM recent GROUP BY shop_id
),
threshold AS (
    SELECT p.*,
           greatest(coalesce(p.usual_gap_seconds * $2::float8, 0), $1::float8)
               AS threshold_seconds
    FROM per_shop AS p
),
silent AS (
    SELECT t.* FROM threshold AS t
    LEFT JOIN shops AS s ON s.shop_id = t.shop_id
    WHERE s.redacted_at IS NULL
      AND (s.uninstalled_at IS NULL OR s.uninstalled_at < t.last_delivery_at)
      AND t.last_delivery_at < now() - make_interval(secs => t.threshold_seconds)
)
"""

SILENT_SHOPS = (
    _SILENT
    + """
SELECT silent.shop_id, silent.last_delivery_at, silent.deliveries, silent.usual_gap_seconds,
       silent.threshold_seconds,
       extract(epoch FROM now() - silent.last_delivery_at)::float8 AS silent_seconds,
       c.checked_at, c.missing, c.extra, c.misdirected, c.error
FROM silent LEFT JOIN subscription_checks AS c ON c.shop_id = silent.shop_id
ORDER BY silent.last_delivery_at, silent.shop_id
LIMIT $4
"""
)

COUNTS = (
    _SILENT  # noqa: S608 (constant text; values are parameters)
    + """
SELECT (SELECT count(*) FROM silent) AS silent,
       (SELECT count(*) FROM subscription_checks WHERE missing > 0) AS missing_subscriptions
"""
)


class LastCheck(msgspec.Struct):
    checked_at: datetime
    missing: int
    extra: int
    misdirected: int
    error: str | None


class SilentShop(msgspec.Struct):
    shop: str
    last_delivery_at: datetime
    silent_seconds: float
    # 90th percentile of the gaps between its recent deliveries (None: only one delivery).
    usual_gap_seconds: float | None
    threshold_seconds: float
    recent_deliveries: int
    last_check: LastCheck | None


def _silent_shop(row: Any) -> SilentShop:
    check = None
    if row["checked_at"] is not None:
        check = LastCheck(
            checked_at=row["checked_at"],
            missing=row["missing"],
            extra=row["extra"],
            misdirected=row["misdirected"],
            error=row["error"],
        )
    gap = row["usual_gap_seconds"]
    return SilentShop(
        shop=row["shop_id"],
        last_delivery_at=row["last_delivery_at"],
        silent_seconds=float(row["silent_seconds"]),
        usual_gap_seconds=float(gap) if gap is not None else None,
        threshold_seconds=float(row["threshold_seconds"]),
        recent_deliveries=int(row["deliveries"]),
        last_check=check,
    )


async def silent_shops(
    connection: Connection, silence_after_seconds: float, limit: int = 1000
) -> list[SilentShop]:
    """Silent shops, longest silent first."""
    rows = await connection.fetch(
        SILENT_SHOPS, silence_after_seconds, GAP_FACTOR, RECENT_DELIVERIES, limit
    )
    return [_silent_shop(row) for row in rows]


async def health_counts(connection: Connection, silence_after_seconds: float) -> dict[str, int]:
    """How many shops are silent, and how many lacked subscriptions at their last check."""
    row = await connection.fetchrow(COUNTS, silence_after_seconds, GAP_FACTOR, RECENT_DELIVERIES)
    if row is None:
        return {"silent": 0, "missing_subscriptions": 0}
    return {
        "silent": int(row["silent"]),
        "missing_subscriptions": int(row["missing_subscriptions"]),
    }
