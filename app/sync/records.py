"""Admin API nodes mapped onto the columns webhooks fill (docs/sync.md, Field mapping).

The result is what the SQL functions sync_apply_customers and
sync_apply_orders take: plain JSON-ready values, checked the way webhook
payloads are (64-bit ids, money that fits numeric(19,4), known financial
statuses, lengths that fit the columns, times neither in the future nor out of
range, no text PostgreSQL refuses). A node that fails a check is counted as
`failed` and skipped; the rest of its page is applied.
"""

from __future__ import annotations

from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar

import msgspec

from app.db.enums import (
    EmailMarketingState,
    FinancialStatus,
    MarketingOptInLevel,
    SmsMarketingState,
)
from app.shopify.ids import id_number
from app.shopify.money import validate_money
from app.shopify.nodes import (
    CustomerNode,
    EmailAddress,
    LineItemNode,
    MoneyBag,
    OrderNode,
    PhoneNumber,
)

NodeT = TypeVar("NodeT")

_FINANCIAL_STATUSES = frozenset(status.value for status in FinancialStatus)
# GraphQL's displayFulfillmentStatus, as the webhooks' order-level fulfillment_status.
_FULFILLMENT_STATUSES = {
    "FULFILLED": "fulfilled",
    "PARTIALLY_FULFILLED": "partial",
    "RESTOCKED": "restocked",
}


class RecordError(ValueError):
    """A fetched object that cannot be stored as it is (counted as failed)."""


def shopify_id(value: str | None, what: str) -> str:
    """A legacyResourceId (or the number at the end of a GID) as an exact decimal string."""
    return str(shopify_number(value, what))


def shopify_number(value: str | None, what: str) -> int:
    """The same as an integer."""
    number = id_number((value or "").rpartition("/")[2])
    if number is None:
        raise RecordError(f"{what} id {value!r} is not a 64-bit Shopify id")
    return number


def customer_record(node: CustomerNode) -> dict[str, Any]:
    return _storable(_customer_record(node))


def _customer_record(node: CustomerNode) -> dict[str, Any]:
    email = node.default_email_address.email_address if node.default_email_address else None
    phone = node.default_phone_number.phone_number if node.default_phone_number else None
    parts = [part.strip() for part in (node.first_name, node.last_name) if part and part.strip()]
    name = " ".join(parts) or None
    _fits("email", email, 255)
    _fits("phone", phone, 50)
    _fits("name", name, 255)
    return {
        "shopify_id": shopify_id(node.legacy_resource_id, "customer"),
        "email": email,
        "name": name,
        "phone": phone,
        "tags": [tag.strip() for tag in node.tags if tag.strip()],
        "created_at": node.created_at.isoformat(),
        "updated_at": node.updated_at.isoformat(),
        **_consent("email", node.default_email_address, EmailMarketingState),
        **_consent("sms", node.default_phone_number, SmsMarketingState),
    }


def _choice(what: str, value: str | None, values: type[Enum]) -> str | None:
    """An Admin API value (upper case) as the column stores it (lower case)."""
    if value is None:
        return None
    lowered = value.lower()
    if lowered not in {member.value for member in values}:
        raise RecordError(f"{what} {value!r} is not known")
    return lowered


def _consent(
    channel: str, contact: EmailAddress | PhoneNumber | None, states: type[Enum]
) -> dict[str, Any]:
    """The channel's marketing consent columns (all None: nothing known, the stored stays)."""
    if contact is None:
        return dict.fromkeys(
            (
                f"{channel}_marketing_state",
                f"{channel}_marketing_opt_in_level",
                f"{channel}_marketing_updated_at",
            )
        )
    updated_at = contact.marketing_updated_at
    return {
        f"{channel}_marketing_state": _choice(
            f"{channel} marketing state", contact.marketing_state, states
        ),
        f"{channel}_marketing_opt_in_level": _choice(
            f"{channel} opt-in level", contact.marketing_opt_in_level, MarketingOptInLevel
        ),
        f"{channel}_marketing_updated_at": updated_at.isoformat() if updated_at else None,
    }


def order_record(node: OrderNode, line_items: list[LineItemNode]) -> dict[str, Any]:
    return _storable(_order_record(node, line_items))


def _order_record(node: OrderNode, line_items: list[LineItemNode]) -> dict[str, Any]:
    financial = (node.display_financial_status or "").lower() or None
    if financial is not None and financial not in _FINANCIAL_STATUSES:
        raise RecordError(f"financial status {node.display_financial_status!r} is not known")
    _fits("name", node.name, 255)
    _fits("email", node.email, 255)
    _fits("currency", node.currency_code, 3)
    return {
        "shopify_id": shopify_id(node.legacy_resource_id, "order"),
        "customer_shopify_id": (
            shopify_id(node.customer.legacy_resource_id, "customer") if node.customer else None
        ),
        "total_price": _money("total_price", node.total_price_set),
        "current_total_price": _money("current_total_price", node.current_total_price_set),
        "currency": node.currency_code,
        "financial_status": financial,
        "fulfillment_status": _FULFILLMENT_STATUSES.get(node.display_fulfillment_status or ""),
        "cancelled_at": node.cancelled_at.isoformat() if node.cancelled_at else None,
        "name": node.name,
        "email": node.email,
        "test": node.test,
        "line_items": [line_item_record(item) for item in line_items],
        "created_at": node.created_at.isoformat(),
        "updated_at": node.updated_at.isoformat(),
    }


def line_item_record(node: LineItemNode) -> dict[str, Any]:
    """A line item in the shape webhooks store (REST names, numeric ids, money as text)."""
    price = _money("line item price", node.original_unit_price_set)
    return {
        "id": shopify_number(node.id, "line item"),
        "name": node.name,
        "title": node.title,
        "quantity": node.quantity,
        "current_quantity": node.current_quantity,
        "sku": node.sku,
        "price": price,
        "variant_id": shopify_number(node.variant.legacy_resource_id, "variant")
        if node.variant
        else None,
        "product_id": shopify_number(node.product.legacy_resource_id, "product")
        if node.product
        else None,
    }


def _money(field: str, bag: MoneyBag | None) -> str | None:
    if bag is None:
        return None
    try:
        amount: Decimal | None = validate_money(field, bag.shop_money.amount)
    except ValueError as error:
        raise RecordError(str(error)) from None
    return None if amount is None else str(amount)


def _storable(record: dict[str, Any]) -> dict[str, Any]:
    """The record, if PostgreSQL takes all of its text (jsonb refuses a NUL character)."""
    pending: list[Any] = [record]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str) and "\x00" in value:
            raise RecordError("a text field contains a NUL character")
    return record


def _fits(field: str, value: str | None, length: int) -> None:
    if value is not None and len(value) > length:
        raise RecordError(f"{field} is longer than {length} characters")


def decode_line(line: bytes | str, decoder: msgspec.json.Decoder[NodeT]) -> NodeT:
    """A bulk result's line (or the JSON of several), decoded and typed in one pass;
    RecordError when it is not JSON or not of the expected shape."""
    try:
        return decoder.decode(line)
    except msgspec.ValidationError as error:
        raise RecordError(f"unexpected shape: {error}") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        raise RecordError(f"a result line is not JSON: {error}") from None
    except RecursionError:
        raise RecordError("a result line is nested too deeply to be read") from None


def decode_node(node: Any, model: type[NodeT]) -> NodeT:
    """One node of an answer, typed; RecordError when it is not of the expected shape."""
    try:
        return msgspec.convert(node, model)
    except msgspec.ValidationError as error:
        raise RecordError(f"unexpected shape: {error}") from None
    except RecursionError:
        raise RecordError("nested too deeply to be read") from None
