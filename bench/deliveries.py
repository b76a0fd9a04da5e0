"""Realistic signed deliveries for the benchmark.

Mostly orders/create and orders/updated with nested customers, spread over
several shops and thousands of customers, plus customers/update. Bodies are
Shopify's sample order with 1 to 5 line items (about 4-15 KB). Some orders
get an update that is queued before their create (an out-of-order pair).
Webhook ids are not part of the body or the signature: the load generator
makes them unique per request (and repeats one now and then as a duplicate).

`generate_compact_orders` is the head-to-head's workload (bench/compare.py):
only orders/create, Shopify's sample order trimmed to about 3 KB (one line
item, no price sets, fulfillments, refunds or addresses but the shipping one,
no null top-level fields), a nested customer, every order and customer id
distinct, over several shops.

`generate_update_storm` is the head-to-head's second workload: what shops
mostly send. Existing orders (created first, by `seed`) re-delivered under
orders/paid, orders/updated (twice: the second time with the same
updated_at, as a re-delivery) and orders/fulfilled, in rounds over all the
orders (so consecutive deliveries touch different customers); several
orders per customer; ~3 KB bodies with 3 line items.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
ID_BASE = 7_000_000_000_000_000_000  # ids above 2^53, as Shopify's are


@dataclass(frozen=True)
class Delivery:
    topic: str
    shop: str
    body: bytes
    signature: str


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def generate(
    secret: str,
    *,
    count: int = 3000,
    shops: int = 5,
    customers_per_shop: int = 2000,
    seed: int = 7,
) -> list[Delivery]:
    rng = random.Random(seed)
    order_sample = json.loads((FIXTURES / "orders_create.json").read_text())
    customer_sample = json.loads((FIXTURES / "customers_create.json").read_text())
    deliveries: list[Delivery] = []
    order_number = 0
    while len(deliveries) < count:
        shop = f"bench-{rng.randrange(shops)}.myshopify.com"
        customer_id = ID_BASE + rng.randrange(customers_per_shop)
        roll = rng.random()
        if roll < 0.10:
            payload = _customer(customer_sample, customer_id, rng)
            deliveries.append(_delivery("customers/update", shop, payload, secret))
            continue
        order_number += 1
        order = _order(order_sample, ID_BASE + 10**9 + order_number, customer_id, rng)
        create = _delivery("orders/create", shop, order, secret)
        update = _delivery("orders/updated", shop, _updated(order, rng), secret)
        if roll < 0.15:
            deliveries += [update, create]  # out of order: the update arrives first
        elif roll < 0.55:
            deliveries += [create, update]
        else:
            deliveries.append(create)
    return deliveries[:count]


def _delivery(topic: str, shop: str, payload: dict[str, Any], secret: str) -> Delivery:
    body = json.dumps(payload).encode()
    return Delivery(topic, shop, body, sign(body, secret))


def _order(
    sample: dict[str, Any], order_id: int, customer_id: int, rng: random.Random
) -> dict[str, Any]:
    order = copy.deepcopy(sample)
    order["line_items"] = order["line_items"][: rng.randint(1, len(order["line_items"]))]
    price = f"{rng.randint(5, 900)}.{rng.randint(0, 99):02d}"
    day = rng.randint(1, 28)
    order.update(
        id=order_id,
        name=f"#{order_id % 100000}",
        total_price=price,
        current_total_price=price,
        financial_status=rng.choice(["paid", "pending", "authorized"]),
        cancelled_at=None,
        created_at=f"2026-10-{day:02d}T10:00:00-05:00",
        updated_at=f"2026-10-{day:02d}T10:00:00-05:00",
    )
    order["customer"]["id"] = customer_id
    order["customer"]["email"] = f"customer{customer_id % 100000}@example.com"
    return order


def _updated(order: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    update = copy.deepcopy(order)
    update["financial_status"] = "paid"
    update["updated_at"] = order["updated_at"].replace("T10:", f"T{rng.randint(11, 20)}:")
    return update


def _customer(sample: dict[str, Any], customer_id: int, rng: random.Random) -> dict[str, Any]:
    customer = copy.deepcopy(sample)
    customer.update(
        id=customer_id,
        email=f"customer{customer_id % 100000}@example.com",
        updated_at=f"2026-10-{rng.randint(1, 28):02d}T12:00:00-05:00",
    )
    return customer


# What the compact order leaves out of Shopify's sample (besides every `*_set`
# price block and the top-level keys that are null or empty).
_COMPACT_DROPPED = (
    "billing_address",
    "client_details",
    "discount_applications",
    "fulfillments",
    "line_item_groups",
    "payment_terms",
    "refunds",
    "returns",
    "shipping_lines",
)


def compact_order_sample() -> dict[str, Any]:
    """Shopify's sample orders/create body trimmed to about 3 KB."""
    order: dict[str, Any] = json.loads((FIXTURES / "orders_create.json").read_text())
    for key in _COMPACT_DROPPED:
        order.pop(key, None)
    order["line_items"] = order["line_items"][:1]
    for item in order["line_items"]:
        for key in [key for key in item if key.endswith("_set")]:
            del item[key]
    for key in list(order):
        if key.endswith("_set") or order[key] is None or order[key] == []:
            del order[key]
    return order


def generate_compact_orders(
    secret: str, *, count: int = 5000, shops: int = 8, seed: int = 11, real_orders: bool = False
) -> list[Delivery]:
    """`count` signed ~3 KB orders/create deliveries, each a new order of a new customer.

    Shopify's sample is a test order; `real_orders` makes them counted orders.
    """
    rng = random.Random(seed)
    sample = compact_order_sample()
    deliveries = []
    for number in range(count):
        shop = f"compact-{rng.randrange(shops)}.myshopify.com"
        customer_id = ID_BASE + 3 * 10**9 + number
        order = _order(sample, ID_BASE + 2 * 10**9 + number, customer_id, rng)
        order["customer"]["updated_at"] = order["customer"]["created_at"] = order["created_at"]
        order["customer"]["admin_graphql_api_id"] = f"gid://shopify/Customer/{customer_id}"
        order["admin_graphql_api_id"] = f"gid://shopify/Order/{order['id']}"
        if real_orders:
            order["test"] = False
        deliveries.append(_delivery("orders/create", shop, order, secret))
    return deliveries


def write_lua_table(deliveries: list[Delivery], path: Path) -> None:
    """The deliveries as a Lua file that wrk's script loads with dofile()."""
    with path.open("w") as out:
        out.write("return {\n")
        for delivery in deliveries:
            body = delivery.body.decode()
            level = "=" * 8
            assert f"]{level}]" not in body
            out.write(
                f'{{topic="{delivery.topic}", shop="{delivery.shop}", '
                f'signature="{delivery.signature}", body=[{level}[{body}]{level}]}},\n'
            )
        out.write("}\n")


@dataclass(frozen=True)
class UpdateStorm:
    """The orders/create deliveries that create the orders, then the updates to measure."""

    seed: list[Delivery]
    updates: list[Delivery]


# (topic, minutes after the order's creation) of each re-delivery, in the order sent.
STORM_VERSIONS = (
    ("orders/paid", 1),
    ("orders/updated", 2),
    ("orders/updated", 2),  # re-delivered: the same version again
    ("orders/fulfilled", 3),
)
# What a storm line item keeps of Shopify's sample (with three of them the
# body is about 3 KB, as in the independent check the issue describes).
_STORM_LINE_ITEM_KEYS = (
    "id",
    "current_quantity",
    "fulfillment_status",
    "name",
    "price",
    "product_id",
    "quantity",
    "requires_shipping",
    "sku",
    "title",
    "variant_id",
    "variant_title",
    "vendor",
)


def generate_update_storm(
    secret: str,
    *,
    orders: int = 2000,
    customers: int = 500,
    shop: str = "storm-0.myshopify.com",
    seed: int = 13,
) -> UpdateStorm:
    """`orders` orders of `customers` customers in one shop: their creates and their updates."""
    rng = random.Random(seed)
    sample = compact_order_sample()
    first_item = {key: sample["line_items"][0].get(key) for key in _STORM_LINE_ITEM_KEYS}
    creates: list[dict[str, Any]] = []
    for number in range(orders):
        customer_id = ID_BASE + 5 * 10**9 + number % customers
        order = _order(sample, ID_BASE + 4 * 10**9 + number, customer_id, rng)
        order["line_items"] = [
            {**first_item, "id": ID_BASE + 6 * 10**9 + 3 * number + item, "quantity": item + 1}
            for item in range(3)
        ]
        order["customer"]["updated_at"] = order["customer"]["created_at"] = order["created_at"]
        order["customer"]["admin_graphql_api_id"] = f"gid://shopify/Customer/{customer_id}"
        order["admin_graphql_api_id"] = f"gid://shopify/Order/{order['id']}"
        order["financial_status"] = "pending"
        creates.append(order)
    updates = []
    for topic, minutes in STORM_VERSIONS:
        for order in creates:
            version = copy.deepcopy(order)
            version["updated_at"] = _later(order["created_at"], minutes)
            version["financial_status"] = "paid"
            if topic == "orders/fulfilled":
                version["fulfillment_status"] = "fulfilled"
            updates.append(_delivery(topic, shop, version, secret))
    return UpdateStorm(
        seed=[_delivery("orders/create", shop, order, secret) for order in creates],
        updates=updates,
    )


def _later(timestamp: str, minutes: int) -> str:
    """An ISO timestamp `minutes` later (the generated ones are on the hour)."""
    return timestamp.replace(":00:00", f":{minutes:02d}:00")
