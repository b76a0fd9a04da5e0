"""Group commit: deliveries that arrive together are applied in one database call.

Deliveries submitted in the same turn of the event loop (asyncio.gather of
`ingest`) go in one group, so these tests know what was grouped: ledger rows
written by one transaction share its id (`xmin`). Every delivery keeps its
own outcome; a bad one fails only itself; a group whose call fails commits
nothing and every delivery of it gets DatabaseUnavailable (503); a held lock
delays only the deliveries that need it; a stuck call does not hold up the
deliveries behind it.

"Does not wait" is shown by events, not by timing: the other delivery is
answered while the one it must not wait for is still blocked on a lock that
the test releases only afterwards.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import pytest

from app.config import Settings
from app.db.database import Database, DatabaseUnavailable
from app.webhooks.delivery import Delivery
from app.webhooks.grouping import DeliveryKind, GroupItem, delivery_group_commit
from app.webhooks.ingest import ingest
from app.webhooks.outcomes import Outcome
from tests.support import queries, shopify
from tests.support.asgi import concurrent_client
from tests.support.load import eventually

# How long a test waits for an event (a backend blocking on a lock, a row
# committed) before calling it a hang: generous, a busy machine only delays it.
EVENT_WITHIN = 30.0


def delivery(topic: str, payload: dict[str, Any], webhook_id: str | None = None) -> Delivery:
    return Delivery(
        shop_id=shopify.SHOP,
        webhook_id=webhook_id or str(uuid.uuid4()),
        topic=topic,
        event_id=None,
        api_version="2026-07",
        triggered_at=None,
        body=json.dumps(payload).encode(),
    )


async def ingest_together(db: Database, *deliveries: Delivery) -> list[Outcome | BaseException]:
    """Ingest the deliveries in one turn of the event loop: they go in one group."""
    return await asyncio.gather(*(ingest(db, item) for item in deliveries), return_exceptions=True)


async def until_a_delivery_waits_for_a_lock(db: Database) -> None:
    async def blocked() -> bool:
        return await queries.lock_waits(db) > 0

    await eventually(blocked, EVENT_WITHIN, "a delivery blocked on the held lock")


async def transactions(db: Database, *webhook_ids: str) -> list[int]:
    """The id of the transaction that wrote each ledger row."""
    rows = await queries.fetch(
        db,
        "SELECT webhook_id, xmin::text::bigint AS xid FROM webhook_events"
        " WHERE webhook_id = ANY($1::text[])",
        list(webhook_ids),
    )
    by_id = {row["webhook_id"]: row["xid"] for row in rows}
    return [by_id[webhook_id] for webhook_id in webhook_ids]


async def test_deliveries_arriving_together_commit_in_one_transaction(db: Database) -> None:
    batch = [
        delivery("orders/create", shopify.order(1, customer_id=10), "o1"),
        delivery("orders/create", shopify.order(2, customer_id=10, total_price="50.00"), "o2"),
        delivery("customers/update", shopify.customer(20), "c1"),
        delivery("orders/delete", shopify.deleted(3), "d1"),
        delivery("customers/delete", shopify.customer_deleted(21), "d2"),
    ]
    outcomes = await ingest_together(db, *batch)
    assert outcomes == [Outcome.processed] * 5
    assert len(set(await transactions(db, "o1", "o2", "c1", "d1", "d2"))) == 1

    customer = await queries.customer(db, 10)
    assert customer is not None
    assert (customer["order_count"], customer["total_spent"]) == (2, Decimal("150.0000"))
    tombstone = await queries.order(db, 3)
    assert tombstone is not None and tombstone["deleted_at"] is not None
    deleted = await queries.customer(db, 21)
    assert deleted is not None and deleted["deleted_at"] is not None


@pytest.mark.parametrize(
    "bad",
    [
        # Refused as the call's arguments arrive (text cannot hold NUL).
        pytest.param(shopify.order(2, customer_id=11, name="#1\u0000"), id="nul-in-argument"),
        # Refused while the function runs: the customer's total overflows numeric(19,4).
        pytest.param(
            shopify.order(2, customer_id=10, total_price="999999999999999.9999"),
            id="total-overflow",
        ),
    ],
)
async def test_a_refused_delivery_fails_alone(db: Database, bad: dict[str, Any]) -> None:
    first = await ingest(
        db, delivery("orders/create", shopify.order(1, customer_id=10, total_price="1.00"))
    )
    assert first is Outcome.processed

    outcomes = await ingest_together(
        db,
        delivery("orders/create", shopify.order(3, customer_id=12), "good-1"),
        delivery("orders/create", bad, "bad"),
        delivery("customers/update", shopify.customer(13), "good-2"),
        delivery("orders/updated", shopify.order(4, customer_id=12), "good-3"),
    )
    assert outcomes == [Outcome.processed, Outcome.failed, Outcome.processed, Outcome.processed]

    row = await queries.ledger_row(db, "bad")
    assert row["status"] == "failed" and "database refused the payload" in row["last_error"]
    assert await queries.order(db, 2) is None
    customer = await queries.customer(db, 12)
    assert customer is not None and customer["order_count"] == 2
    assert await queries.customer(db, 13) is not None
    # The total of the customer the bad order would have overflowed is unchanged.
    kept = await queries.customer(db, 10)
    assert kept is not None and kept["total_spent"] == Decimal("1.0000")


async def test_a_failed_group_call_commits_nothing_and_every_delivery_gets_unavailable(
    db: Database,
) -> None:
    """The group's call runs out of lock wait (the ledger's shop row): nothing is half-written."""
    async with db.connection() as holder:
        await holder.execute("BEGIN")
        await holder.execute("LOCK TABLE shops IN SHARE ROW EXCLUSIVE MODE")
        outcomes = await ingest_together(
            db,
            delivery("orders/create", shopify.order(1, customer_id=10), "a"),
            delivery("orders/create", shopify.order(2, customer_id=11), "b"),
            delivery("customers/update", shopify.customer(12), "c"),
        )
        await holder.execute("ROLLBACK")

    assert all(isinstance(outcome, DatabaseUnavailable) for outcome in outcomes), outcomes
    assert await queries.nothing_stored(db)


async def test_a_delivery_whose_lock_is_held_waits_alone_and_the_group_goes_on(
    db: Database,
) -> None:
    async with db.connection() as holder:
        await holder.execute("BEGIN")
        await holder.execute("SELECT ingest_lock_rows($1, 'order', ARRAY['1'])", shopify.SHOP)
        together = asyncio.ensure_future(
            ingest_together(
                db,
                delivery("orders/create", shopify.order(1, customer_id=10), "held"),
                delivery("orders/create", shopify.order(2, customer_id=11), "free-1"),
                delivery("customers/update", shopify.customer(12), "free-2"),
            )
        )

        async def two_committed() -> bool:
            return len(await queries.ledger(db)) == 2

        await eventually(two_committed, EVENT_WITHIN, "the two free deliveries committed")
        await until_a_delivery_waits_for_a_lock(db)
        committed = sorted(row["webhook_id"] for row in await queries.ledger(db))
        held_still_waiting = not together.done()
        await holder.execute("ROLLBACK")
        outcomes = await together

    assert committed == ["free-1", "free-2"]
    assert held_still_waiting
    assert outcomes == [Outcome.processed] * 3
    held, free_1, free_2 = await transactions(db, "held", "free-1", "free-2")
    assert free_1 == free_2 != held


async def test_two_versions_of_one_order_in_one_group_end_as_the_newer(db: Database) -> None:
    older = shopify.order(1, customer_id=10, updated_at="2026-01-01T10:00:00Z", total_price="10")
    newer = shopify.order(1, customer_id=10, updated_at="2026-01-01T11:00:00Z", total_price="20")

    outcomes = await ingest_together(
        db,
        delivery("orders/updated", newer, "newer"),
        delivery("orders/updated", older, "older"),
    )
    assert outcomes == [Outcome.processed, Outcome.stale]
    order = await queries.order(db, 1)
    assert order is not None and order["total_price"] == Decimal("20.0000")

    await queries.execute(db, "TRUNCATE orders, customers, webhook_events, shops CASCADE")
    outcomes = await ingest_together(
        db,
        delivery("orders/updated", older, "older"),
        delivery("orders/updated", newer, "newer"),
    )
    assert outcomes == [Outcome.processed, Outcome.processed]
    order = await queries.order(db, 1)
    assert order is not None and order["total_price"] == Decimal("20.0000")
    customer = await queries.customer(db, 10)
    assert customer is not None
    assert (customer["order_count"], customer["total_spent"]) == (1, Decimal("20.0000"))
    assert len(set(await transactions(db, "older", "newer"))) == 1


async def test_a_delete_and_a_late_create_in_one_group_leave_a_tombstone(db: Database) -> None:
    outcomes = await ingest_together(
        db,
        delivery("orders/delete", shopify.deleted(1), "delete"),
        delivery("orders/create", shopify.order(1, customer_id=10), "create"),
    )
    assert outcomes == [Outcome.processed, Outcome.stale]
    order = await queries.order(db, 1)
    assert order is not None and order["deleted_at"] is not None


async def test_one_webhook_id_twice_in_one_group_is_a_duplicate(db: Database) -> None:
    payload = shopify.order(1, customer_id=10)
    outcomes = await ingest_together(
        db,
        delivery("orders/create", payload, "same"),
        delivery("orders/create", payload, "same"),
    )
    assert outcomes == [Outcome.processed, Outcome.duplicate]
    assert len(await queries.ledger(db)) == 1


async def test_a_redacted_customers_delivery_in_a_group_is_stored_scrubbed(
    db: Database, settings: Settings
) -> None:
    async with concurrent_client(settings) as client:
        redact = shopify.customers_redact(10, orders_to_redact=[])
        assert await shopify.deliver(client, "customers/redact", redact) == "processed"

    about_redacted = shopify.customer(10, email="secret@example.com")
    outcomes = await ingest_together(
        db,
        delivery("orders/create", shopify.order(1, customer_id=11), "other"),
        delivery("customers/update", about_redacted, "redacted"),
    )
    assert outcomes == [Outcome.processed, Outcome.stale]
    row = await queries.ledger_row(db, "redacted")
    assert "secret@example.com" not in row["payload_text"]
    customer = await queries.customer(db, 10)
    assert customer is not None and customer["email"] is None


async def test_a_held_lock_delays_only_the_delivery_that_needs_it(
    db: Database, settings: Settings
) -> None:
    async with concurrent_client(settings) as client, db.connection() as holder:
        await holder.execute("BEGIN")
        await holder.execute("SELECT ingest_lock_rows($1, 'order', ARRAY['1'])", shopify.SHOP)
        held = asyncio.create_task(
            shopify.post(client, "orders/create", shopify.order(1, customer_id=10))
        )
        await until_a_delivery_waits_for_a_lock(db)
        # Answered while the held delivery still waits for the lock released below.
        other = await shopify.post(client, "orders/create", shopify.order(2, customer_id=11))
        held_still_waiting = not held.done()
        await holder.execute("ROLLBACK")
        released = await held

    assert other.json()["status"] == "processed"
    assert held_still_waiting
    assert released.json()["status"] == "processed"


async def hold_ledger_row(holder: Any, shop: str, webhook_id: str) -> None:
    """An uncommitted ledger row: a delivery with this webhook id waits for its transaction."""
    await holder.execute("BEGIN")
    await holder.execute(
        "SELECT ingest_record(NULL, $1, $2, NULL, 'orders/create', NULL, NULL, '{}'::jsonb,"
        " 'processed', NULL)",
        shop,
        webhook_id,
    )


async def test_a_stuck_call_does_not_hold_up_the_deliveries_behind_it(db: Database) -> None:
    """A call in flight for long (SLOW_CALL_SECONDS) lets the next one start."""
    assert await ingest(db, delivery("orders/create", shopify.order(9))) is Outcome.processed
    async with db.connection() as holder:
        await hold_ledger_row(holder, shopify.SHOP, "same")
        stuck = asyncio.ensure_future(
            ingest(db, delivery("orders/create", shopify.order(1, customer_id=10), "same"))
        )
        await until_a_delivery_waits_for_a_lock(db)
        # Its call starts while the stuck call is in flight, and ends before it.
        other = await ingest(db, delivery("orders/create", shopify.order(2, customer_id=11)))
        stuck_still_waiting = not stuck.done()
        await holder.execute("ROLLBACK")
        outcome = await stuck

    assert other is Outcome.processed
    assert stuck_still_waiting
    assert outcome is Outcome.processed


async def test_an_item_not_sent_within_the_wait_limit_gets_unavailable(db: Database) -> None:
    """Like a pooled connection: waiting to be sent is bounded (DB_ACQUIRE_TIMEOUT)."""
    wait_limit = 0.3
    group_commit = delivery_group_commit(db, wait_limit=wait_limit, max_in_flight=1)
    loop = asyncio.get_running_loop()

    def arguments(order_id: int, webhook_id: str) -> bytes:
        """An order delivery as ingest_deliveries reads it."""
        item = GroupItem(
            kind=DeliveryKind.order,
            shop=shopify.SHOP,
            webhook_id=webhook_id,
            topic="orders/create",
            payload=msgspec.Raw(json.dumps({"id": order_id})),
            scrubbed=False,
            order_shopify_id=str(order_id),
        )
        return msgspec.json.encode(item)

    assert await ingest(db, delivery("orders/create", shopify.order(9))) is Outcome.processed
    async with db.connection() as holder:
        await hold_ledger_row(holder, shopify.SHOP, "same")
        stuck = asyncio.ensure_future(
            group_commit.submit((shopify.SHOP, arguments(1, "same")), db.deadline())
        )
        await until_a_delivery_waits_for_a_lock(db)
        started = loop.time()
        with pytest.raises(DatabaseUnavailable, match="no database connection free in time"):
            await group_commit.submit((shopify.SHOP, arguments(2, "other")), db.deadline())
        waited = loop.time() - started
        # Refused while the only call allowed in flight was still blocked.
        stuck_still_waiting = not stuck.done()
        await holder.execute("ROLLBACK")
        row = await stuck

    assert stuck_still_waiting
    assert waited >= wait_limit, "refused before its wait limit"
    assert row["ledger_id"] is not None
    assert await queries.order(db, 2) is None


async def test_group_commit_through_http_answers_each_delivery(
    db: Database, settings: Settings
) -> None:
    """Many deliveries at once over HTTP: each answered from its own outcome."""
    async with concurrent_client(settings) as client:
        payloads = [shopify.order(n, customer_id=100 + n % 3) for n in range(1, 31)]
        responses: list[httpx.Response] = await asyncio.gather(
            *(
                shopify.post(client, "orders/create", p, webhook_id=f"w{i}")
                for i, p in enumerate(payloads)
            )
        )
        duplicates = await asyncio.gather(
            *(shopify.post(client, "orders/create", payloads[0], webhook_id="w0") for _ in range(5))
        )
    assert [r.json()["status"] for r in responses] == ["processed"] * 30
    assert [r.json()["status"] for r in duplicates] == ["duplicate"] * 5
    counts = await queries.counts(db)
    assert (counts["orders"], counts["customers"], counts["webhook_events"]) == (30, 3, 30)
    for customer_id in (100, 101, 102):
        customer = await queries.customer(db, customer_id)
        assert customer is not None and customer["order_count"] == 10
