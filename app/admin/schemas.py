"""What the admin API answers, typed, so that /schema describes each answer exactly.

Payloads and line items are Shopify's JSON as stored, passed through as raw
JSON (never parsed again on the way out).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

import msgspec

from app.db.enums import DeliveryStatus

S = TypeVar("S", bound=msgspec.Struct)


class Event(msgspec.Struct):
    """A recorded delivery (a ledger row). `payload` only when asked for."""

    id: UUID
    shop_id: str
    webhook_id: str
    topic: str
    received_at: datetime
    status: DeliveryStatus | None
    event_id: str | None = None
    api_version: str | None = None
    triggered_at: datetime | None = None
    attempts: int | None = None
    last_error: str | None = None
    processed_at: datetime | None = None
    payload: msgspec.Raw | msgspec.UnsetType | None = msgspec.UNSET


class EventPage(msgspec.Struct):
    """Recorded deliveries, newest first; `next_cursor` continues the listing."""

    events: list[Event]
    next_cursor: str | None = None


class ExportedCustomer(msgspec.Struct):
    """Every column held about a customer."""

    id: UUID
    shop_id: str
    shopify_id: str
    created_at: datetime | None
    name: str | None
    email: str | None
    phone: str | None
    rfm_r: int | None
    rfm_f: int | None
    rfm_m: int | None
    segment: str | None
    lifecycle_stage: str | None
    tags: list[str] | None
    total_spent: Decimal | None
    order_count: int | None
    avg_order_value: Decimal | None
    first_order_at: datetime | None
    last_order_at: datetime | None
    shopify_created_at: datetime | None
    shopify_updated_at: datetime | None
    deleted_at: datetime | None
    redacted_at: datetime | None
    email_marketing_state: str | None
    email_marketing_opt_in_level: str | None
    email_marketing_consent_updated_at: datetime | None
    sms_marketing_state: str | None
    sms_marketing_opt_in_level: str | None
    sms_marketing_consent_updated_at: datetime | None
    shopify_order_count: int | None
    shopify_amount_spent: Decimal | None
    shopify_summary_at: datetime | None
    merged_into: str | None
    merged_at: datetime | None


class ExportedOrder(msgspec.Struct):
    """Every column held about an order."""

    id: UUID
    shop_id: str
    shopify_id: str
    created_at: datetime | None
    customer_id: UUID | None
    total_price: Decimal | None
    line_items: msgspec.Raw | None
    financial_status: str | None
    name: str | None
    email: str | None
    currency: str | None
    current_total_price: Decimal | None
    fulfillment_status: str | None
    test: bool | None
    cancelled_at: datetime | None
    shopify_created_at: datetime | None
    shopify_updated_at: datetime | None
    deleted_at: datetime | None


class CustomerExport(msgspec.Struct):
    """Everything held about one customer: the answer to a customers/data_request."""

    shop: str
    shopify_customer_id: str
    customer: ExportedCustomer | None
    orders: list[ExportedOrder]
    events: list[Event]


def columns(struct: type[msgspec.Struct], *, raw_json: tuple[str, ...] = ()) -> str:
    """The SELECT list for a struct's fields; `raw_json` columns come back as JSON text."""
    return ", ".join(
        f"{name}::text AS {name}" if name in raw_json else name for name in struct.__struct_fields__
    )


def from_row(struct: type[S], row: Any, *, raw_json: tuple[str, ...] = ()) -> S:
    """A struct from a database row; `raw_json` text columns embedded as raw JSON."""
    values = dict(row)
    for name in raw_json:
        text = values.get(name)
        values[name] = None if text is None else msgspec.Raw(text.encode())
    return struct(**values)
