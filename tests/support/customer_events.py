"""Customers with orders written straight into the database, and reading scores and events back.

Scoring depends only on the orders' times, amounts and flags, so the scoring
tests write those rows directly; the event tests go through deliveries.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from app.db.database import Database
from tests.support import queries
from tests.support.ops import ADMIN
from tests.support.shopify import SHOP

_ids = itertools.count(7_000_000)


@dataclass(frozen=True)
class Order:
    days_ago: float
    amount: str = "10.00"
    test: bool = False
    cancelled: bool = False
    deleted: bool = False


async def add_customer(
    db: Database,
    shopify_id: str,
    orders: list[Order] | tuple[Order, ...] = (),
    *,
    shop: str = SHOP,
    **columns: Any,
) -> None:
    """A customer with these orders (times relative to now); `columns` set more of the row."""
    names = ["shop_id", "shopify_id", "order_count", "total_spent", *columns]
    values = [shop, shopify_id, len(orders), Decimal(0), *columns.values()]
    placeholders = ", ".join(f"${n}" for n in range(1, len(values) + 1))
    await queries.execute(
        db,
        f"INSERT INTO customers ({', '.join(names)}) VALUES ({placeholders})",
        *values,
    )
    await add_orders(db, shopify_id, orders, shop=shop)


async def add_orders(
    db: Database, shopify_id: str, orders: list[Order] | tuple[Order, ...], *, shop: str = SHOP
) -> None:
    """Orders of an existing customer (their totals are not recomputed: scoring ignores them)."""
    for order in orders:
        await queries.execute(
            db,
            "INSERT INTO orders (shop_id, shopify_id, customer_id, total_price,"
            " current_total_price, currency, test, cancelled_at, deleted_at,"
            " shopify_created_at, shopify_updated_at)"
            " SELECT $1::varchar, $2, c.id, $3::numeric, $3::numeric, 'USD', $4,"
            " CASE WHEN $5 THEN now() END, CASE WHEN $6 THEN now() END,"
            " now() - make_interval(secs => $7), now() - make_interval(secs => $7)"
            " FROM customers AS c WHERE c.shop_id = $1::varchar AND c.shopify_id = $8",
            shop,
            str(next(_ids)),
            order.amount,
            order.test,
            order.cancelled,
            order.deleted,
            order.days_ago * 86400,
            shopify_id,
        )


def orders(count: int, days_ago: float, amount: str = "10.00") -> list[Order]:
    return [Order(days_ago, amount) for _ in range(count)]


async def scores(db: Database, shop: str = SHOP) -> dict[str, tuple[Any, ...]]:
    """shopify_id: (rfm_r, rfm_f, rfm_m, segment) of every customer of the shop."""
    rows = await queries.fetch(
        db,
        "SELECT shopify_id, rfm_r, rfm_f, rfm_m, segment FROM customers WHERE shop_id = $1",
        shop,
    )
    return {
        row["shopify_id"]: (row["rfm_r"], row["rfm_f"], row["rfm_m"], row["segment"])
        for row in rows
    }


async def events(db: Database, shop: str = SHOP, kind: str | None = None) -> list[dict[str, Any]]:
    """The shop's customer events (of one kind), in id order: customer, kind and data."""
    rows = await queries.fetch(
        db,
        "SELECT id, customer_shopify_id AS customer, kind, data::text AS data"
        " FROM customer_events WHERE shop_id = $1 AND ($2::text IS NULL OR kind = $2) ORDER BY id",
        shop,
        kind,
    )
    return [{**row, "data": json.loads(row["data"])} for row in rows]


async def feed(client: httpx.AsyncClient, shop: str = SHOP, **params: Any) -> dict[str, Any]:
    """One page of the shop's customer-events feed, read as an admin (200)."""
    response = await client.get(f"/shops/{shop}/customer-events", params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page
