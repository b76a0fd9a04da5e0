"""The parts of Shopify's payloads this service reads, as typed msgspec structs.

Decoding checks types as it goes: ids are exact 64-bit integers, money is
Decimal (app/shopify/money.py), timestamps carry a zone and are neither in the
future nor out of range (app/shopify/times.py). A body that is not JSON is the sender's
mistake (400); JSON of the wrong shape is a payload that cannot be applied
(recorded as `failed`, replayable after a fix).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar, TypeVar

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from app.db.enums import (
    EmailMarketingState,
    FinancialStatus,
    MarketingOptInLevel,
    SmsMarketingState,
)
from app.shopify.ids import MAX_SHOPIFY_ID, id_number
from app.shopify.money import validate_money
from app.shopify.times import check_times
from app.webhooks.delivery import BadDelivery

T = TypeVar("T")

ShopifyId = Annotated[int, Meta(ge=1, le=MAX_SHOPIFY_ID)]
Timestamp = Annotated[datetime, Meta(tz=True)]
Text255 = Annotated[str, Meta(max_length=255)]


class PayloadError(Exception):
    """The payload is JSON but cannot be applied: wrong shape or out-of-range values."""


def check_resource(gid: str | UnsetType, kind: str) -> None:
    """A body of another resource's topic is not of this topic's shape.

    The signature covers the body, not the topic header: an order's body
    re-sent as customers/create would otherwise be read as a customer. Shopify
    names the resource in `admin_graphql_api_id` (gid://shopify/Order/...);
    when the key is there it must name this topic's resource.
    """
    if isinstance(gid, str) and not gid.startswith(f"gid://shopify/{kind}/"):
        raise ValueError(f"admin_graphql_api_id {gid[:80]!r} is not a {kind}")


class CustomerPayload(Struct):
    """A Customer, as sent by customers/* and nested in orders."""

    id: ShopifyId
    admin_graphql_api_id: str | UnsetType = UNSET
    email: Text255 | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: Annotated[str, Meta(max_length=50)] | None = None
    # Since API 2025-01 the key is absent; then the stored tags are kept.
    tags: str | UnsetType | None = UNSET
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None

    def __post_init__(self) -> None:
        check_resource(self.admin_graphql_api_id, "Customer")
        check_times(self, "created_at", "updated_at")
        if self.name is not None and len(self.name) > 255:
            raise ValueError("first_name and last_name together exceed 255 characters")

    @property
    def name(self) -> str | None:
        parts = [part.strip() for part in (self.first_name, self.last_name) if part]
        return " ".join(part for part in parts if part) or None

    @property
    def tag_list(self) -> list[str] | None:
        if not isinstance(self.tags, str):
            return None
        return [tag.strip() for tag in self.tags.split(",") if tag.strip()]


class OrderPayload(Struct):
    """An Order: orders/create, updated, paid, cancelled, fulfilled, partially_fulfilled."""

    id: ShopifyId
    admin_graphql_api_id: str | UnsetType = UNSET
    name: Text255 | None = None
    email: Text255 | None = None
    currency: Annotated[str, Meta(max_length=3)] | None = None
    total_price: Decimal | None = None
    current_total_price: Decimal | None = None
    financial_status: FinancialStatus | None = None
    fulfillment_status: Annotated[str, Meta(max_length=32)] | None = None
    cancelled_at: Timestamp | None = None
    test: bool | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    customer: CustomerPayload | None = None

    def __post_init__(self) -> None:
        check_resource(self.admin_graphql_api_id, "Order")
        check_times(self, "cancelled_at", "created_at", "updated_at")
        self.total_price = validate_money("total_price", self.total_price)
        self.current_total_price = validate_money("current_total_price", self.current_total_price)


class DeletedPayload(Struct):
    """orders/delete and customers/delete carry little more than the id."""

    id: ShopifyId
    admin_graphql_api_id: str | UnsetType = UNSET
    resource: ClassVar[str] = ""

    def __post_init__(self) -> None:
        if self.resource:
            check_resource(self.admin_graphql_api_id, self.resource)


class DeletedOrderPayload(DeletedPayload):
    resource: ClassVar[str] = "Order"


class DeletedCustomerPayload(DeletedPayload):
    resource: ClassVar[str] = "Customer"


class PrivacyCustomer(Struct):
    id: ShopifyId
    email: str | None = None
    phone: str | None = None


# The privacy topics and app/uninstalled change or erase a whole shop's or a
# customer's data, and the signature does not cover the headers that say which
# shop and which topic: their bodies are checked to be of the topic's shape
# and to name the shop of the header (privacy/handlers.py, handlers/shop.py).
# Keys of the other privacy topics must be absent, so that the body of one
# (signed, for one shop) cannot pass for another.


class ShopRedactPayload(Struct):
    shop_id: ShopifyId
    shop_domain: Text255
    customer: UnsetType | None = UNSET
    orders_to_redact: UnsetType | None = UNSET
    orders_requested: UnsetType | None = UNSET

    def __post_init__(self) -> None:
        if not all(
            value is UNSET
            for value in (self.customer, self.orders_to_redact, self.orders_requested)
        ):
            raise ValueError("a shop/redact body names no customer and no orders")


class CustomersRedactPayload(Struct):
    shop_id: ShopifyId
    shop_domain: Text255
    customer: PrivacyCustomer
    orders_to_redact: list[ShopifyId]
    orders_requested: UnsetType | None = UNSET
    data_request: UnsetType | None = UNSET

    def __post_init__(self) -> None:
        if self.orders_requested is not UNSET or self.data_request is not UNSET:
            raise ValueError("a customers/redact body has no orders_requested nor data_request")


class CustomersDataRequestPayload(Struct):
    shop_id: ShopifyId
    shop_domain: Text255
    customer: PrivacyCustomer
    orders_requested: list[ShopifyId]
    orders_to_redact: UnsetType | None = UNSET

    def __post_init__(self) -> None:
        if self.orders_to_redact is not UNSET:
            raise ValueError("a customers/data_request body has no orders_to_redact")


class ShopPayload(Struct):
    """The Shop object of app/uninstalled.

    `myshopify_domain` must be there; Shopify's own sample sends it as null.
    """

    id: ShopifyId
    myshopify_domain: Text255 | None


def parse_gid(gid: str, kind: str) -> int:
    """The numeric id of `gid://shopify/<kind>/<id>`; ValueError when it is not one."""
    prefix = f"gid://shopify/{kind}/"
    number = id_number(gid[len(prefix) :]) if gid.startswith(prefix) else None
    if number is None:
        raise ValueError(f"{gid[:80]!r} is not a {kind} id (gid://shopify/{kind}/<number>)")
    return number


def _choice(field: str, value: str | None, values: type[StrEnum]) -> str | None:
    """A value of the set, lower-cased (the Admin API sends upper case); None stays None."""
    if value is None:
        return None
    lowered = value.lower()
    if lowered not in values.__members__.values():
        raise ValueError(f"{field} {value[:40]!r} is not one of {', '.join(values)}")
    return lowered


class CustomerTagsPayload(Struct, rename="camel"):
    """customer.tags_added and customer.tags_removed (API 2025-01 on)."""

    customer_id: str  # gid://shopify/Customer/<id>
    tags: list[Annotated[str, Meta(max_length=255)]]
    occurred_at: Timestamp

    def __post_init__(self) -> None:
        parse_gid(self.customer_id, "Customer")
        check_times(self, "occurred_at")

    @property
    def customer_shopify_id(self) -> str:
        return str(parse_gid(self.customer_id, "Customer"))

    @property
    def tag_set(self) -> list[str]:
        return sorted({tag.strip() for tag in self.tags if tag.strip()})


class MarketingConsent(Struct):
    state: str | None = None
    opt_in_level: str | None = None
    consent_updated_at: Timestamp | None = None

    def __post_init__(self) -> None:
        check_times(self, "consent_updated_at")


class EmailConsentPayload(Struct):
    """customers_email_marketing_consent/update."""

    customer_id: ShopifyId
    email_marketing_consent: MarketingConsent
    email_address: str | None = None

    def __post_init__(self) -> None:
        consent = self.email_marketing_consent
        consent.state = _choice("state", consent.state, EmailMarketingState)
        consent.opt_in_level = _choice("opt_in_level", consent.opt_in_level, MarketingOptInLevel)


class SmsConsentPayload(Struct):
    """customers_marketing_consent/update (SMS)."""

    id: ShopifyId
    sms_marketing_consent: MarketingConsent
    phone: str | None = None

    def __post_init__(self) -> None:
        consent = self.sms_marketing_consent
        consent.state = _choice("state", consent.state, SmsMarketingState)
        consent.opt_in_level = _choice("opt_in_level", consent.opt_in_level, MarketingOptInLevel)


class Money(Struct, rename="camel"):
    amount: Decimal
    currency_code: str | None = None


class PurchasingSummaryPayload(Struct, rename="camel"):
    """customers/purchasing_summary: Shopify's own figures for a customer."""

    customer_id: str  # gid://shopify/Customer/<id>
    number_of_orders: Annotated[int, Meta(ge=0, le=2**31 - 1)]
    amount_spent: Money
    occurred_at: Timestamp
    last_order_id: str | None = None

    def __post_init__(self) -> None:
        parse_gid(self.customer_id, "Customer")
        check_times(self, "occurred_at")
        validate_money("amountSpent", self.amount_spent.amount)

    @property
    def customer_shopify_id(self) -> str:
        return str(parse_gid(self.customer_id, "Customer"))


class CustomersMergePayload(Struct):
    """customers/merge: one customer merged into another (or a merge that did not happen)."""

    admin_graphql_api_customer_kept_id: str
    admin_graphql_api_customer_deleted_id: str
    status: Annotated[str, Meta(max_length=64)]

    def __post_init__(self) -> None:
        if self.kept_id == self.deleted_id:
            raise ValueError("a customer cannot be merged into itself")

    @property
    def kept_id(self) -> str:
        return str(parse_gid(self.admin_graphql_api_customer_kept_id, "Customer"))

    @property
    def deleted_id(self) -> str:
        return str(parse_gid(self.admin_graphql_api_customer_deleted_id, "Customer"))

    @property
    def completed(self) -> bool:
        return self.status.lower() == "completed"


class BulkOperationFinishPayload(Struct):
    """bulk_operations/finish: the sync waits for it (app/sync/runner.py reads the ledger)."""

    admin_graphql_api_id: str
    status: str | None = None

    def __post_init__(self) -> None:
        check_resource(self.admin_graphql_api_id, "BulkOperation")


class AnyObject(Struct):
    """Any JSON object; decoding into it still checks the whole body is valid JSON."""


def decode(body: bytes | str, model: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=model)
    except msgspec.ValidationError as error:
        # Fix: msgspec stops at the first value of the wrong type, before it has
        # read the rest of the body, so a body that is not JSON at all (cut
        # short, trailing data) was recorded as `failed` instead of refused
        # with 400. Only JSON of the wrong shape is a payload that cannot be applied.
        _check_json(body)
        raise PayloadError(str(error)) from None
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as error:
        raise BadDelivery(f"body is not valid JSON: {error}") from None


def _check_json(body: bytes | str) -> None:
    try:
        msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as error:
        raise BadDelivery(f"body is not valid JSON: {error}") from None


def payload_text(body: bytes) -> str:
    """The body as text for the ledger, if it is UTF-8 and looks like a JSON object."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadDelivery("body is not valid UTF-8") from None
    if not text.lstrip().startswith("{"):
        raise BadDelivery("body must be a JSON object")
    return text
