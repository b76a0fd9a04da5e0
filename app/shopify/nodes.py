"""The Admin API's customers, orders and line items, as the queries in queries.py ask for them.

Decoding checks types as it goes (msgspec): timestamps carry a zone and are
neither in the future nor out of range (app/shopify/times.py), money amounts
are Decimal (never float), ids are strings until they are checked as 64-bit
integers in app/sync/records.py.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from msgspec import Meta, Struct

from app.shopify.times import check_times

Timestamp = Annotated[datetime, Meta(tz=True)]


class Money(Struct):
    amount: Decimal


class MoneyBag(Struct, rename="camel"):
    shop_money: Money


class LegacyId(Struct, rename="camel"):
    legacy_resource_id: str


class EmailAddress(Struct, rename="camel"):
    email_address: str
    # Marketing consent (upper case, e.g. NOT_SUBSCRIBED, SINGLE_OPT_IN).
    marketing_state: str | None = None
    marketing_opt_in_level: str | None = None
    marketing_updated_at: Timestamp | None = None

    def __post_init__(self) -> None:
        check_times(self, "marketing_updated_at")


class PhoneNumber(Struct, rename="camel"):
    phone_number: str
    marketing_state: str | None = None
    marketing_opt_in_level: str | None = None
    marketing_updated_at: Timestamp | None = None

    def __post_init__(self) -> None:
        check_times(self, "marketing_updated_at")


class CustomerNode(Struct, rename="camel"):
    legacy_resource_id: str
    created_at: Timestamp
    updated_at: Timestamp
    id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    default_email_address: EmailAddress | None = None
    default_phone_number: PhoneNumber | None = None
    tags: list[str] = []

    def __post_init__(self) -> None:
        check_times(self, "created_at", "updated_at")


class LineItemNode(Struct, rename="camel"):
    id: str
    quantity: int
    name: str | None = None
    title: str | None = None
    current_quantity: int | None = None
    sku: str | None = None
    original_unit_price_set: MoneyBag | None = None
    variant: LegacyId | None = None
    product: LegacyId | None = None


class PageInfo(Struct, rename="camel"):
    has_next_page: bool
    end_cursor: str | None = None


class LineItemPage(Struct, rename="camel"):
    nodes: list[LineItemNode]
    page_info: PageInfo | None = None


class OrderNode(Struct, rename="camel"):
    id: str
    legacy_resource_id: str
    created_at: Timestamp
    updated_at: Timestamp
    name: str | None = None
    email: str | None = None
    currency_code: str | None = None
    total_price_set: MoneyBag | None = None
    current_total_price_set: MoneyBag | None = None
    display_financial_status: str | None = None
    display_fulfillment_status: str | None = None
    cancelled_at: Timestamp | None = None
    test: bool | None = None
    customer: LegacyId | None = None
    # Only in paginated queries; bulk results carry line items as lines of their own.
    line_items: LineItemPage | None = None

    def __post_init__(self) -> None:
        check_times(self, "created_at", "updated_at", "cancelled_at")


class CustomerPage(Struct, rename="camel"):
    page_info: PageInfo
    nodes: list[CustomerNode]


class OrderPage(Struct, rename="camel"):
    page_info: PageInfo
    nodes: list[OrderNode]


class BulkOperation(Struct, rename="camel"):
    id: str
    status: str
    error_code: str | None = None
    created_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    object_count: str | None = None
    url: str | None = None
    partial_data_url: str | None = None
    query: str | None = None

    def __post_init__(self) -> None:
        # created_at becomes the full sync's watermark.
        check_times(self, "created_at", "completed_at")

    @property
    def finished(self) -> bool:
        return self.status not in ("CREATED", "RUNNING", "CANCELING")
