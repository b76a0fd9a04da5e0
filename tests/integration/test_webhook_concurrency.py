"""Deliveries at the same instant: duplicates, one customer's orders, one order's updates.

These requests really run at once: the `live` client serves them on the test's
event loop (see tests/support/asgi.py), against the real database.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.db.database import Database
from tests.support import queries, shopify
from tests.support.asgi import concurrent_client

BASE = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def live(db: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with concurrent_client(settings) as client:
        yield client


def at(minutes: int) -> str:
    return (BASE + timedelta(minutes=minutes)).isoformat()


async def post_all(
    client: httpx.AsyncClient, deliveries: list[tuple[str, dict[str, Any], dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Post every (topic, payload, options) at once; every answer must be 200."""
    responses = await asyncio.gather(
        *(shopify.post(client, topic, payload, **options) for topic, payload, options in deliveries)
    )
    for response in responses:
        assert response.status_code == 200, response.text
    return [response.json() for response in responses]


async def test_requests_really_run_concurrently(
    live: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    """The premise of this module: ten deliveries are inside the database at once."""
    together = min(10, settings.db_pool_size)  # each waits holding a pooled connection
    async with db.connection() as holder:
        await holder.execute("BEGIN")
        # Every delivery writes `shops`: they all queue behind this lock.
        await holder.execute("LOCK TABLE shops IN SHARE ROW EXCLUSIVE MODE")
        deliveries = [("products/update", {"id": n}, {}) for n in range(10)]
        posting = asyncio.create_task(post_all(live, deliveries))
        waiting = 0
        for _ in range(150):  # well inside the 2 s lock timeout
            waiting = await holder.fetchval(
                "SELECT count(*) FROM pg_locks WHERE relation = 'shops'::regclass AND NOT granted"
            )
            if waiting == together:
                break
            await asyncio.sleep(0.01)
        await holder.execute("ROLLBACK")
        answers = await posting
    assert waiting == together
    assert [answer["status"] for answer in answers] == ["ignored"] * 10


@pytest.mark.parametrize(
    ("topic", "payload", "status"),
    [
        ("orders/create", shopify.order(1, customer_id=2), "processed"),
        ("customers/update", shopify.customer(3), "processed"),
        ("customers/redact", shopify.customers_redact(3, orders_to_redact=[1]), "processed"),
        ("products/update", {"id": 4}, "ignored"),
        ("orders/create", {"id": "x"}, "failed"),
    ],
)
async def test_fifty_parallel_copies_record_exactly_one(
    live: httpx.AsyncClient, db: Database, topic: str, payload: dict[str, Any], status: str
) -> None:
    answers = await post_all(live, [(topic, payload, {"webhook_id": "same"})] * 50)

    assert Counter(answer["status"] for answer in answers) == {status: 1, "duplicate": 49}
    assert {answer["webhook_id"] for answer in answers} == {"same"}
    (row,) = await queries.ledger(db)
    assert (row["webhook_id"], row["status"], row["attempts"]) == ("same", status, 1)
    if topic == "orders/create" and status == "processed":
        customer = await queries.customer(db, 2)
        assert customer is not None
        assert (customer["order_count"], customer["total_spent"]) == (1, Decimal("100.00"))
        assert await queries.fetchval(db, "SELECT count(*) FROM orders") == 1


async def test_thirty_concurrent_orders_of_one_customer_total_exactly(
    live: httpx.AsyncClient, db: Database
) -> None:
    rng = random.Random(20261123)
    orders = []
    for n in range(30):
        price = Decimal(rng.randint(1, 10_000_000)) / 10_000  # up to 4 decimal places
        orders.append((1000 + n, price, at(rng.randint(0, 100_000))))
    # Some are cancelled along the way: they must not count.
    cancelled = {1003, 1017}
    rng.shuffle(orders)

    answers = await post_all(
        live,
        [
            (
                "orders/create",
                shopify.order(
                    order_id,
                    customer_id=77,
                    total_price=str(price),
                    created_at=created,
                    cancelled_at=created if order_id in cancelled else None,
                ),
                {},
            )
            for order_id, price, created in orders
        ],
    )
    assert {answer["status"] for answer in answers} == {"processed"}

    counted = [(price, created) for order_id, price, created in orders if order_id not in cancelled]
    total = sum((price for price, _ in counted), Decimal(0))
    customer = await queries.customer(db, 77)
    assert customer is not None
    assert customer["order_count"] == 28
    assert customer["total_spent"] == total
    assert customer["avg_order_value"] == (total / 28).quantize(Decimal("0.0001"))
    assert customer["first_order_at"] == min(datetime.fromisoformat(c) for _, c in counted)
    assert customer["last_order_at"] == max(datetime.fromisoformat(c) for _, c in counted)
    assert await queries.fetchval(db, "SELECT count(*) FROM orders") == 30
    assert await queries.fetchval(db, "SELECT count(*) FROM customers") == 1


async def test_concurrent_updates_of_one_order_end_at_the_newest(
    live: httpx.AsyncClient, db: Database
) -> None:
    versions = list(range(20))
    random.Random(7).shuffle(versions)
    answers = await post_all(
        live,
        [
            (
                "orders/updated",
                shopify.order(
                    500,
                    customer_id=501,
                    updated_at=at(version),
                    total_price=f"{version + 1}.0001",
                    financial_status="paid" if version == 19 else "pending",
                ),
                {},
            )
            for version in versions
        ],
    )
    statuses = Counter(answer["status"] for answer in answers)
    assert set(statuses) <= {"processed", "stale"}
    assert statuses["processed"] >= 1

    order = await queries.order(db, 500)
    assert order is not None
    assert (order["total_price"], order["financial_status"], order["shopify_updated_at"]) == (
        Decimal("20.0001"),
        "paid",
        datetime.fromisoformat(at(19)),
    )
    customer = await queries.customer(db, 501)
    assert customer is not None
    assert (customer["order_count"], customer["total_spent"]) == (1, Decimal("20.0001"))
    assert len(await queries.ledger(db)) == 20


async def test_concurrent_customer_updates_and_orders(
    live: httpx.AsyncClient, db: Database
) -> None:
    deliveries: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        (
            "customers/update",
            shopify.customer(600, updated_at=at(v), email=f"v{v}@example.com", tags=f"t{v}"),
            {},
        )
        for v in range(10)
    ]
    deliveries += [
        (
            "orders/create",
            shopify.order(
                601 + n,
                customer_id=600,
                total_price="1.1111",
                customer_updated_at=at(n - 5),  # nested copies, older and newer
                customer_fields={"email": f"nested{n}@example.com"},
            ),
            {},
        )
        for n in range(10)
    ]
    random.Random(3).shuffle(deliveries)
    await post_all(live, deliveries)

    customer = await queries.customer(db, 600)
    assert customer is not None
    assert (customer["email"], customer["tags"]) == ("v9@example.com", ["t9"])
    assert customer["shopify_updated_at"] == datetime.fromisoformat(at(9))
    assert (customer["order_count"], customer["total_spent"]) == (10, Decimal("11.1110"))
    assert customer["avg_order_value"] == Decimal("1.1111")


async def test_orders_swapping_customers_concurrently_keep_both_totals_exact(
    live: httpx.AsyncClient, db: Database
) -> None:
    """Orders move A→B and B→A at once: locks taken in both orders, and no deadlock lost."""
    a, b = 700, 701
    first = [(n, a) for n in range(710, 713)] + [(n, b) for n in range(713, 716)]
    await post_all(
        live,
        [
            ("orders/create", shopify.order(n, customer_id=c, total_price=f"{n}.00"), {})
            for n, c in first
        ],
    )
    swapped = [(n, b if c == a else a) for n, c in first]
    answers = await post_all(
        live,
        [
            (
                "orders/updated",
                shopify.order(n, customer_id=c, total_price=f"{n}.00", updated_at=at(1)),
                {},
            )
            for n, c in swapped
        ],
    )
    assert {answer["status"] for answer in answers} == {"processed"}

    for customer_id, order_ids in ((a, range(713, 716)), (b, range(710, 713))):
        customer = await queries.customer(db, customer_id)
        assert customer is not None
        assert customer["order_count"] == 3
        assert customer["total_spent"] == sum(Decimal(n) for n in order_ids)


async def test_delete_racing_the_create_always_ends_deleted(
    live: httpx.AsyncClient, db: Database
) -> None:
    deliveries: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for n in range(800, 810):
        deliveries.append(("orders/create", shopify.order(n, customer_id=820), {}))
        deliveries.append(("orders/delete", shopify.deleted(n), {}))
    random.Random(11).shuffle(deliveries)
    await post_all(live, deliveries)

    deleted = await queries.fetchval(db, "SELECT count(*) FROM orders WHERE deleted_at IS NOT NULL")
    assert deleted == 10
    customer = await queries.customer(db, 820)
    assert customer is not None
    assert (customer["order_count"], customer["total_spent"]) == (0, Decimal(0))
