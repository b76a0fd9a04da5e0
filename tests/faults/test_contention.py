"""200 deliveries at once, in random order, all about the same rows, through the
real server (two workers, PgBouncer in transaction mode).

Every delivery queues on the same advisory locks (customer, order), so this
is where a deadlock, a lock timeout or a lost update would show: every
response must be 200, and the figures must be exactly what the deliveries
say, computed independently here in Python with Decimal.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from app.db.enums import FinancialStatus
from app.devtools.stack import Stack
from tests.support import shopify
from tests.support.load import ExpectedTotals, unique_shop

pytestmark = [pytest.mark.pgbouncer, pytest.mark.timed, pytest.mark.timeout(60)]

DELIVERIES = 200
ANSWER_WITHIN = 5.0  # seconds every answer must come within
# A year of random times from here must stay in the past (times from the future are refused).
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
ZONES = tuple(timezone(timedelta(minutes=m)) for m in (0, -300, 330, 540))


@dataclass(frozen=True)
class Sent:
    webhook_id: str
    payload: dict[str, Any]
    status: int | None
    outcome: str | None
    elapsed: float
    error: str | None = None

    def __str__(self) -> str:
        return (
            f"{self.webhook_id}: {self.status or self.error} ({self.outcome}) {self.elapsed:.2f} s"
        )


def stamp(when: datetime, rng: random.Random) -> str:
    """`when` as Shopify writes it (ISO 8601), in one of several zones."""
    return when.astimezone(rng.choice(ZONES)).isoformat()


def money(rng: random.Random, low: int = 1, high: int = 500_000) -> Decimal:
    """An amount with cents."""
    return Decimal(rng.randrange(low, high)) / 100


async def send_all(base_url: str, shop: str, payloads: list[dict[str, Any]]) -> list[Sent]:
    """POST every orders/updated payload at once (one connection each), in the given order."""

    async def send(http: httpx.AsyncClient, payload: dict[str, Any]) -> Sent:
        body = json.dumps(payload).encode()
        webhook_id = f"contention-{uuid.uuid4()}"
        headers = shopify.headers("orders/updated", body, shop=shop, webhook_id=webhook_id)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            response = await http.post("/webhooks/shopify", content=body, headers=headers)
        except httpx.TransportError as error:
            elapsed = loop.time() - started
            return Sent(webhook_id, payload, None, None, elapsed, f"{type(error).__name__}")
        outcome = response.json().get("status") if response.status_code == 200 else response.text
        return Sent(webhook_id, payload, response.status_code, outcome, loop.time() - started)

    limits = httpx.Limits(max_connections=len(payloads))
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0, limits=limits) as http:
        return await asyncio.wait_for(
            asyncio.gather(*(send(http, payload) for payload in payloads)), 40
        )


def assert_all_answered_200(sent: list[Sent], stack: Stack, outcomes: set[str]) -> None:
    wrong = [str(s) for s in sent if s.status != 200 or s.outcome not in outcomes]
    slow = [str(s) for s in sent if s.elapsed >= ANSWER_WITHIN]
    summary = Counter(f"{s.status or s.error} {s.outcome}" for s in sent)
    assert not wrong and not slow, (
        f"{len(wrong)} not 200 {sorted(outcomes)}, {len(slow)} slow; {dict(summary)}\n"
        f"{wrong[:5]} {slow[:5]}\n--- service log ---\n{stack.log()[-3000:]}"
    )


async def customer_totals(db: asyncpg.Connection, shop: str, customer_id: int) -> ExpectedTotals:
    row = await db.fetchrow(
        "SELECT * FROM customers WHERE shop_id = $1 AND shopify_id = $2", shop, str(customer_id)
    )
    assert row is not None, f"customer {customer_id} was not stored"
    return ExpectedTotals.from_row(row)


async def test_orders_of_one_customer_at_once_give_exact_totals(
    stack: Stack, db: asyncpg.Connection
) -> None:
    rng = random.Random()
    shop, customer_id = unique_shop("one-customer"), 7_000_001
    payloads, counted = [], []
    for number in range(DELIVERIES):
        created = EPOCH + timedelta(minutes=rng.randrange(525_600), seconds=rng.randrange(60))
        total = money(rng)
        # Some refunded in part (current total below the total), some cancelled.
        current = total - money(rng, 0, int(total * 100)) if rng.random() < 0.2 else total
        cancelled = rng.random() < 0.15
        payloads.append(
            shopify.order(
                8_000_000 + number,
                customer_id=customer_id,
                total_price=str(total),
                current_total_price=str(current),
                created_at=stamp(created, rng),
                cancelled_at=stamp(created + timedelta(hours=1), rng) if cancelled else None,
                financial_status="voided" if cancelled else "paid",
            )
        )
        if not cancelled:
            counted.append((current, created))
    rng.shuffle(payloads)
    assert 0 < len(counted) < DELIVERIES

    sent = await send_all(stack.base_url, shop, payloads)

    assert_all_answered_200(sent, stack, {"processed"})
    expected = ExpectedTotals.of(counted)
    assert await customer_totals(db, shop, customer_id) == expected
    orders = await db.fetchval("SELECT count(*) FROM orders WHERE shop_id = $1", shop)
    ledger = await db.fetchval("SELECT count(*) FROM webhook_events WHERE shop_id = $1", shop)
    assert (orders, ledger) == (DELIVERIES, DELIVERIES)


async def test_updates_of_one_order_in_any_order_keep_the_newest(
    stack: Stack, db: asyncpg.Connection
) -> None:
    rng = random.Random()
    shop, order_id, customer_id = unique_shop("one-order"), 8_100_000, 7_100_001
    created = EPOCH + timedelta(days=40)
    statuses = [status.value for status in FinancialStatus]
    versions = []
    for number in range(DELIVERIES):
        # Distinct, some only microseconds apart.
        updated = created + timedelta(seconds=number // 2, microseconds=number % 2)
        cancelled = rng.random() < 0.2
        versions.append(
            (
                updated,
                shopify.order(
                    order_id,
                    customer_id=customer_id,
                    total_price=str(money(rng)),
                    current_total_price=str(money(rng)),
                    created_at=stamp(created, rng),
                    updated_at=stamp(updated, rng),
                    cancelled_at=stamp(updated, rng) if cancelled else None,
                    financial_status=rng.choice(statuses),
                    fulfillment_status=rng.choice([None, "fulfilled", "partial"]),
                    name=f"#v{number}",
                    email=f"buyer-{number}@example.com",
                    currency=rng.choice(["USD", "EUR", "JPY"]),
                ),
            )
        )
    newest_at, newest = max(versions, key=lambda version: version[0])
    payloads = [payload for _, payload in versions]
    rng.shuffle(payloads)

    sent = await send_all(stack.base_url, shop, payloads)

    assert_all_answered_200(sent, stack, {"processed", "stale"})
    outcomes = Counter(s.outcome for s in sent)
    assert outcomes["processed"] >= 1
    row = await db.fetchrow(
        "SELECT o.*, c.shopify_id AS customer_shopify_id FROM orders o"
        " LEFT JOIN customers c ON c.id = o.customer_id WHERE o.shop_id = $1",
        shop,
    )
    assert row is not None
    stored = {
        "total_price": row["total_price"],
        "current_total_price": row["current_total_price"],
        "financial_status": row["financial_status"],
        "fulfillment_status": row["fulfillment_status"],
        "cancelled_at": row["cancelled_at"],
        "name": row["name"],
        "email": row["email"],
        "currency": row["currency"],
        "updated_at": row["shopify_updated_at"],
        "created_at": row["shopify_created_at"],
        "customer": row["customer_shopify_id"],
    }
    wanted = {
        "total_price": Decimal(newest["total_price"]),
        "current_total_price": Decimal(newest["current_total_price"]),
        "financial_status": newest["financial_status"],
        "fulfillment_status": newest["fulfillment_status"],
        "cancelled_at": parse(newest["cancelled_at"]),
        "name": newest["name"],
        "email": newest["email"],
        "currency": newest["currency"],
        "updated_at": newest_at,
        "created_at": created,
        "customer": str(customer_id),
    }
    assert stored == wanted
    # The customer's figures follow the newest version too.
    counted = [] if newest["cancelled_at"] else [(wanted["current_total_price"], created)]
    assert await customer_totals(db, shop, customer_id) == ExpectedTotals.of(counted)
    ledger = await db.fetch(
        "SELECT status, count(*) FROM webhook_events WHERE shop_id = $1 GROUP BY status", shop
    )
    assert {r["status"]: r["count"] for r in ledger} == {"processed": DELIVERIES}


async def test_orders_moving_between_two_customers_keep_both_totals_exact(
    stack: Stack, db: asyncpg.Connection
) -> None:
    rng = random.Random()
    shop = unique_shop("two-customers")
    customers = (7_200_001, 7_200_002)
    orders, versions_each = 40, DELIVERIES // 40
    payloads, final = [], {}
    for index in range(orders):
        order_id = 8_200_000 + index
        created = EPOCH + timedelta(hours=rng.randrange(8760), seconds=rng.randrange(3600))
        for version in range(versions_each):
            updated = created + timedelta(minutes=version + 1)
            # Both customers own orders at the end: the newest versions alternate.
            newest = version == versions_each - 1
            owner = customers[index % 2] if newest else rng.choice(customers)
            total = money(rng)
            cancelled = rng.random() < 0.2
            payload = shopify.order(
                order_id,
                customer_id=owner,
                total_price=str(total),
                created_at=stamp(created, rng),
                updated_at=stamp(updated, rng),
                cancelled_at=stamp(updated, rng) if cancelled else None,
            )
            payloads.append(payload)
            if newest:
                final[order_id] = (owner, total, created, cancelled)
    rng.shuffle(payloads)
    assert len(payloads) == DELIVERIES

    sent = await send_all(stack.base_url, shop, payloads)

    assert_all_answered_200(sent, stack, {"processed", "stale"})
    for customer_id in customers:
        counted = [
            (total, created)
            for owner, total, created, cancelled in final.values()
            if owner == customer_id and not cancelled
        ]
        stored = await customer_totals(db, shop, customer_id)
        assert stored == ExpectedTotals.of(counted), customer_id
    rows = await db.fetch(
        "SELECT o.shopify_id, c.shopify_id AS owner, o.total_price FROM orders o"
        " JOIN customers c ON c.id = o.customer_id WHERE o.shop_id = $1",
        shop,
    )
    assert {int(r["shopify_id"]): (int(r["owner"]), r["total_price"]) for r in rows} == {
        order_id: (owner, total) for order_id, (owner, total, _, _) in final.items()
    }


def parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)
