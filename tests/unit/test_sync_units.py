"""Small parts of the sync: the bucket arithmetic, page sizing, records, the token cipher."""

from __future__ import annotations

import time
from decimal import Decimal

import msgspec
import pytest
from cryptography.fernet import Fernet

from app.access.cipher import Purpose, TokenCipher, TokenKeyMissing, TokenUnreadable
from app.access.credentials import Credentials
from app.config import ConfigError, load_settings
from app.shopify.client import AdminClient, Bucket, FixedToken, ThrottleStatus
from app.shopify.nodes import CustomerNode, OrderNode
from app.sync.incremental import PageSizer
from app.sync.records import RecordError, customer_record, order_record, shopify_id
from tests.support.sync import OTHER_TOKEN_KEY, TOKEN_KEY


def test_the_bucket_waits_exactly_for_the_missing_points() -> None:
    bucket = Bucket()
    bucket.observe(
        ThrottleStatus(maximum_available=1000, currently_available=200, restore_rate=100)
    )
    assert bucket.seconds_until(150) == 0
    assert bucket.seconds_until(700) == pytest.approx(5.0, abs=0.05)
    # Never more than the bucket can ever hold.
    assert bucket.seconds_until(5000) == pytest.approx(8.0, abs=0.05)
    bucket.observed_at = time.monotonic() - 3
    assert bucket.now_available() == pytest.approx(500, abs=5)


def test_pages_are_sized_to_the_cost_limit_and_the_bucket() -> None:
    client = AdminClient(
        None,  # type: ignore[arg-type]
        shop="a",
        tokens=FixedToken("t"),
        base_url="x/{shop}",
        api_version="v",
    )
    sizer = PageSizer(3.0)
    assert sizer.size(client) == 250
    sizer.learn(requested_cost=2 + 10 * 50, first=10)  # a node costs 50
    assert sizer.size(client) == 19 and sizer.cost(19) <= 1000
    client.bucket.maximum = 400
    assert sizer.cost(sizer.size(client)) <= 400


def test_records_keep_ids_and_money_exact_and_refuse_what_does_not_fit() -> None:
    order = msgspec.convert(
        {
            "id": "gid://shopify/Order/9223372036854775807",
            "legacyResourceId": "9223372036854775807",
            "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-02T00:00:00Z",
            "totalPriceSet": {"shopMoney": {"amount": "99999999999999.9999"}},
            "displayFinancialStatus": "PARTIALLY_PAID",
            "displayFulfillmentStatus": "ON_HOLD",
        },
        OrderNode,
    )
    record = order_record(order, [])
    assert record["shopify_id"] == "9223372036854775807"
    assert Decimal(record["total_price"]) == Decimal("99999999999999.9999")
    assert record["financial_status"] == "partially_paid"
    assert record["fulfillment_status"] is None
    with pytest.raises(RecordError):
        shopify_id("9223372036854775808", "order")
    # Digits of other scripts are digits to Python's int(), not to Shopify.
    for hostile in ("gid://shopify/Order/\u00b2", "\u0661\u0662\u0663", "", "0", "-1", "1.0"):
        with pytest.raises(RecordError, match="not a 64-bit Shopify id"):
            shopify_id(hostile, "order")
    assert shopify_id("gid://shopify/Order/0042", "order") == "42"
    with pytest.raises(RecordError):
        order_record(msgspec.structs.replace(order, display_financial_status="MYSTERY"), [])
    too_long = msgspec.convert(
        {
            "legacyResourceId": "1",
            "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-01T00:00:00Z",
            "defaultEmailAddress": {"emailAddress": "x" * 300},
        },
        CustomerNode,
    )
    with pytest.raises(RecordError, match="email"):
        customer_record(too_long)


def test_tokens_are_encrypted_rotated_and_never_shown() -> None:
    shop, access = "a.myshopify.com", Purpose.access
    old, both = TokenCipher((TOKEN_KEY,)), TokenCipher((OTHER_TOKEN_KEY, TOKEN_KEY))
    stored = old.encrypt("shpat_secret", shop, access)
    assert "shpat_secret" not in stored
    assert both.decrypt(stored, shop, access) == "shpat_secret"
    rotated = both.rebind(stored, shop, access)
    assert TokenCipher((OTHER_TOKEN_KEY,)).decrypt(rotated, shop, access) == "shpat_secret"
    with pytest.raises(TokenUnreadable):
        TokenCipher((OTHER_TOKEN_KEY,)).decrypt(stored, shop, access)
    with pytest.raises(TokenKeyMissing):
        TokenCipher(()).encrypt("shpat_secret", shop, access)
    shown = repr(Credentials(shop, "shpat_secret", None, None, "shprt_secret", None, 1))
    assert "shpat_secret" not in shown and "shprt_secret" not in shown


def test_a_ciphertext_moved_to_another_shop_or_column_is_refused() -> None:
    cipher = TokenCipher((TOKEN_KEY,))
    stored = cipher.encrypt("shpat_secret", "a.myshopify.com", Purpose.access)
    with pytest.raises(TokenUnreadable, match="another shop"):
        cipher.decrypt(stored, "b.myshopify.com", Purpose.access)
    with pytest.raises(TokenUnreadable, match="another shop"):
        cipher.decrypt(stored, "a.myshopify.com", Purpose.refresh)
    # Not ASCII, or not a Fernet token at all: unreadable, not a crash.
    for garbage in ("é" * 10, "not-a-token", ""):
        with pytest.raises(TokenUnreadable):
            cipher.decrypt(garbage, "a.myshopify.com", Purpose.access)


def test_a_token_stored_before_binding_is_still_read_as_an_access_token() -> None:
    legacy = Fernet(TOKEN_KEY).encrypt(b"shpat_legacy").decode()
    cipher = TokenCipher((TOKEN_KEY,))
    assert cipher.decrypt(legacy, "a.myshopify.com", Purpose.access) == "shpat_legacy"
    with pytest.raises(TokenUnreadable):
        cipher.decrypt(legacy, "a.myshopify.com", Purpose.refresh)
    rebound = cipher.rebind(legacy, "a.myshopify.com", Purpose.access)
    with pytest.raises(TokenUnreadable):
        cipher.decrypt(rebound, "b.myshopify.com", Purpose.access)


def test_sync_settings_are_checked_without_echoing_a_key() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(
            {
                "TOKEN_ENCRYPTION_KEY": "not-a-key-but-secret",
                "SHOPIFY_ADMIN_BASE_URL": "ftp://nowhere",
                "SHOPIFY_API_VERSION": "2026-13",
            }
        )
    message = str(error.value)
    assert "TOKEN_ENCRYPTION_KEY" in message and "not-a-key-but-secret" not in message
    assert "SHOPIFY_ADMIN_BASE_URL" in message and "SHOPIFY_API_VERSION" in message
    settings = load_settings({"TOKEN_ENCRYPTION_KEY": f"{TOKEN_KEY}, {OTHER_TOKEN_KEY}"})
    assert settings.token_encryption_keys == (TOKEN_KEY, OTHER_TOKEN_KEY)
    assert settings.shopify_admin_base_url == "https://{shop}"
    assert settings.shopify_api_version == "2026-10"
