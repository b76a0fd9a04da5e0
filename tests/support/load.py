"""Streams of signed deliveries against a running service, and what became of each.

Used by the fault-injection tests (tests/faults/): several concurrent senders
post unique orders/create deliveries while a test breaks something, every
request's outcome is kept (status code, or the transport error), and the
database is checked afterwards against what the clients were told.

    streams = Streams(base_url, OrderFactory(shop), count=8)
    async with streams.running():
        ...  # break something
    answers = streams.answers
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import asyncpg
import httpx

from tests.support import shopify

WEBHOOKS_PATH = "/webhooks/shopify"
CLIENT_TIMEOUT = 6.0  # seconds a client waits for an answer (Shopify waits 5)
ANSWER_WITHIN = 5.0  # seconds every answer must come within


def unique_shop(prefix: str = "faults") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}.myshopify.com"


@dataclass(frozen=True)
class OrderDelivery:
    """One signed orders/* delivery, and what it should leave in the database."""

    shop: str
    webhook_id: str
    order_id: int
    customer_id: int | None
    total: Decimal
    payload: dict[str, Any]
    topic: str = "orders/create"

    @property
    def body(self) -> bytes:
        return json.dumps(self.payload).encode()

    def headers(self, body: bytes) -> dict[str, str]:
        return shopify.headers(self.topic, body, shop=self.shop, webhook_id=self.webhook_id)


@dataclass(frozen=True)
class Answer:
    """What a client got for one delivery."""

    delivery: OrderDelivery
    started: float
    finished: float
    status: int | None  # None: no HTTP answer at all
    error: str | None = None  # the transport error (class name: message), if any
    retry_after: str | None = None
    outcome: str | None = None  # the `status` field of a 2xx answer's JSON

    @property
    def elapsed(self) -> float:
        return self.finished - self.started

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def __str__(self) -> str:
        what = self.status if self.status is not None else self.error
        return (
            f"{self.delivery.webhook_id} order {self.delivery.order_id}: {what}"
            f" ({self.outcome or '-'}) after {self.elapsed:.2f} s"
        )


class OrderFactory:
    """Unique orders/create deliveries: distinct orders, customers from a small pool."""

    def __init__(
        self,
        shops: Sequence[str],
        *,
        customers: int = 6,
        first_order_id: int = 1_000_000,
        seed: int | None = None,
    ) -> None:
        self.shops = list(shops)
        self.customers = customers
        self.numbers = itertools.count(first_order_id)
        self.random = random.Random(seed)

    def __call__(self) -> OrderDelivery:
        order_id = next(self.numbers)
        shop = self.shops[order_id % len(self.shops)]
        customer_id: int | None = 500 + self.random.randrange(self.customers)
        if self.random.random() < 0.1:
            customer_id = None  # a guest order
        total = Decimal(self.random.randrange(1, 100_000)) / 100
        payload = shopify.order(
            order_id,
            customer_id=customer_id,
            total_price=str(total),
            created_at=f"2026-03-{1 + order_id % 28:02d}T{order_id % 24:02d}:15:00+02:00",
            name=f"#{order_id}",
        )
        return OrderDelivery(
            shop=shop,
            webhook_id=f"load-{uuid.uuid4()}",
            order_id=order_id,
            customer_id=customer_id,
            total=total,
            payload=payload,
        )


async def send(client: httpx.AsyncClient, delivery: OrderDelivery) -> Answer:
    """POST one delivery; never raises for transport errors or client timeouts."""
    body = delivery.body
    headers = delivery.headers(body)
    started = time.monotonic()
    try:
        response = await client.post(WEBHOOKS_PATH, content=body, headers=headers)
    except httpx.TransportError as error:
        return Answer(delivery, started, time.monotonic(), None, f"{type(error).__name__}: {error}")
    finished = time.monotonic()
    outcome = None
    if response.is_success:
        try:
            outcome = response.json().get("status")
        except ValueError:
            outcome = f"not JSON: {response.text[:200]!r}"
    return Answer(
        delivery,
        started,
        finished,
        response.status_code,
        retry_after=response.headers.get("retry-after"),
        outcome=outcome,
    )


def client(
    base_url: str, *, connections: int = 50, timeout: float = CLIENT_TIMEOUT
) -> httpx.AsyncClient:
    """A client for the service; a request with no answer after `timeout` s fails."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


@dataclass
class Streams:
    """`count` senders, each posting deliveries from `factory` one after another."""

    base_url: str
    factory: Callable[[], OrderDelivery]
    count: int = 8
    pause_after_refusal: float = 0.05  # as a sender backing off would, without flooding
    answers: list[Answer] = field(default_factory=list)

    def accepted_count(self) -> int:
        return sum(answer.accepted for answer in self.answers)

    @asynccontextmanager
    async def running(self, *, drain_timeout: float = 20.0) -> AsyncIterator[Streams]:
        """Senders run while the block runs; each finishes its request in flight after it."""
        stop = asyncio.Event()

        async def sender(http: httpx.AsyncClient) -> None:
            while not stop.is_set():
                answer = await send(http, self.factory())
                self.answers.append(answer)
                if not answer.accepted:
                    await asyncio.sleep(self.pause_after_refusal)

        async with client(self.base_url, connections=self.count) as http:
            tasks = [asyncio.create_task(sender(http)) for _ in range(self.count)]
            try:
                yield self
            finally:
                stop.set()
                done, pending = await asyncio.wait(tasks, timeout=drain_timeout)
                for task in pending:
                    task.cancel()
                for task in done:
                    task.result()
                assert not pending, f"{len(pending)} senders still busy {drain_timeout} s later"


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]],
    within: float,
    what: str,
    interval: float = 0.05,
) -> float:
    """Wait until `condition()` (a value or an awaitable) is true; fail after `within`
    seconds. Returns the time it took."""

    async def holds() -> bool:
        value = condition()
        return bool(await value) if inspect.isawaitable(value) else bool(value)

    started = time.monotonic()
    while not await holds():
        assert time.monotonic() - started < within, f"timed out after {within} s waiting for {what}"
        await asyncio.sleep(interval)
    return time.monotonic() - started


# --- checks against the database ----------------------------------------------------


def unexpected_answers(answers: Iterable[Answer], within: float = ANSWER_WITHIN) -> list[str]:
    """Answers outside the contract: 2xx `processed`, 503 with Retry-After, or a
    connection error; and any HTTP answer that took `within` seconds or more."""
    problems = []
    for answer in answers:
        if answer.accepted:
            if answer.outcome != "processed":
                problems.append(f"2xx but not processed: {answer}")
        elif answer.status == 503:
            if not answer.retry_after:
                problems.append(f"503 without Retry-After: {answer}")
        elif answer.status is not None:
            problems.append(f"neither 2xx nor 503: {answer}")
        elif answer.error is not None and answer.error.startswith(("ReadTimeout", "WriteTimeout")):
            problems.append(f"no answer within the client timeout: {answer}")
        if answer.status is not None and answer.elapsed >= within:
            problems.append(f"answered after {within} s or more: {answer}")
    return problems


async def stored_problems(connection: asyncpg.Connection, answers: Sequence[Answer]) -> list[str]:
    """What is wrong in the database after `answers`, all orders/create deliveries.

    Every 2xx delivery has exactly one ledger row (status processed) and its
    order, with the right total and customer. Any ledger row of these
    deliveries (a refused one may have been committed before its connection
    dropped) has its order, and every order of their shops has its ledger row:
    nothing is half-applied.
    """
    deliveries = [answer.delivery for answer in answers]
    shops = sorted({delivery.shop for delivery in deliveries})
    ledger = await connection.fetch(
        "SELECT shop_id, webhook_id, status FROM webhook_events WHERE shop_id = ANY($1::text[])",
        shops,
    )
    orders = await connection.fetch(
        "SELECT o.shop_id, o.shopify_id, o.total_price, o.current_total_price,"
        " c.shopify_id AS customer_shopify_id"
        " FROM orders o LEFT JOIN customers c ON c.shop_id = o.shop_id AND c.id = o.customer_id"
        " WHERE o.shop_id = ANY($1::text[])",
        shops,
    )
    recorded = Counter((row["shop_id"], row["webhook_id"]) for row in ledger)
    statuses = {(row["shop_id"], row["webhook_id"]): row["status"] for row in ledger}
    stored_orders = {(row["shop_id"], int(row["shopify_id"])): row for row in orders}
    problems = []
    for answer in answers:
        delivery = answer.delivery
        key = (delivery.shop, delivery.webhook_id)
        order = stored_orders.get((delivery.shop, delivery.order_id))
        if answer.accepted:
            if recorded[key] != 1:
                problems.append(f"answered 2xx, {recorded[key]} ledger rows: {answer}")
            elif statuses[key] != "processed":
                problems.append(f"answered 2xx, ledger status {statuses[key]}: {answer}")
        if recorded[key] == 0:
            if order is not None:
                problems.append(f"order stored without its ledger row: {answer}")
            continue
        if order is None:
            problems.append(f"ledger row without its order: {answer}")
            continue
        customer = order["customer_shopify_id"]
        expected_customer = None if delivery.customer_id is None else str(delivery.customer_id)
        if (order["total_price"], order["current_total_price"], customer) != (
            delivery.total,
            delivery.total,
            expected_customer,
        ):
            problems.append(f"order stored wrong: {dict(order)} for {answer}")
    known = {(delivery.shop, delivery.webhook_id) for delivery in deliveries}
    strangers = set(recorded) - known
    if strangers:
        problems.append(f"ledger rows no delivery of the test made: {sorted(strangers)[:5]}")
    sent_orders = {(delivery.shop, delivery.order_id) for delivery in deliveries}
    if set(stored_orders) - sent_orders:
        problems.append(f"orders nobody sent: {sorted(set(stored_orders) - sent_orders)[:5]}")
    return problems


# The figures ingest_recompute_totals keeps on a customer, recomputed from the orders.
TOTALS_MISMATCH_SQL = """
WITH expected AS (
    SELECT c.shop_id, c.id,
           count(o.id) AS order_count,
           coalesce(sum(coalesce(o.current_total_price, o.total_price)), 0) AS total_spent,
           min(o.shopify_created_at) AS first_order_at,
           max(o.shopify_created_at) AS last_order_at
    FROM customers c
    LEFT JOIN orders o ON o.shop_id = c.shop_id AND o.customer_id = c.id AND o.deleted_at IS NULL
                      AND o.cancelled_at IS NULL
    WHERE c.shop_id = ANY($1::text[])
    GROUP BY c.shop_id, c.id
)
SELECT c.shop_id, c.shopify_id, c.order_count, c.total_spent, c.avg_order_value,
       c.first_order_at, c.last_order_at,
       e.order_count AS expected_count, e.total_spent AS expected_spent,
       round(e.total_spent / nullif(e.order_count, 0), 4) AS expected_avg,
       e.first_order_at AS expected_first, e.last_order_at AS expected_last
FROM customers c JOIN expected e ON e.shop_id = c.shop_id AND e.id = c.id
WHERE (c.order_count, c.total_spent, c.avg_order_value, c.first_order_at, c.last_order_at)
      IS DISTINCT FROM
      (e.order_count::integer, e.total_spent, round(e.total_spent / nullif(e.order_count, 0), 4),
       e.first_order_at, e.last_order_at)
"""


async def totals_mismatches(
    connection: asyncpg.Connection, shops: Iterable[str]
) -> list[dict[str, Any]]:
    """Customers of `shops` whose stored totals differ from their orders."""
    rows = await connection.fetch(TOTALS_MISMATCH_SQL, sorted(set(shops)))
    return [dict(row) for row in rows]


@dataclass(frozen=True)
class ExpectedTotals:
    """A customer's figures as ingest_recompute_totals computes them, in Python."""

    order_count: int
    total_spent: Decimal
    avg_order_value: Decimal | None
    first_order_at: datetime | None
    last_order_at: datetime | None

    @classmethod
    def of(cls, orders: Iterable[tuple[Decimal, datetime]]) -> ExpectedTotals:
        """From the (amount, created_at) of the customer's live, not cancelled orders."""
        counted = list(orders)
        spent = sum((amount for amount, _ in counted), Decimal(0))
        count = len(counted)
        average = (spent / count).quantize(Decimal("0.0001"), ROUND_HALF_UP) if count else None
        created = [when for _, when in counted]
        return cls(count, spent, average, min(created, default=None), max(created, default=None))

    @classmethod
    def from_row(cls, row: asyncpg.Record | dict[str, Any]) -> ExpectedTotals:
        return cls(
            row["order_count"],
            row["total_spent"],
            row["avg_order_value"],
            row["first_order_at"],
            row["last_order_at"],
        )
