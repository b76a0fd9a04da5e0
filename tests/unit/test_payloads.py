"""Decoding Shopify's payloads into typed structs, and refusing bad ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from app.db.enums import FinancialStatus
from app.webhooks.delivery import BadDelivery
from app.webhooks.payloads import (
    AnyObject,
    CustomerPayload,
    CustomersDataRequestPayload,
    CustomersRedactPayload,
    DeletedPayload,
    OrderPayload,
    PayloadError,
    ShopPayload,
    ShopRedactPayload,
    decode,
    payload_text,
)
from tests.support import shopify

EST = timezone(timedelta(hours=-5))


def order_body(**changes: Any) -> bytes:
    payload = shopify.fixture("orders_create")
    payload.update(changes)
    return json.dumps(payload).encode()


# --- the fixtures -----------------------------------------------------------


def test_customer_fixture() -> None:
    customer = decode(shopify.fixture_bytes("customers_create"), CustomerPayload)
    assert customer.id == 706405506930370084
    assert customer.email == "bob@biller.com"
    assert customer.name == "Bob Biller"
    assert customer.phone is None
    assert customer.created_at == datetime(2021, 12, 31, 19, 0, tzinfo=EST)
    assert customer.updated_at is not None and customer.updated_at.tzinfo is not None
    # Since API 2025-01 the tags key is absent: nothing to say about tags.
    assert customer.tag_list is None


def test_order_fixture() -> None:
    order = decode(shopify.fixture_bytes("orders_create"), OrderPayload)
    assert order.id == 820982911946154508
    assert order.id > 2**53
    assert order.name == "#9999"
    assert order.email == "jon@example.com"
    assert order.currency == "USD"
    assert order.total_price == Decimal("404.95")
    assert str(order.total_price) == "404.95"
    assert order.current_total_price == Decimal("414.95")
    assert order.financial_status is FinancialStatus.voided
    assert order.fulfillment_status is None
    assert order.cancelled_at == datetime(2022, 1, 1, 0, 0, tzinfo=UTC)
    assert order.test is True
    assert order.created_at is not None and order.created_at.tzinfo is not None
    assert order.customer is not None
    assert order.customer.id == 115310627314723954
    assert order.customer.name == "John Smith"
    assert order.customer.updated_at is None


def test_order_with_null_customer() -> None:
    assert decode(order_body(customer=None), OrderPayload).customer is None


def test_deleted_fixtures() -> None:
    assert decode(shopify.fixture_bytes("orders_delete"), DeletedPayload).id == 820982911946154508
    customer = decode(shopify.fixture_bytes("customers_delete"), DeletedPayload)
    assert customer.id == 706405506930370084


def test_customers_redact_fixture() -> None:
    payload = decode(shopify.fixture_bytes("customers_redact"), CustomersRedactPayload)
    assert payload.shop_id == 954889
    assert payload.customer.id == 191167
    assert payload.customer.email == "john@example.com"
    assert payload.customer.phone == "555-625-1199"
    assert payload.orders_to_redact == [299938, 280263, 220458]


def test_customers_data_request_fixture() -> None:
    payload = decode(shopify.fixture_bytes("customers_data_request"), CustomersDataRequestPayload)
    assert payload.shop_id == 954889
    assert payload.customer.id == 191167
    assert payload.customer.email == "john@example.com"
    assert payload.orders_requested == [299938, 280263, 220458]


def test_shop_redact_fixture() -> None:
    assert decode(shopify.fixture_bytes("shop_redact"), ShopRedactPayload).shop_id == 954889


def test_app_uninstalled_fixture() -> None:
    assert decode(shopify.fixture_bytes("app_uninstalled"), ShopPayload).id == 548380009


def test_decode_accepts_text() -> None:
    assert decode('{"id": 820982911946154508}', DeletedPayload).id == 820982911946154508


# --- names and tags ---------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        ("Bob", "Biller", "Bob Biller"),
        ("  Bob ", " Biller  ", "Bob Biller"),
        ("Bob", None, "Bob"),
        (None, "Biller", "Biller"),
        ("", "Biller", "Biller"),
        ("Bob", "   ", "Bob"),
        ("   ", "  ", None),
        ("", "", None),
        (None, None, None),
    ],
)
def test_customer_name_joins_first_and_last(
    first: str | None, last: str | None, expected: str | None
) -> None:
    body = json.dumps({"id": 1, "first_name": first, "last_name": last}).encode()
    assert decode(body, CustomerPayload).name == expected


def test_customer_name_longer_than_255_is_a_payload_error() -> None:
    body = json.dumps({"id": 1, "first_name": "a" * 200, "last_name": "b" * 100}).encode()
    with pytest.raises(PayloadError, match="255"):
        decode(body, CustomerPayload)


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ("vip, wholesale", ["vip", "wholesale"]),
        (" vip ,,  , wholesale ,", ["vip", "wholesale"]),
        ("single", ["single"]),
        ("", []),
        (None, None),
    ],
)
def test_customer_tags_are_split_and_stripped(tags: str | None, expected: list[str] | None) -> None:
    body = json.dumps({"id": 1, "tags": tags}).encode()
    assert decode(body, CustomerPayload).tag_list == expected


def test_customer_without_tags_key_has_no_tag_list() -> None:
    assert decode(b'{"id": 1}', CustomerPayload).tag_list is None


# --- refused payloads -------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"financial_status": "bogus"}, "financial_status"),
        ({"total_price": "12,50"}, "total_price"),
        ({"total_price": "NaN"}, "total_price"),
        ({"total_price": "Infinity"}, "total_price"),
        ({"total_price": "1e309"}, "total_price"),
        ({"total_price": 1e20}, "total_price"),
        ({"total_price": "1000000000000000"}, "total_price"),
        ({"total_price": "-1000000000000000"}, "total_price"),
        ({"current_total_price": "NaN"}, "current_total_price"),
        ({"current_total_price": "1e15"}, "current_total_price"),
        ({"id": 820982911946154508.0}, "id"),
        ({"id": "820982911946154508"}, "id"),
        ({"id": -5}, "id"),
        ({"id": 0}, "id"),
        ({"id": 2**63}, "id"),
        ({"id": 2**64}, "id"),
        ({"currency": "DOLLARS"}, "currency"),
        ({"cancelled_at": "2021-12-31T19:00:00"}, "cancelled_at"),
        ({"test": "yes"}, "test"),
    ],
)
def test_bad_order_value_is_a_readable_payload_error(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadError) as raised:
        decode(order_body(**changes), OrderPayload)
    message = str(raised.value)
    assert field in message
    assert "\n" not in message.strip()


def test_largest_money_amount_is_accepted() -> None:
    order = decode(order_body(total_price="999999999999999.9999"), OrderPayload)
    assert order.total_price == Decimal("999999999999999.9999")


def test_money_as_json_number_is_exact() -> None:
    order = decode(b'{"id": 1, "total_price": 404.95}', OrderPayload)
    assert order.total_price == Decimal("404.95")


@pytest.mark.parametrize("amount", ["-0", "-0.00", "0"])
def test_negative_zero_becomes_zero(amount: str) -> None:
    order = decode(order_body(total_price=amount, current_total_price=amount), OrderPayload)
    for value in (order.total_price, order.current_total_price):
        assert value == 0
        assert isinstance(value, Decimal)
        assert not value.is_signed()


def test_largest_shopify_id_is_accepted() -> None:
    assert decode(json.dumps({"id": 2**63 - 1}).encode(), DeletedPayload).id == 2**63 - 1


def test_bad_nested_customer_is_a_payload_error() -> None:
    customer = shopify.fixture("orders_create")["customer"]
    with pytest.raises(PayloadError, match="customer"):
        decode(order_body(customer={**customer, "id": "115310627314723954"}), OrderPayload)


def test_bad_id_in_orders_to_redact_is_a_payload_error() -> None:
    payload = shopify.fixture("customers_redact")
    payload["orders_to_redact"] = [1, 2.5]
    with pytest.raises(PayloadError, match="orders_to_redact"):
        decode(json.dumps(payload).encode(), CustomersRedactPayload)


def test_json_of_the_wrong_shape_is_a_payload_error() -> None:
    with pytest.raises(PayloadError):
        decode(b"[1, 2, 3]", OrderPayload)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"id": 1,}',
        b"{'id': 1}",
        b'{"id": 1} trailing',
        b"not json",
    ],
)
@pytest.mark.parametrize("model", [OrderPayload, AnyObject])
def test_malformed_json_is_a_bad_delivery(body: bytes, model: type) -> None:
    with pytest.raises(BadDelivery, match="not valid JSON"):
        decode(body, model)


DEPTH = 100_000


@pytest.mark.parametrize(
    ("body", "model"),
    [
        (b'{"id": 1, "note": ' + b"[" * DEPTH + b"]" * DEPTH + b"}", OrderPayload),
        (b'{"id": 1, "line_items": ' + b"[" * DEPTH + b"]" * DEPTH + b"}", OrderPayload),
        (b'{"id": 1, "x": ' + b'{"a": ' * DEPTH + b"1" + b"}" * DEPTH + b"}", CustomerPayload),
        (b'{"x": ' + b"[" * DEPTH + b"]" * DEPTH + b"}", AnyObject),
        (b'{"shop_id": 1, "x": ' + b"[" * DEPTH + b"]" * DEPTH + b"}", ShopRedactPayload),
    ],
    ids=["order-note", "order-line-items", "customer-objects", "any-object", "shop-redact"],
)
def test_deep_nesting_is_a_bad_delivery(body: bytes, model: type) -> None:
    with pytest.raises(BadDelivery):
        decode(body, model)


# --- payload_text -----------------------------------------------------------


def test_payload_text_of_a_json_object() -> None:
    body = shopify.fixture_bytes("orders_create")
    assert payload_text(body) == body.decode()


def test_payload_text_allows_leading_whitespace() -> None:
    assert payload_text(b' \r\n\t {"id": 1}') == ' \r\n\t {"id": 1}'


def test_payload_text_keeps_non_ascii_text() -> None:
    body = '{"note": "Crème brûlée ☕"}'.encode()
    assert payload_text(body) == '{"note": "Crème brûlée ☕"}'


@pytest.mark.parametrize("body", [b'{"note": "\xff\xfe"}', b'{"note": "\xc3"}', b"\x80{}"])
def test_payload_text_refuses_invalid_utf8(body: bytes) -> None:
    with pytest.raises(BadDelivery, match="UTF-8"):
        payload_text(body)


@pytest.mark.parametrize("body", [b"[1, 2]", b' [{"id": 1}]', b'"text"', b"42", b"null", b""])
def test_payload_text_refuses_anything_but_an_object(body: bytes) -> None:
    with pytest.raises(BadDelivery, match="JSON object"):
        payload_text(body)
