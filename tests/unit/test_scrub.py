"""scrub() and scrub_text(): personal data out, everything else (numbers exactly) kept."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from app.webhooks.payloads import CustomersRedactPayload, decode
from app.webhooks.privacy.scrub import PERSONAL_FIELDS, scrub, scrub_text
from tests.support import shopify

ADDRESS = {
    "first_name": "Steve",
    "last_name": "Shipper",
    "name": "Steve Shipper",
    "address1": "123 Shipping Street",
    "address2": "Suite 4",
    "zip": "40003",
    "company": "Shipping Company",
    "phone": "555-555-SHIP",
    "latitude": 45.41634,
    "longitude": -75.6868,
    "city": "Shippington",
    "country_code": "US",
}
ADDRESS_PERSONAL = {
    "first_name",
    "last_name",
    "name",
    "address1",
    "address2",
    "city",
    "zip",
    "company",
    "phone",
    "latitude",
    "longitude",
}


def walk(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every (path, leaf) of a JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, (*path, index))
    else:
        yield path, value


def walk_paths(value: Any) -> set[tuple[Any, ...]]:
    return {path for path, _ in walk(value)}


def exact(text: str) -> Any:
    """JSON parsed with every number exact."""
    return json.loads(text, parse_float=Decimal)


def assert_address_scrubbed(address: dict[str, Any]) -> None:
    for key in ADDRESS_PERSONAL:
        assert address[key] is None, key
    assert address["country_code"] == "US"  # a country alone names nobody


# --- scrub ------------------------------------------------------------------


def test_personal_fields_are_cleared_wherever_they_are() -> None:
    document = {
        "id": 1,
        "email": "jon@example.com",
        "contact_email": "jon@example.com",
        "phone": "+1 555 0100",
        "browser_ip": "203.0.113.7",
        "customer": {
            "id": 2,
            "email": "john@example.com",
            "first_name": "John",
            "last_name": "Smith",
            "phone": "123-123-1234",
            "state": "enabled",
            "default_address": dict(ADDRESS),
            "addresses": [dict(ADDRESS), dict(ADDRESS)],
        },
        "billing_address": dict(ADDRESS),
        "shipping_address": dict(ADDRESS),
        "deep": {"deeper": [{"customer_email": "a@b.c", "kept": "yes"}]},
    }
    scrubbed = scrub(document)
    for key in ("email", "contact_email", "phone", "browser_ip"):
        assert scrubbed[key] is None, key
    customer = scrubbed["customer"]
    for key in ("email", "first_name", "last_name", "phone"):
        assert customer[key] is None, key
    assert customer["id"] == 2
    assert customer["state"] == "enabled"
    assert_address_scrubbed(customer["default_address"])
    assert len(customer["addresses"]) == 2
    for address in customer["addresses"]:
        assert_address_scrubbed(address)
    assert_address_scrubbed(scrubbed["billing_address"])
    assert_address_scrubbed(scrubbed["shipping_address"])
    assert scrubbed["deep"] == {"deeper": [{"customer_email": None, "kept": "yes"}]}


def test_name_is_kept_outside_personal_objects() -> None:
    document = {
        "name": "#1001",
        "line_items": [{"name": "Aviator sunglasses", "title": "Aviator sunglasses"}],
        "shipping_lines": [{"title": "Generic Shipping", "name": "Standard"}],
        "discount_codes": [{"code": "SAVE5", "name": "Spring"}],
        "customer": {"name": "John Smith", "default_address": {"name": "John Smith"}},
        "shipping_address": {"name": "Steve Shipper"},
    }
    scrubbed = scrub(document)
    assert scrubbed["name"] == "#1001"
    assert scrubbed["line_items"][0]["name"] == "Aviator sunglasses"
    assert scrubbed["shipping_lines"][0]["name"] == "Standard"
    assert scrubbed["discount_codes"][0] == {"code": "SAVE5", "name": "Spring"}
    assert scrubbed["customer"]["name"] is None
    assert scrubbed["customer"]["default_address"]["name"] is None
    assert scrubbed["shipping_address"]["name"] is None


def test_order_fixture_is_scrubbed() -> None:
    order = shopify.fixture("orders_create")
    scrubbed = scrub(order, ["john@example.com", "John Smith"])
    assert scrubbed["email"] is None
    assert scrubbed["contact_email"] is None
    assert scrubbed["customer"]["email"] is None
    assert scrubbed["customer"]["first_name"] is None
    assert scrubbed["customer"]["default_address"]["name"] is None
    assert scrubbed["customer"]["default_address"]["address1"] is None
    assert scrubbed["billing_address"]["name"] is None
    assert scrubbed["shipping_address"]["phone"] is None
    # Not personal: kept as they were.
    assert scrubbed["name"] == "#9999"
    assert [item["name"] for item in scrubbed["line_items"]] == [
        item["name"] for item in order["line_items"]
    ]
    for key in ("id", "total_price", "current_total_price", "financial_status"):
        assert scrubbed[key] == order[key]
    # What the buyer wrote, and the order's tags.
    for key in ("note", "note_attributes", "tags", "client_details", "order_status_url"):
        assert scrubbed[key] is None, key
    assert all(item["properties"] is None for item in scrubbed["line_items"])
    assert scrubbed["customer"]["id"] == 115310627314723954
    # No personal value survives anywhere.
    leaves = [value for _, value in walk(scrubbed) if isinstance(value, str)]
    for personal in ("John", "Smith", "Steve", "Shipper", "K2H7A8", "123-123-1234"):
        assert personal not in leaves, personal
    for personal in ("john@example.com", "jon@example.com", "John Smith", "123 Elm", "Shipping St"):
        assert not any(personal.lower() in leaf.lower() for leaf in leaves), personal


def test_customer_fixture_addresses_list_is_scrubbed() -> None:
    customer = shopify.fixture("customers_create")
    customer["addresses"] = [dict(customer["default_address"])]
    scrubbed = scrub(customer)
    for address in (scrubbed["default_address"], scrubbed["addresses"][0]):
        assert address["name"] is None
        assert address["first_name"] is None
        assert address["zip"] is None
        assert address["phone"] is None
        assert address["city"] is None
        assert address["country"] == "CA"
        assert address["id"] == 12321
    assert scrubbed["note"] is None


def test_strings_containing_a_known_value_are_cleared() -> None:
    document = {
        "message": "Please call JOHN@Example.com before delivery",
        "other_note": "Ask for john smith at the door",
        "attributes": [{"name": "contact", "value": "phone 555-625-1199"}],
        "title": "vip, wholesale",
        "total_price": "404.95",
    }
    scrubbed = scrub(document, ["john@example.com", "John Smith", "555-625-1199"])
    assert scrubbed["message"] is None
    assert scrubbed["other_note"] is None
    assert scrubbed["attributes"] == [{"name": "contact", "value": None}]
    assert scrubbed["title"] == "vip, wholesale"
    assert scrubbed["total_price"] == "404.95"


def test_empty_known_values_clear_nothing() -> None:
    document = {"message": "hello", "title": "a, b"}
    assert scrub(document, ["", ""]) == document


def test_scrub_returns_a_copy() -> None:
    order = shopify.fixture("orders_create")
    original = copy.deepcopy(order)
    scrub(order, ["john@example.com"])
    assert order == original


def test_scrub_leaves_other_values_alone() -> None:
    document = {"id": 2**60, "flag": True, "none": None, "ratio": 1.5, "items": [1, "a"]}
    assert scrub(document, ["zzz"]) == document


def test_every_personal_field_name_is_cleared() -> None:
    document = {field: "value" for field in PERSONAL_FIELDS}
    assert scrub(document) == dict.fromkeys(PERSONAL_FIELDS)


# --- scrub_text -------------------------------------------------------------


def test_scrub_text_of_order_fixture_keeps_every_number_exactly() -> None:
    text = shopify.fixture_bytes("orders_create").decode()
    result = scrub_text(text, ["john@example.com"])
    original, scrubbed = exact(text), exact(result)
    assert scrubbed["id"] == 820982911946154508
    assert scrubbed["customer"]["id"] == 115310627314723954
    assert scrubbed["customer"]["default_address"]["id"] == 715243470612851245
    assert '"id":820982911946154508' in result
    original_leaves = dict(walk(original))
    numbers = 0
    for path, value in walk(scrubbed):
        if isinstance(value, int | Decimal) and not isinstance(value, bool):
            numbers += 1
            assert value == original_leaves[path], path
            assert type(value) is type(original_leaves[path]), path
    assert numbers > 20
    # Same shape: every path survives, only values became null (whole values
    # for what the buyer wrote: note attributes and line-item properties).
    written = ("note_attributes", "properties", "client_details", "tags")
    assert {path for path in walk_paths(scrubbed) if not set(written) & set(path)} == {
        path for path in original_leaves if not set(written) & set(path)
    }
    assert scrubbed["email"] is None
    assert scrubbed["name"] == "#9999"


def test_scrub_text_keeps_decimal_digits() -> None:
    text = (
        '{"id": 820982911946154508, "weight": 1.50, "rate": 0.000, "tiny": 1e-7,'
        ' "huge": 123456789012345678901234567890, "email": "a@b.c"}'
    )
    result = scrub_text(text)
    assert '"weight":1.50' in result
    assert '"rate":0.000' in result
    assert '"huge":123456789012345678901234567890' in result
    scrubbed = exact(result)
    assert scrubbed["id"] == 820982911946154508
    assert scrubbed["tiny"] == Decimal("1e-7")
    assert scrubbed["email"] is None


def test_scrub_text_of_customers_redact_clears_known_values() -> None:
    text = shopify.fixture_bytes("customers_redact").decode()
    result = json.loads(scrub_text(text, ["john@example.com", "555-625-1199"]))
    assert result["customer"] == {"id": 191167, "email": None, "phone": None}
    assert result["orders_to_redact"] == [299938, 280263, 220458]
    assert result["shop_domain"] == "{shop}.myshopify.com"


@pytest.mark.parametrize("depth", [100, 600])
def test_scrub_text_handles_any_payload_decode_accepts(depth: int) -> None:
    # A redact payload (or a stored payload being redacted) that decode()
    # accepts must be scrubbable too: otherwise the redaction can never finish.
    head = '{"shop_id": 1, "shop_domain": "a.myshopify.com", "orders_to_redact": [], '
    text = head + '"customer": {"id": 1}, "x": ' + "[" * depth + "]" * depth + "}"
    decode(text, CustomersRedactPayload)  # accepted as a payload
    result = scrub_text(text, ["someone@example.com"])
    assert result == (
        '{"shop_id":1,"shop_domain":"a.myshopify.com","orders_to_redact":[],'
        '"customer":{"id":1},"x":' + "[" * depth + "]" * depth + "}"
    )
