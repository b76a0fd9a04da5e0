"""ingest_apply_changes: a group applied at once leaves what applying it one change at a time does.

The webhooks (ingest_deliveries) and the sync (sync_apply_customers,
sync_apply_orders, sync_apply_deletions) both apply their rows through this
one function, so this is where the rules are checked for both: random groups
over a few customers and orders (creates, updates newer, older, equal and
without updated_at, deletes, tags given or not, marketing consent, orders
moving between customers, cancellations) are applied once as one group and
once one change per call, and must leave the same rows and report the same
`applied` for every change. One change per call is the rules stated one by
one (each call sees every write before it).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.db.database import Database
from tests.support import queries

SHOPS = ("rules-a.myshopify.com", "rules-b.myshopify.com")
BASE = datetime(2026, 11, 1, tzinfo=UTC)

CUSTOMER_COLUMNS = (
    "shop_id, shopify_id, email, name, phone, tags, shopify_created_at, shopify_updated_at,"
    " deleted_at IS NOT NULL AS deleted, order_count, total_spent, avg_order_value,"
    " first_order_at, last_order_at, email_marketing_state, email_marketing_opt_in_level,"
    " email_marketing_consent_updated_at, sms_marketing_state,"
    " sms_marketing_consent_updated_at"
)
ORDER_COLUMNS = (
    "o.shop_id, o.shopify_id, c.shopify_id AS customer, o.total_price, o.current_total_price,"
    " o.currency, o.financial_status, o.cancelled_at, o.name, o.email, o.test, o.line_items,"
    " o.shopify_created_at, o.shopify_updated_at, o.deleted_at IS NOT NULL AS deleted"
)


def moment(rng: random.Random) -> str | None:
    if rng.random() < 0.1:
        return None
    return (BASE + timedelta(minutes=rng.randrange(6))).isoformat()


def change(rng: random.Random) -> dict[str, Any]:
    shop = rng.choice(SHOPS)
    customer = str(rng.randrange(1, 4))
    roll = rng.random()
    if roll < 0.1:
        return {"kind": "customer_delete", "shop": shop, "customer_shopify_id": customer}
    if roll < 0.2:
        return {"kind": "order_delete", "shop": shop, "order_shopify_id": str(rng.randrange(4))}
    nested = {
        "customer_shopify_id": customer if rng.random() < 0.9 else None,
        "customer_email": f"c{customer}-{rng.randrange(3)}@example.com",
        "customer_name": rng.choice(["Ann", "Bob", None]),
        "customer_phone": None,
        "customer_has_tags": rng.random() < 0.5,
        "customer_tags": rng.sample(["vip", "new", "wholesale"], rng.randrange(3)),
        "customer_created_at": moment(rng),
        "customer_updated_at": moment(rng),
    }
    if roll < 0.45:
        consent = {}
        if rng.random() < 0.6:
            consent = {
                "customer_email_marketing_state": rng.choice(["subscribed", "unsubscribed"]),
                "customer_email_marketing_opt_in_level": "single_opt_in",
                "customer_email_marketing_updated_at": moment(rng),
                "customer_sms_marketing_state": rng.choice([None, "subscribed"]),
                "customer_sms_marketing_updated_at": moment(rng),
            }
        customer_only = {**nested, "customer_shopify_id": customer}
        return {"kind": "customer", "shop": shop, **customer_only, **consent}
    price = f"{rng.randrange(1, 50)}.50"
    return {
        "kind": "order",
        "shop": shop,
        "order_shopify_id": str(rng.randrange(4)),
        "total_price": price,
        "current_total_price": rng.choice([price, "1.00", None]),
        "currency": "EUR",
        "financial_status": rng.choice(["paid", "pending"]),
        "cancelled_at": rng.choice([None, None, None, BASE.isoformat()]),
        "name": f"#{rng.randrange(100)}",
        "email": None,
        "test": False,
        "line_items": [{"id": rng.randrange(3), "quantity": 1}],
        "created_at": moment(rng),
        "updated_at": moment(rng),
        **nested,
    }


async def apply(db: Database, changes: list[dict[str, Any]]) -> list[bool]:
    rows = await queries.fetch(
        db,
        "SELECT n, applied FROM ingest_apply_changes($1::jsonb, NULL) ORDER BY n",
        json.dumps(changes),
    )
    return [row["applied"] for row in rows]


async def state(db: Database) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    customers = await queries.fetch(
        db, f"SELECT {CUSTOMER_COLUMNS} FROM customers ORDER BY shop_id, shopify_id"
    )
    orders = await queries.fetch(
        db,
        f"SELECT {ORDER_COLUMNS} FROM orders AS o LEFT JOIN customers AS c"
        " ON c.shop_id = o.shop_id AND c.id = o.customer_id ORDER BY o.shop_id, o.shopify_id",
    )
    return customers, orders


async def clear(db: Database) -> None:
    await queries.execute(db, "DELETE FROM orders")
    await queries.execute(db, "DELETE FROM customers")


@pytest.mark.parametrize("seed", range(12))
async def test_a_group_leaves_what_one_change_at_a_time_leaves(db: Database, seed: int) -> None:
    rng = random.Random(seed)
    before = [change(rng) for _ in range(rng.randrange(3, 12))]
    group = [change(rng) for _ in range(rng.randrange(5, 30))]

    await apply(db, before)
    together = await apply(db, group)
    expected_rows = await state(db)

    await clear(db)
    await apply(db, before)
    one_by_one = [(await apply(db, [item]))[0] for item in group]

    assert together == one_by_one, json.dumps(group, indent=1)
    actual = await state(db)
    differences = [
        (a["shop_id"], a["shopify_id"], {k: (a[k], b[k]) for k in a if a[k] != b[k]})
        for left, right in zip(expected_rows, actual, strict=True)
        for a, b in zip(left, right, strict=False)
        if a != b
    ]
    assert expected_rows == actual, (differences, json.dumps(group, indent=1))


async def test_an_unchanged_redelivery_rewrites_nothing(db: Database) -> None:
    order = {
        "kind": "order",
        "shop": SHOPS[0],
        "order_shopify_id": "1",
        "total_price": "10.00",
        "currency": "EUR",
        "updated_at": BASE.isoformat(),
        "customer_shopify_id": "7",
        "customer_updated_at": BASE.isoformat(),
        "line_items": [{"id": 1}],
    }
    await apply(db, [order])
    versions = "SELECT (SELECT xmin::text FROM orders), (SELECT xmin::text FROM customers)"
    written = await queries.fetch(db, versions)

    assert await apply(db, [order, order]) == [True, True]  # equal: applied, as the rule says
    assert await queries.fetch(db, versions) == written
