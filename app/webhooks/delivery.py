"""A webhook delivery as it arrives: signature check and header parsing.

Header names are case-insensitive (the ASGI server lowercases them). Shopify's
classic webhooks use `X-Shopify-*` names, its newer Events deliveries the same
names without `X-`; both are accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import msgspec

from app.http.errors import BadRequest, Unauthorized
from app.shopify.domains import shop_domain

VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")
TOPIC = re.compile(r"[A-Za-z0-9_]+([/.][A-Za-z0-9_]+)+")

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class BadDelivery(BadRequest):
    """The request is not a well-formed webhook delivery (answered 400)."""


class InvalidSignature(Unauthorized):
    """The body is not signed with the app's secret (answered 401; nothing is stored)."""


@dataclass(frozen=True)
class Delivery:
    shop_id: str
    webhook_id: str
    topic: str
    event_id: str | None
    api_version: str | None
    triggered_at: datetime | None
    body: bytes


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of `X-Shopify-<name>` or `Shopify-<name>`, whichever is present and not blank."""
    for candidate in (f"x-shopify-{name}", f"shopify-{name}"):
        value = headers.get(candidate)
        if value is not None and value.strip():
            return value.strip()
    return None


def signature_is_valid(body: bytes, signature: str | None, secrets: tuple[bytes, ...]) -> bool:
    """Whether `signature` is the base64 HMAC-SHA256 of the raw body under one of the secrets."""
    if not signature:
        return False
    received = signature.encode("utf-8", "surrogateescape")
    valid = False
    for secret in secrets:
        expected = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest())
        # Every secret is compared, so timing does not reveal which one matched.
        valid |= hmac.compare_digest(expected, received)
    return valid


def verify_signature(body: bytes, signature: str | None, secrets: tuple[bytes, ...]) -> None:
    """Raises InvalidSignature unless the body is signed with one of the secrets."""
    if not signature_is_valid(body, signature, secrets):
        raise InvalidSignature("invalid or missing HMAC signature")


def parse_delivery(headers: Mapping[str, str], body: bytes) -> Delivery:
    """Read the delivery's headers, raising BadDelivery naming the first bad one."""
    return Delivery(
        shop_id=_shop_domain(header(headers, "shop-domain")),
        webhook_id=_required(headers, "webhook-id", "X-Shopify-Webhook-Id"),
        topic=_topic(header(headers, "topic")),
        event_id=_optional_token(headers, "event-id", "X-Shopify-Event-Id", 255),
        api_version=_optional_token(headers, "api-version", "X-Shopify-API-Version", 32),
        triggered_at=_triggered_at(header(headers, "triggered-at")),
        body=body,
    )


def _shop_domain(value: str | None) -> str:
    if value is None:
        raise BadDelivery("missing header X-Shopify-Shop-Domain")
    domain = shop_domain(value)
    if domain is None:
        raise BadDelivery("header X-Shopify-Shop-Domain must be a *.myshopify.com domain")
    return domain


def _topic(value: str | None) -> str:
    if value is None:
        raise BadDelivery("missing header X-Shopify-Topic")
    if len(value) > 255 or not TOPIC.fullmatch(value):
        raise BadDelivery("header X-Shopify-Topic must look like 'orders/create'")
    return value


def _required(headers: Mapping[str, str], name: str, display: str) -> str:
    value = _optional_token(headers, name, display, 255)
    if value is None:
        raise BadDelivery(f"missing header {display}")
    return value


def _optional_token(
    headers: Mapping[str, str], name: str, display: str, max_length: int
) -> str | None:
    value = header(headers, name)
    if value is not None and (len(value) > max_length or not VISIBLE_ASCII.fullmatch(value)):
        raise BadDelivery(f"header {display} must be at most {max_length} visible ASCII characters")
    return value


def _triggered_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = msgspec.json.decode(msgspec.json.encode(value), type=AwareDatetime)
    except msgspec.ValidationError:
        raise BadDelivery(
            "header X-Shopify-Triggered-At must be an ISO-8601 time with a zone"
        ) from None
    try:
        # Kept in UTC. At the edges of the calendar (0001-01-01T00:00:00+14:00,
        # 9999-12-31T23:59:59-14:00) the UTC time is outside the years datetime
        # (and so the driver) can hold: that used to fail in the database call.
        return parsed.astimezone(UTC)
    except OverflowError:
        raise BadDelivery(
            "header X-Shopify-Triggered-At is out of range (its UTC time is before year 1"
            " or after 9999)"
        ) from None
