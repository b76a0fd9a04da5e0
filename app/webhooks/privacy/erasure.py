"""Erasures of any size: customers/redact and shop/redact, in batches.

A customer with 100,000 orders or a shop with millions of rows cannot be
erased in one transaction inside Shopify's 5 seconds (and one advisory lock
per order would fill PostgreSQL's lock table). So a redact is recorded first, in
a short transaction that also writes an `erasures` row (the work to do) and
marks the ledger row `erasing`; the erasure then proceeds in batches, each a
transaction of its own under the customer's (or the shop's) lock only:

- inline, while Shopify waits, until INLINE_DEADLINE after the delivery
  arrived: a small erasure is complete before the answer (`processed`);
- otherwise the answer is `erasing` (200: the request is durably recorded)
  and every worker's ErasureWorker finishes it in the background. A restart
  resumes it, since the work to do is in the database; a retry of the same
  delivery is a duplicate.

A customer's erasure goes through three phases: "orders" (the sync's staged
rows about them, then the email and the line items' personal fields on their
orders), "ledger" (every ledger payload about them or their orders, of any
status; the emails and phones found there are kept as identifiers), then
"unknown" (ledger payloads of shapes this service does not know, ignored or
failed, that contain one of those identifiers: an earlier email too).

When the erasure is complete the ledger row becomes `processed` and the
`erasures` row (which holds the customer's email, phone and name while the
work lasts) is deleted. Batches are idempotent: running one twice, or from two
workers, changes nothing more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from app.db.database import Database, Transaction, is_database_failure
from app.db.enums import ErasureKind
from app.webhooks.ledger import lock
from app.webhooks.privacy.scrub import identifiers_in, scrub_text

log = logging.getLogger("app.erasure")

# Rows deleted or updated per batch transaction, and ledger payloads scrubbed
# per batch (each is parsed and rewritten in Python).
BATCH_ROWS = 5000
LEDGER_BATCH = 1000
# A redact delivery works on its erasure until this many seconds after it
# arrived, then answers: inside Shopify's 5 s with room for the answer.
INLINE_DEADLINE = 3.5
# A background batch's statement and lock timeout (a batch takes well under 1 s).
BATCH_STATEMENT_TIMEOUT = 15.0
# How often an idle worker looks for erasures in progress.
POLL_SECONDS = 2.0

_START = """
INSERT INTO erasures (shop_id, ledger_id, kind, customer_shopify_id, customer_id, order_ids,
                      identifiers, name, phase, batches)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0)
RETURNING id
"""
_COLUMNS = (
    "id, shop_id, ledger_id, kind, customer_shopify_id, customer_id, order_ids,"
    " identifiers, name, phase, ledger_done, cardinality(ledger_ids) AS ledger_total"
)
# Erasures to try, at random rather than the oldest first: one whose batches
# keep failing must not hold up the others. Read without locks, then claimed
# one at a time by shop and id: Citus takes row locks (FOR UPDATE) only in a
# statement that goes to one shard.
_CANDIDATES = "SELECT shop_id, id FROM erasures ORDER BY random() LIMIT $1"
CANDIDATES_PER_CLAIM = 8
# One of them, unless another transaction is working on it.
_CLAIM_FREE = (
    f"SELECT {_COLUMNS} FROM erasures WHERE shop_id = $1 AND id = $2"  # noqa: S608 (static)
    " FOR UPDATE SKIP LOCKED"
)
# This one; waits while another worker runs a batch of it.
_CLAIM_THIS = f"SELECT {_COLUMNS} FROM erasures WHERE shop_id = $1 AND id = $2 FOR UPDATE"  # noqa: S608

# The sync's staged bulk lines about the customer ($2; their orders: $3), in
# any run of the shop, and every staged line of the shop's runs no longer alive
# (a killed run's lines stay until its shop's next run would delete them).
_ERASE_STAGED = """
DELETE FROM sync_bulk_rows WHERE shop_id = $1 AND id IN (
    SELECT b.id FROM sync_bulk_rows AS b
    JOIN sync_runs AS r ON r.shop_id = b.shop_id AND r.id = b.run_id
    WHERE b.shop_id = $1 AND (
        NOT EXISTS (SELECT FROM sync_leases AS l
                    WHERE l.shop_id = $1 AND l.run_id = r.id AND l.expires_at > now())
        OR b.gid = 'gid://shopify/Customer/' || $2
        OR b.document -> 'customer' ->> 'legacyResourceId' = $2
        OR b.document ->> 'legacyResourceId' = ANY($3::text[])
        OR b.parent_gid IN (
            SELECT p.gid FROM sync_bulk_rows AS p
            WHERE p.shop_id = $1 AND p.run_id = b.run_id
              AND (p.document -> 'customer' ->> 'legacyResourceId' = $2
                   OR p.document ->> 'legacyResourceId' = ANY($3::text[]))))
    LIMIT $4)
"""
# The customer's orders ($2: listed in the redact, $3: theirs by row): the
# emails they hold, then the email and the line items' personal fields erased.
_ORDERS_TO_ERASE = """
SELECT id, lower(email) AS email FROM orders
WHERE shop_id = $1 AND (shopify_id = ANY($2::varchar[]) OR customer_id = $3)
  AND (email IS NOT NULL OR jsonb_path_exists(
      line_items, '$[*] ? (exists(@.properties) || exists(@.destination_location))'))
LIMIT $4
"""
_ERASE_ORDERS = """
UPDATE orders SET email = NULL, line_items = CASE WHEN jsonb_typeof(line_items) = 'array' THEN (
    SELECT coalesce(jsonb_agg(CASE WHEN jsonb_typeof(item) = 'object'
                                   THEN item - '{properties,destination_location}'::text[]
                                   ELSE item END ORDER BY position), '[]')
    FROM jsonb_array_elements(line_items) WITH ORDINALITY AS items(item, position))
    ELSE line_items END
WHERE shop_id = $2 AND id = ANY($1::uuid[])
"""
_CUSTOMER_ORDERS = "SELECT shopify_id FROM orders WHERE shop_id = $1 AND customer_id = $2"
_ADD_IDENTIFIERS = """
UPDATE erasures
SET identifiers = ARRAY(SELECT DISTINCT unnest(coalesce(identifiers, '{}') || $2::text[]))
WHERE shop_id = $3 AND id = $1
"""

# Ledger rows about the customer ($2) or their orders ($3) in the shop ($1),
# of any status, found through the jsonb expression indexes. Listed once (a few
# MB for 100,000 rows), then worked through. Rows arriving later about the
# customer are stored scrubbed already.
_LIST_LEDGER = """
WITH about AS (
    SELECT id FROM webhook_events
    WHERE shop_id = $1 AND (payload -> 'customer' ->> 'id') = $2
    UNION
    SELECT id FROM webhook_events
    WHERE shop_id = $1 AND (payload ->> 'id') = $2 AND topic LIKE 'customers/%'
    UNION
    SELECT id FROM webhook_events
    WHERE shop_id = $1 AND (payload ->> 'id') = ANY($3::text[]) AND topic LIKE 'orders/%'
    UNION
    SELECT id FROM webhook_events
    WHERE shop_id = $1 AND topic IN (
        'customer.tags_added', 'customer.tags_removed', 'customers/purchasing_summary',
        'customers_email_marketing_consent/update', 'customers_marketing_consent/update',
        'customers/merge')
      AND 'gid://shopify/Customer/' || $2 IN (
        payload ->> 'customerId', payload ->> 'admin_graphql_api_customer_kept_id',
        payload ->> 'admin_graphql_api_customer_deleted_id')
      OR shop_id = $1 AND topic = 'customers_email_marketing_consent/update'
         AND (payload ->> 'customer_id') = $2
      OR shop_id = $1 AND topic = 'customers_marketing_consent/update'
         AND (payload ->> 'id') = $2
)
UPDATE erasures SET ledger_ids = coalesce((SELECT array_agg(id ORDER BY id) FROM about), '{}'),
    ledger_done = 0, phase = 'ledger', batches = batches + 1
WHERE shop_id = $1 AND id = $4
"""
# Rows of shapes this service does not know (ignored or failed) that contain
# one of the customer's emails or phones ($2, lower case), about them or not.
_LIST_UNKNOWN = """
UPDATE erasures SET ledger_ids = coalesce((
    SELECT array_agg(id ORDER BY id) FROM webhook_events
    WHERE shop_id = $1 AND status IN ('ignored', 'failed') AND payload IS NOT NULL
      AND EXISTS (SELECT FROM unnest($2::text[]) AS v WHERE strpos(lower(payload::text), v) > 0)
), '{}'), ledger_done = 0, phase = 'unknown', batches = batches + 1
WHERE shop_id = $1 AND id = $3
"""
_NEXT_LEDGER_ROWS = """
SELECT e.id, e.payload::text AS payload
FROM webhook_events AS e
WHERE e.shop_id = $4
  AND e.id = ANY((SELECT ledger_ids[$2 + 1:$2 + $3] FROM erasures
                  WHERE shop_id = $4 AND id = $1)::uuid[])
  AND e.payload IS NOT NULL
"""
_STORE_SCRUBBED = """
UPDATE webhook_events AS e SET payload = s.payload
FROM unnest($1::uuid[], $2::jsonb[]) AS s(id, payload) WHERE e.shop_id = $3 AND e.id = s.id
"""

# A shop's rows, children before parents, a batch at a time. Customers who
# still have orders (a delivery may have added one since) wait for a later
# batch: orders.customer_id refuses their deletion. The sync's staged lines go
# before its runs, by which they are found. The redact's own ledger row ($3) stays.
# The batch's ids are picked first, as an array (`= ANY(ARRAY(...))`), not as
# `IN (SELECT ...)`: for a shop just loaded, whose tables have no statistics
# yet, the planner ran that subquery again for every row of the shop.
_ERASE_SHOP = (
    "DELETE FROM sync_bulk_rows WHERE shop_id = $1 AND id = ANY(ARRAY("
    "SELECT id FROM sync_bulk_rows WHERE shop_id = $1 LIMIT $2))",
    "DELETE FROM sync_runs WHERE shop_id = $1 AND id = ANY(ARRAY("
    "SELECT id FROM sync_runs WHERE shop_id = $1 LIMIT $2))",
    "DELETE FROM customer_events WHERE shop_id = $1 AND id = ANY(ARRAY("
    "SELECT id FROM customer_events WHERE shop_id = $1 LIMIT $2))",
    "DELETE FROM message_logs WHERE shop_id = $1 AND id = ANY(ARRAY("
    "SELECT id FROM message_logs WHERE shop_id = $1 LIMIT $2))",
    "DELETE FROM automations WHERE shop_id = $1 AND id = ANY(ARRAY("
    "SELECT id FROM automations WHERE shop_id = $1 LIMIT $2))",
    "DELETE FROM orders WHERE shop_id = $1 AND id = ANY(ARRAY("
    "SELECT id FROM orders WHERE shop_id = $1 LIMIT $2))",
    "DELETE FROM customers WHERE shop_id = $1 AND id = ANY(ARRAY(SELECT id FROM customers AS c"
    " WHERE shop_id = $1 AND NOT EXISTS (SELECT FROM orders AS o WHERE {orders_of_c}) LIMIT $2))",
    "DELETE FROM webhook_events WHERE shop_id = $1 AND id = ANY(ARRAY("
    "SELECT id FROM webhook_events WHERE shop_id = $1 AND id <> $3::uuid LIMIT $2))",
)

# How the customers' statement finds a customer's orders. On plain PostgreSQL
# by customer id alone, through its index: with the shop's condition as well, a
# planner without statistics yet (a shop just loaded) reads all the shop's
# orders again for each customer. Citus joins them only on the shop.
_ORDERS_OF_C = {
    False: "o.customer_id = c.id",
    True: "o.shop_id = c.shop_id AND o.customer_id = c.id",
}

_FINISH = """
UPDATE webhook_events SET status = 'processed', processed_at = now()
WHERE shop_id = $2 AND id = $1 AND status = 'erasing'
"""


@dataclass(frozen=True)
class Erasure:
    """An `erasures` row: what is left to erase."""

    id: UUID
    shop: str
    ledger_id: UUID
    kind: ErasureKind
    customer_shopify_id: str | None
    customer_id: UUID | None
    order_ids: list[str]
    identifiers: list[str]
    name: str | None
    phase: str
    ledger_done: int
    ledger_total: int

    @classmethod
    def of(cls, row: asyncpg.Record) -> Erasure:
        return cls(
            id=row["id"],
            shop=row["shop_id"],
            ledger_id=row["ledger_id"],
            kind=ErasureKind(row["kind"]),
            customer_shopify_id=row["customer_shopify_id"],
            customer_id=row["customer_id"],
            order_ids=list(row["order_ids"] or []),
            identifiers=list(row["identifiers"] or []),
            name=row["name"],
            phase=row["phase"],
            ledger_done=row["ledger_done"],
            ledger_total=row["ledger_total"] or 0,
        )


# --- starting an erasure (inside the transaction that records the redact) ----


async def start_customer_erasure(
    tx: Transaction,
    *,
    shop: str,
    ledger_id: UUID,
    customer_shopify_id: str,
    customer_id: UUID,
    order_ids: Sequence[str],
    identifiers: Sequence[str],
    name: str | None,
) -> UUID:
    erasure_id: UUID = await tx.fetchval(
        _START,
        shop,
        ledger_id,
        ErasureKind.customer.value,
        customer_shopify_id,
        customer_id,
        list(order_ids),
        list(identifiers),
        name,
        "orders",
    )
    return erasure_id


async def start_shop_erasure(tx: Transaction, *, shop: str, ledger_id: UUID) -> UUID:
    # A shop erasure supersedes the customer erasures in progress there.
    await tx.execute("DELETE FROM erasures WHERE shop_id = $1", shop)
    erasure_id: UUID = await tx.fetchval(
        _START, shop, ledger_id, ErasureKind.shop.value, None, None, None, None, None, "rows"
    )
    return erasure_id


# --- running it ------------------------------------------------------------


async def erase_inline(database: Database, shop: str, erasure_id: UUID, started: float) -> bool:
    """Work on one erasure until INLINE_DEADLINE after `started`; whether it is complete.

    Any failure (timeout, database away) leaves it to the background: the
    redact is recorded, so the delivery is answered 200 either way.
    """
    loop = asyncio.get_running_loop()
    while (remaining := started + INLINE_DEADLINE - loop.time()) > 0.1:
        try:
            async with asyncio.timeout(remaining):
                step = await erase_step(database, (shop, erasure_id), statement_timeout=remaining)
        except Exception as error:
            if not is_database_failure(error):
                raise
            log.info(
                "erasure continues in the background",
                extra={"fields": {"erasure_id": str(erasure_id), "reason": type(error).__name__}},
            )
            return False
        if step is None or step[1]:
            return True
    return False


async def _claim_free(tx: Transaction, candidates: list[asyncpg.Record]) -> asyncpg.Record | None:
    """The first of `candidates` no other transaction is working on, locked; None: none free."""
    for candidate in candidates:
        row = await tx.fetchrow(_CLAIM_FREE, candidate["shop_id"], candidate["id"])
        if row is not None:
            return row
    return None


async def erase_step(
    database: Database,
    erasure: tuple[str, UUID] | None = None,
    *,
    statement_timeout: float = BATCH_STATEMENT_TIMEOUT,
) -> tuple[UUID, bool] | None:
    """One batch of `erasure` (its shop and id; None: any erasure free): (its id, complete?).

    None: there is no such erasure (complete already, or none at all).
    """
    citus = await database.on_citus()
    # Listed before the batch's transaction: a read of every shop's shards
    # there would keep Citus from writing the reference table automations in it.
    candidates = await database.fetch(_CANDIDATES, CANDIDATES_PER_CLAIM) if erasure is None else []

    async def batch(tx: Transaction) -> tuple[UUID, bool] | None:
        row = await (
            _claim_free(tx, candidates) if erasure is None else tx.fetchrow(_CLAIM_THIS, *erasure)
        )
        if row is None:
            return None
        claimed = Erasure.of(row)
        if claimed.kind is ErasureKind.shop:
            complete = await _shop_batch(tx, claimed, citus=citus)
        else:
            complete = await _customer_batch(tx, claimed)
        if complete:
            await tx.execute(_FINISH, claimed.ledger_id, claimed.shop)
            await tx.execute(
                "DELETE FROM erasures WHERE shop_id = $1 AND id = $2", claimed.shop, claimed.id
            )
            log.info(
                "erasure complete",
                extra={"fields": {"erasure_id": str(claimed.id), "shop": claimed.shop}},
            )
        return claimed.id, complete

    return await database.run_in_transaction(batch, statement_timeout=statement_timeout)


async def _customer_batch(tx: Transaction, erasure: Erasure) -> bool:
    # The customer's lock, not one per order: deliveries of their orders take
    # it too (see the delivery functions), and the lock table stays small.
    await lock(tx, erasure.shop, customers=[erasure.customer_shopify_id or ""])
    if erasure.phase == "orders":
        return await _orders_batch(tx, erasure)
    rows = await tx.fetch(
        _NEXT_LEDGER_ROWS, erasure.id, erasure.ledger_done, LEDGER_BATCH, erasure.shop
    )
    known = {value for value in (*erasure.identifiers, erasure.name) if value}
    if rows:
        if erasure.phase == "ledger":
            found = set().union(*(identifiers_in(row["payload"]) for row in rows))
            await tx.execute(_ADD_IDENTIFIERS, erasure.id, sorted(found), erasure.shop)
            known |= found
        scrubbed = [scrub_text(row["payload"], known) for row in rows]
        await tx.execute(_STORE_SCRUBBED, [row["id"] for row in rows], scrubbed, erasure.shop)
    done = erasure.ledger_done + LEDGER_BATCH
    if done < erasure.ledger_total:
        await _progress(tx, erasure, erasure.phase, done)
        return False
    if erasure.phase == "unknown":
        return True
    # The identifiers found in the payloads about them (an earlier email, say).
    identifiers = await tx.fetchval(
        "SELECT identifiers FROM erasures WHERE shop_id = $1 AND id = $2", erasure.shop, erasure.id
    )
    await tx.execute(_LIST_UNKNOWN, erasure.shop, list(identifiers or []), erasure.id)
    return False


async def _orders_batch(tx: Transaction, erasure: Erasure) -> bool:
    """The staged lines about the customer, then their orders, a batch at a time."""
    customer = erasure.customer_shopify_id
    staged = await tx.execute(_ERASE_STAGED, erasure.shop, customer, erasure.order_ids, BATCH_ROWS)
    if _count(staged) == BATCH_ROWS:
        await _progress(tx, erasure, "orders", 0)
        return False
    orders = await tx.fetch(
        _ORDERS_TO_ERASE, erasure.shop, erasure.order_ids, erasure.customer_id, BATCH_ROWS
    )
    if orders:
        emails = sorted({row["email"] for row in orders if row["email"]})
        await tx.execute(_ADD_IDENTIFIERS, erasure.id, emails, erasure.shop)
        await tx.execute(_ERASE_ORDERS, [row["id"] for row in orders], erasure.shop)
    if len(orders) == BATCH_ROWS:
        await _progress(tx, erasure, "orders", 0)
        return False
    theirs = await tx.fetch(_CUSTOMER_ORDERS, erasure.shop, erasure.customer_id)
    order_ids = sorted({row["shopify_id"] for row in theirs} | set(erasure.order_ids))
    await tx.execute(_LIST_LEDGER, erasure.shop, customer, order_ids, erasure.id)
    return False


async def _shop_batch(tx: Transaction, erasure: Erasure, *, citus: bool) -> bool:
    # The whole shop, exclusively, for one short batch: waits for the shop's
    # deliveries in flight, holds off new ones until it commits.
    await lock(tx, erasure.shop, whole_shop=True)
    left = BATCH_ROWS
    for each in _ERASE_SHOP:
        statement = each.format(orders_of_c=_ORDERS_OF_C[citus])
        extra = (erasure.ledger_id,) if "$3" in statement else ()
        status = await tx.execute(statement, erasure.shop, left, *extra)
        left -= _count(status)
        if left <= 0:
            await _progress(tx, erasure, "rows", 0)
            return False
    return left == BATCH_ROWS  # a batch that found nothing left: complete


async def _progress(tx: Transaction, erasure: Erasure, phase: str, ledger_done: int) -> None:
    await tx.execute(
        "UPDATE erasures SET phase = $2, ledger_done = $3, batches = batches + 1"
        " WHERE shop_id = $4 AND id = $1",
        erasure.id,
        phase,
        ledger_done,
        erasure.shop,
    )


def _count(status: str) -> int:
    """The row count of an UPDATE or DELETE command tag ("DELETE 42")."""
    return int(status.rsplit(" ", 1)[-1])


class ErasureWorker:
    """Finishes erasures in progress, in the background of every worker process."""

    def __init__(self, database: Database, poll_seconds: float = POLL_SECONDS) -> None:
        self.database = database
        self.poll_seconds = poll_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="erasure-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                step = await erase_step(self.database)
            except Exception as error:
                # The database away, or a batch that failed: try again later
                # (the erasure stays recorded; nothing is lost by waiting).
                level = logging.WARNING if is_database_failure(error) else logging.ERROR
                log.log(level, "erasure batch failed", exc_info=error)
                step = None
            if step is None:
                await asyncio.sleep(self.poll_seconds)


def background_erasures(
    database: Database,
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """A lifespan that runs an ErasureWorker while the app serves (after the pool starts)."""

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        worker = ErasureWorker(database)
        worker.start()
        try:
            yield
        finally:
            await worker.stop()

    return lifespan
