"""Signed Shopify deliveries for tests (signing itself: app/devtools/signing.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

# Re-exported: the tests reach everything about a delivery through this module.
from app.devtools.signing import PREVIOUS_SECRET as PREVIOUS_SECRET
from app.devtools.signing import SECRET as SECRET
from app.devtools.signing import SHOP as SHOP
from app.devtools.signing import headers as headers
from app.devtools.signing import sign as sign

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

OTHER_SHOP = "other-shop.myshopify.com"


def fixture(name: str) -> dict[str, Any]:
    """One of Shopify's sample payloads (tests/fixtures/<name>.json), parsed."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def encode(payload: dict[str, Any] | bytes) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def order(
    order_id: int,
    *,
    customer_id: int | None = None,
    updated_at: str = "2026-01-01T10:00:00-05:00",
    created_at: str = "2026-01-01T09:00:00-05:00",
    total_price: str = "100.00",
    current_total_price: str | None = None,
    financial_status: str = "paid",
    cancelled_at: str | None = None,
    email: str = "buyer@example.com",
    customer_updated_at: str | None = None,
    customer_fields: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Shopify's sample order, with the fields a test cares about replaced.

    `fields` replace further top-level keys, `customer_fields` keys of the nested customer.
    """
    payload = fixture("orders_create")
    payload.update(
        id=order_id,
        updated_at=updated_at,
        created_at=created_at,
        total_price=total_price,
        current_total_price=current_total_price or total_price,
        financial_status=financial_status,
        cancelled_at=cancelled_at,
        email=email,
    )
    if customer_id is None:
        payload["customer"] = None
    else:
        payload["customer"]["id"] = customer_id
        payload["customer"]["updated_at"] = customer_updated_at
        payload["customer"].update(customer_fields or {})
    payload.update(fields)
    return payload


def customer(
    customer_id: int,
    *,
    updated_at: str | None = "2026-01-01T10:00:00-05:00",
    email: str = "bob@biller.com",
    first_name: str | None = "Bob",
    last_name: str | None = "Biller",
    tags: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Shopify's sample customer (no `tags` key unless given); `fields` replace further keys."""
    payload = fixture("customers_create")
    payload.update(
        id=customer_id,
        updated_at=updated_at,
        email=email,
        first_name=first_name,
        last_name=last_name,
    )
    if tags is not None:
        payload["tags"] = tags
    payload.update(fields)
    return payload


def deleted(resource_id: int) -> dict[str, Any]:
    """The body of orders/delete (customers/delete adds a few keys that change nothing)."""
    return {"id": resource_id}


def customer_deleted(customer_id: int) -> dict[str, Any]:
    payload = fixture("customers_delete")
    payload.update(id=customer_id, admin_graphql_api_id=f"gid://shopify/Customer/{customer_id}")
    return payload


def customers_redact(
    customer_id: int,
    *,
    email: str | None = "john@example.com",
    phone: str | None = "555-625-1199",
    orders_to_redact: list[int] | None = None,
    shop: str = SHOP,
) -> dict[str, Any]:
    payload = fixture("customers_redact")
    payload.update(shop_domain=shop, orders_to_redact=orders_to_redact or [])
    payload["customer"] = {"id": customer_id, "email": email, "phone": phone}
    return payload


def data_request(
    customer_id: int, orders: list[int] | None = None, shop: str = SHOP
) -> dict[str, Any]:
    payload = fixture("customers_data_request")
    payload["shop_domain"] = shop
    payload["customer"]["id"] = customer_id
    if orders is not None:
        payload["orders_requested"] = orders
    return payload


def shop_redact(shop: str = SHOP) -> dict[str, Any]:
    payload = fixture("shop_redact")
    payload["shop_domain"] = shop
    return payload


async def post_raw(
    client: httpx.AsyncClient, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    """POST `body` with exactly these headers (for malformed deliveries)."""
    return await client.post("/webhooks/shopify", content=body, headers=headers)


async def post(
    client: httpx.AsyncClient, topic: str, payload: dict[str, Any] | bytes, **options: Any
) -> httpx.Response:
    """POST a correctly signed delivery of `payload` (options: see headers())."""
    body = encode(payload)
    return await client.post(
        "/webhooks/shopify", content=body, headers=headers(topic, body, **options)
    )


async def deliver(
    client: httpx.AsyncClient,
    topic: str,
    payload: dict[str, Any] | bytes,
    webhook_id: str | None = None,
    **options: Any,
) -> str:
    """POST a signed delivery that must be answered 200; return its status (processed, ...)."""
    response = await post(client, topic, payload, webhook_id=webhook_id, **options)
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status
