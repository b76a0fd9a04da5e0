"""Signed webhook deliveries as Shopify sends them, for tests, the benchmark and the demo.

`SECRET` is the development secret the stack and the stand-in share; never a real one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

SECRET = "test-secret"
PREVIOUS_SECRET = "previous-test-secret"
SHOP = "test-shop.myshopify.com"


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def headers(
    topic: str,
    body: bytes,
    *,
    shop: str = SHOP,
    webhook_id: str | None = None,
    secret: str = SECRET,
    prefix: str = "X-Shopify-",
    triggered_at: str | None = "2026-11-23T10:00:00.123456789Z",
    **extra: str,
) -> dict[str, str]:
    """The headers Shopify sends with `body` (prefix "Shopify-" for the newer Events family)."""
    values = {
        "Hmac-Sha256": sign(body, secret),
        "Topic": topic,
        "Shop-Domain": shop,
        "Webhook-Id": webhook_id or str(uuid.uuid4()),
        "Event-Id": str(uuid.uuid4()),
        "API-Version": "2026-07",
        **extra,
    }
    if triggered_at:
        values["Triggered-At"] = triggered_at
    result = {f"{prefix}{name}": value for name, value in values.items()}
    result["Content-Type"] = "application/json"
    return result
