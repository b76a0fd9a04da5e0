"""Signature checks and header parsing of a webhook delivery."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from app.webhooks.delivery import BadDelivery, header, parse_delivery, signature_is_valid
from tests.support import shopify

BODY = shopify.fixture_bytes("orders_create")
SECRETS = (shopify.SECRET.encode(), shopify.PREVIOUS_SECRET.encode())


# --- signature_is_valid -----------------------------------------------------


def test_signature_with_current_secret_is_valid() -> None:
    assert signature_is_valid(BODY, shopify.sign(BODY, shopify.SECRET), SECRETS)


def test_signature_with_previous_secret_is_valid() -> None:
    assert signature_is_valid(BODY, shopify.sign(BODY, shopify.PREVIOUS_SECRET), SECRETS)


def test_previous_secret_alone_is_not_accepted_once_removed() -> None:
    signature = shopify.sign(BODY, shopify.PREVIOUS_SECRET)
    assert not signature_is_valid(BODY, signature, (shopify.SECRET.encode(),))


def test_signature_with_wrong_secret_is_invalid() -> None:
    assert not signature_is_valid(BODY, shopify.sign(BODY, "some-other-secret"), SECRETS)


def test_signature_over_other_bytes_is_invalid() -> None:
    reserialised = BODY.replace(b"  ", b" ")
    assert reserialised != BODY
    assert not signature_is_valid(reserialised, shopify.sign(BODY), SECRETS)


def test_signature_with_one_flipped_byte_is_invalid() -> None:
    raw = bytearray(hmac.new(SECRETS[0], BODY, hashlib.sha256).digest())
    raw[7] ^= 0x01
    assert not signature_is_valid(BODY, base64.b64encode(bytes(raw)).decode(), SECRETS)


def test_body_with_one_flipped_byte_is_invalid() -> None:
    body = bytearray(BODY)
    body[100] ^= 0x01
    assert not signature_is_valid(bytes(body), shopify.sign(BODY), SECRETS)


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "!!!not base64 at all!!!",
        "====",
        "é" * 44,  # non-ASCII header value
        "\x00\xff" * 22,
    ],
)
def test_missing_or_garbage_signature_is_invalid(signature: str | None) -> None:
    assert not signature_is_valid(BODY, signature, SECRETS)


def test_hex_digest_is_rejected() -> None:
    hex_signature = hmac.new(SECRETS[0], BODY, hashlib.sha256).hexdigest()
    assert not signature_is_valid(BODY, hex_signature, SECRETS)


def test_no_configured_secret_accepts_nothing() -> None:
    assert not signature_is_valid(BODY, shopify.sign(BODY), ())


# --- header -----------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["x-shopify-", "shopify-"])
def test_header_reads_both_families(prefix: str) -> None:
    assert header({f"{prefix}topic": "orders/create"}, "topic") == "orders/create"


def test_header_value_is_stripped() -> None:
    assert header({"x-shopify-topic": "  orders/create \t"}, "topic") == "orders/create"


@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_blank_header_is_ignored(blank: str) -> None:
    assert header({"x-shopify-topic": blank}, "topic") is None
    assert header({"x-shopify-topic": blank, "shopify-topic": "orders/paid"}, "topic") == (
        "orders/paid"
    )


def test_header_missing_from_both_families_is_none() -> None:
    assert header({"x-shopify-shop-domain": "a.myshopify.com"}, "topic") is None


# --- parse_delivery ---------------------------------------------------------


def lowered(headers: dict[str, str]) -> dict[str, str]:
    """Headers as the ASGI server hands them over: names lowercased."""
    return {name.lower(): value for name, value in headers.items()}


def delivery_headers(prefix: str = "X-Shopify-", **options: str) -> dict[str, str]:
    return lowered(
        shopify.headers(
            "orders/create",
            BODY,
            webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            prefix=prefix,
            triggered_at="2023-03-29T18:00:27.877041743Z",
            **options,
        )
    )


@pytest.mark.parametrize("prefix", ["X-Shopify-", "Shopify-"])
def test_parse_delivery_happy_path(prefix: str) -> None:
    headers = delivery_headers(prefix)
    delivery = parse_delivery(headers, BODY)
    assert delivery.shop_id == shopify.SHOP
    assert delivery.webhook_id == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert delivery.topic == "orders/create"
    assert delivery.event_id == headers[f"{prefix.lower()}event-id"]
    assert delivery.api_version == "2026-07"
    assert delivery.triggered_at is not None
    assert delivery.body is BODY


def test_optional_headers_may_be_absent() -> None:
    headers = delivery_headers()
    for name in ("x-shopify-event-id", "x-shopify-api-version", "x-shopify-triggered-at"):
        del headers[name]
    delivery = parse_delivery(headers, BODY)
    assert delivery.event_id is None
    assert delivery.api_version is None
    assert delivery.triggered_at is None


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("topic", "X-Shopify-Topic"),
        ("shop-domain", "X-Shopify-Shop-Domain"),
        ("webhook-id", "X-Shopify-Webhook-Id"),
    ],
)
@pytest.mark.parametrize("blank", [False, True])
def test_missing_required_header_is_named(missing: str, named: str, blank: bool) -> None:
    headers = delivery_headers()
    if blank:
        headers[f"x-shopify-{missing}"] = "  "
    else:
        del headers[f"x-shopify-{missing}"]
    with pytest.raises(BadDelivery, match=f"missing header {named}"):
        parse_delivery(headers, BODY)


@pytest.mark.parametrize(
    "domain",
    [
        "example.com",
        "shop.myshopify.com.evil.com",
        "evil.com/x.myshopify.com",
        "my shop.myshopify.com",
        "shop.myshopify.com evil",
        "shop_1.myshopify.com",
        "-shop.myshopify.com",
        ".myshopify.com",
        "shop.myshopifyXcom",
        "a" * 250 + ".myshopify.com",
        "\u017fhop.myshopify.com",  # long s: not lowered to ASCII
        "\u212aelvin.myshopify.com",  # the Kelvin sign: lowered to an ASCII "k"
    ],
)
def test_malformed_shop_domain_is_rejected(domain: str) -> None:
    with pytest.raises(BadDelivery, match="X-Shopify-Shop-Domain"):
        parse_delivery(delivery_headers(shop=domain), BODY)


def test_shop_domain_is_lowercased() -> None:
    delivery = parse_delivery(delivery_headers(shop="Test-Shop.MyShopify.COM"), BODY)
    assert delivery.shop_id == "test-shop.myshopify.com"


def test_longest_accepted_shop_domain() -> None:
    domain = "a" * (255 - len(".myshopify.com")) + ".myshopify.com"
    assert parse_delivery(delivery_headers(shop=domain), BODY).shop_id == domain


@pytest.mark.parametrize(
    "webhook_id",
    [
        "x" * 256,
        "abc def",
        "abc\tdef",
        "webhook-é",
        "id\x7fdel",
        "id\x00nul",
    ],
)
def test_malformed_webhook_id_is_rejected(webhook_id: str) -> None:
    headers = delivery_headers()
    headers["x-shopify-webhook-id"] = webhook_id
    with pytest.raises(BadDelivery, match="X-Shopify-Webhook-Id"):
        parse_delivery(headers, BODY)


def test_webhook_id_of_255_characters_is_accepted() -> None:
    headers = delivery_headers()
    headers["x-shopify-webhook-id"] = "x" * 255
    assert parse_delivery(headers, BODY).webhook_id == "x" * 255


@pytest.mark.parametrize("topic", ["orders create", "orders", "orders/", "/create", "a/b c"])
def test_malformed_topic_is_rejected(topic: str) -> None:
    headers = delivery_headers()
    headers["x-shopify-topic"] = topic
    with pytest.raises(BadDelivery, match="X-Shopify-Topic"):
        parse_delivery(headers, BODY)


@pytest.mark.parametrize(
    ("name", "value"),
    [("x-shopify-event-id", "e" * 256), ("x-shopify-api-version", "2026 07")],
)
def test_malformed_optional_token_is_rejected(name: str, value: str) -> None:
    headers = delivery_headers()
    headers[name] = value
    with pytest.raises(BadDelivery, match=r"X-Shopify-(Event-Id|API-Version)"):
        parse_delivery(headers, BODY)


def test_triggered_at_with_nanoseconds_is_parsed_with_its_zone() -> None:
    delivery = parse_delivery(delivery_headers(), BODY)
    triggered_at = delivery.triggered_at
    assert triggered_at is not None
    assert triggered_at.tzinfo is not None
    assert triggered_at.utcoffset() == timedelta(0)
    exact = datetime(2023, 3, 29, 18, 0, 27, 877041, tzinfo=UTC) + timedelta(microseconds=0.743)
    assert abs(triggered_at - exact) <= timedelta(microseconds=1)


def test_triggered_at_with_offset_keeps_the_instant() -> None:
    headers = delivery_headers()
    headers["x-shopify-triggered-at"] = "2023-03-29T13:00:27-05:00"
    triggered_at = parse_delivery(headers, BODY).triggered_at
    assert triggered_at == datetime(2023, 3, 29, 18, 0, 27, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2023-03-29T18:00:27.877041743",  # no zone
        "2023-03-29",
        "2023-13-29T18:00:27Z",
        "2023-03-29T25:00:27Z",
        "1680112827",
    ],
)
def test_malformed_triggered_at_is_rejected(value: str) -> None:
    headers = delivery_headers()
    headers["x-shopify-triggered-at"] = value
    with pytest.raises(BadDelivery, match="X-Shopify-Triggered-At"):
        parse_delivery(headers, BODY)
