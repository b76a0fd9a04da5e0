"""A demo shop that keeps selling: new orders, delivered as webhooks to its subscriptions.

Like Shopify, the stand-in sends `orders/create` (signed with the app's secret)
to every subscription the app created for the topic: once a service has
connected the demo shop (which creates its subscriptions), its orders arrive
by webhook as well as by sync.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import urllib.error
import urllib.request
from typing import Any

from app.devtools.signing import headers

from .data import FakeShop, Record, gid

log = logging.getLogger("app.devtools")


def rest_customer(record: Record) -> dict[str, Any]:
    """A customer as Shopify's webhook bodies (REST shape) carry it."""
    return {
        "id": record["id"],
        "admin_graphql_api_id": gid("Customer", record["id"]),
        "email": record["email"],
        "first_name": record["first_name"],
        "last_name": record["last_name"],
        "phone": record["phone"],
        "state": record["state"].lower(),
        "created_at": record["created_at"].isoformat(),
        "updated_at": record["updated_at"].isoformat(),
    }


def rest_order(shop: FakeShop, record: Record) -> dict[str, Any]:
    """An order as Shopify's orders/* webhook bodies carry it."""
    customer = shop.get_customer(record["customer_id"]) if record["customer_id"] else None
    cancelled = record["cancelled_at"]
    return {
        "id": record["id"],
        "admin_graphql_api_id": gid("Order", record["id"]),
        "name": record["name"],
        "email": record["email"],
        "currency": record["currency"],
        "total_price": str(record["total_price"]),
        "current_total_price": str(record["current_total_price"]),
        "financial_status": (record["financial_status"] or "").lower() or None,
        "fulfillment_status": None,
        "cancelled_at": cancelled.isoformat() if cancelled else None,
        "test": record["test"],
        "created_at": record["created_at"].isoformat(),
        "updated_at": record["updated_at"].isoformat(),
        "customer": rest_customer(customer) if customer else None,
        "line_items": [
            {"id": item["id"], "title": item.get("title"), "quantity": item.get("quantity")}
            for item in record["line_items"]
        ],
    }


def deliver(shop: FakeShop, topic: str, payload: dict[str, Any], secret: str) -> int:
    """POST the payload to each of the shop's subscriptions to `topic`; how many took it."""
    enum = topic.upper().replace("/", "_")
    body = json.dumps(payload).encode()
    delivered = 0
    for subscription in list(shop.subscriptions):
        if subscription["topic"] != enum:
            continue
        request = urllib.request.Request(
            subscription["uri"],
            data=body,
            headers=headers(topic, body, shop=shop.domain, secret=secret, triggered_at=None),
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                delivered += answer.status == 200
        except (urllib.error.URLError, OSError) as error:
            log.warning("webhook not delivered", extra={"fields": {"reason": str(error)}})
    return delivered


def keep_selling(shop: FakeShop, secret: str, every: float, stop: threading.Event) -> None:
    """Every `every` seconds, a new order by an existing customer, delivered as orders/create."""
    rng = random.Random(7)
    while not stop.wait(every):
        customers = shop.customers
        customer = rng.choice(customers) if customers else None
        record = shop.add_order(
            customer_id=customer["id"] if customer else None,
            email=customer["email"] if customer else None,
            total_price=f"{rng.randint(5, 300)}.{rng.randint(0, 99):02d}",
            line_items=[{"title": "Demo item", "quantity": 1, "price": "10.00"}],
        )
        sent = deliver(shop, "orders/create", rest_order(shop, record), secret)
        log.info(
            "demo order",
            extra={"fields": {"shop": shop.domain, "order": record["id"], "delivered": sent}},
        )
