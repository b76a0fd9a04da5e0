"""One scoring pass over a shop: read the scores in one statement, write what changed in batches.

scores_compute reads every figure of the shop in one statement and returns
only the customers whose scores differ from what is stored (with the values
it read, so that a row is written only while it still holds them);
scores_apply writes them a batch at a time, each batch a short transaction of
its own, so that a delivery waiting for a customer row the pass holds waits
for one batch, not for the whole pass (two batches are written at once). A
pass that changes nothing writes nothing and announces nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from app.db.database import Database, Transaction

log = logging.getLogger("app.scores")

# Customers written per transaction: each batch holds its rows' locks only
# while it runs, a small part of a second, well within a delivery's
# lock_timeout. On Citus a row written costs far more (statements planned on
# the coordinator, each segment_change event written by dynamic SQL on the
# worker), so batches are much smaller there to hold their locks as briefly.
BATCH_SIZE = 5000
CITUS_BATCH_SIZE = 100
# Batches written at once: they hold different rows, so they never wait for
# each other, and a first pass writes as many rows as the shop has customers.
BATCHES_IN_FLIGHT = 2
# Reading a large shop's figures sorts and hashes as many rows as it has
# customers; generous, but bounded, so a stuck database fails the pass.
COMPUTE_STATEMENT_TIMEOUT = 300.0
BATCH_STATEMENT_TIMEOUT = 30.0

_COMPUTE = "SELECT * FROM scores_compute($1, $2)"
# The arrays scores_compute returns and scores_apply takes, in its order:
# the values read, then the new ones.
_SCORES = (
    *("stored_r", "stored_f", "stored_m", "stored_segments"),
    *("rfm_r", "rfm_f", "rfm_m", "segments"),
)
_APPLY = (
    "SELECT written, segment_changes, busy FROM scores_apply("
    "$1, $2, $3, $4, $5, $6::text[], $7, $8, $9, $10::text[])"
)
# Every shop that has customers, but those erased: a walk over the shop_id
# index, one step per shop (rather than reading every customer).
_SHOPS = """
WITH RECURSIVE shop AS (
    (SELECT shop_id FROM customers ORDER BY shop_id LIMIT 1)
    UNION ALL
    SELECT (SELECT c.shop_id FROM customers AS c WHERE c.shop_id > s.shop_id
            ORDER BY c.shop_id LIMIT 1)
    FROM shop AS s WHERE s.shop_id IS NOT NULL
)
SELECT shop_id FROM shop WHERE shop_id IS NOT NULL
EXCEPT
SELECT shop_id FROM shops WHERE redacted_at IS NOT NULL
ORDER BY 1
"""
# The same on Citus, which refuses a recursive query over a distributed table:
# each shard lists its own shops.
_SHOPS_CITUS = """
SELECT shop_id FROM (SELECT DISTINCT shop_id FROM customers) AS c
EXCEPT
SELECT shop_id FROM shops WHERE redacted_at IS NOT NULL
ORDER BY 1
"""


@dataclass
class ScoreReport:
    """What one pass over a shop did."""

    shop: str
    scored: int = 0  # customers with a counted order, scored
    changed: int = 0  # customers whose scores differed from the stored ones
    written: int = 0  # rows written (changed, less those busy, gone or changed meanwhile)
    segment_changes: int = 0  # segment_change events announced
    busy: int = 0  # rows another transaction held at that moment: left for the next pass
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.shop}: scored {self.scored} customers, {self.changed} changed,"
            f" {self.written} written, {self.segment_changes} segment changes,"
            f" {self.busy} busy ({self.seconds:.2f} s)"
        )


async def score_shop(database: Database, shop: str, new_customer_days: int) -> ScoreReport:
    """Score every customer of `shop` and write the scores that changed."""
    began = time.perf_counter()
    report = ScoreReport(shop)

    async def compute(tx: Transaction) -> Any:
        return await tx.fetchrow(_COMPUTE, shop, new_customer_days)

    row = await database.run_in_transaction(compute, statement_timeout=COMPUTE_STATEMENT_TIMEOUT)
    report.scored = row["scored"]
    ids = row["ids"] or []
    report.changed = len(ids)
    # Batch k takes every n-th customer: scores_compute lists them about in
    # the table's physical order, so each batch changes a row or two per page
    # and the new row versions fit on their page (HOT updates, no index
    # entries) once the batch before has committed and its old versions can be
    # pruned. Consecutive customers in one batch would fill each page at once.
    batch_size = CITUS_BATCH_SIZE if await database.on_citus() else BATCH_SIZE
    count = -(-len(ids) // batch_size)
    batches = [(ids[k::count], *(row[name][k::count] for name in _SCORES)) for k in range(count)]
    turns = asyncio.Semaphore(BATCHES_IN_FLIGHT)

    async def apply(batch: tuple[list[Any], ...]) -> None:
        async with turns:
            written, changes, busy = await _apply(database, shop, batch)
        report.written += written
        report.segment_changes += changes
        report.busy += busy

    async with asyncio.TaskGroup() as group:
        for batch in batches:
            group.create_task(apply(batch))
    report.seconds = time.perf_counter() - began
    log.info("scoring pass", extra={"fields": _fields(report)})
    return report


async def _apply(database: Database, shop: str, batch: tuple[list[Any], ...]) -> tuple[int, ...]:
    async def apply(tx: Transaction) -> tuple[int, ...]:
        written = await tx.fetchrow(_APPLY, shop, *batch)
        assert written is not None
        return written["written"], written["segment_changes"], written["busy"]

    return await database.run_in_transaction(apply, statement_timeout=BATCH_STATEMENT_TIMEOUT)


async def shops_to_score(database: Database) -> list[str]:
    query = _SHOPS_CITUS if await database.on_citus() else _SHOPS
    async with database.connection() as connection:
        return [row["shop_id"] for row in await connection.fetch(query)]


def _fields(report: ScoreReport) -> dict[str, Any]:
    return {
        "shop": report.shop,
        "scored": report.scored,
        "changed": report.changed,
        "written": report.written,
        "segment_changes": report.segment_changes,
        "busy": report.busy,
        "duration_s": round(report.seconds, 3),
    }
