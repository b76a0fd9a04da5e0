"""The HTTP contract of POST /webhooks/shopify: size, signature, headers, body.

Every rejected request must leave the database exactly as it was.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from app.db.database import Database
from tests.support import queries, shopify

MAX_BODY = 1024 * 1024  # MAX_BODY_BYTES of the test settings


def signed_headers(topic: str, body: bytes, **options: str) -> dict[str, str]:
    return shopify.headers(topic, body, **options)


async def assert_nothing_stored(db: Database) -> None:
    assert await queries.counts(db) == dict.fromkeys(queries.TABLES, 0)


# --- a well-formed delivery ----------------------------------------------------


async def test_signed_delivery_is_recorded_with_every_header(
    client: httpx.AsyncClient, db: Database
) -> None:
    body = shopify.fixture_bytes("customers_create")
    headers = signed_headers("customers/create", body, webhook_id="wh-1", **{"Event-Id": "ev-1"})
    response = await shopify.post_raw(client, body, headers)

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "processed", "webhook_id": "wh-1"}
    row = await queries.ledger_row(db, "wh-1")
    assert row["shop_id"] == shopify.SHOP
    assert row["topic"] == "customers/create"
    assert row["event_id"] == "ev-1"
    assert row["api_version"] == "2026-07"
    # Nanoseconds in the header; microseconds are what PostgreSQL keeps.
    assert row["triggered_at"] == datetime(2026, 11, 23, 10, 0, 0, 123457, tzinfo=UTC)
    assert row["status"] == "processed"
    assert row["attempts"] == 1
    assert row["last_error"] is None
    assert row["processed_at"] is not None
    assert json.loads(row["payload_text"]) == json.loads(body)
    shop = await queries.shop(db)
    assert shop is not None and shop["first_seen_at"] is not None


async def test_previous_secret_is_accepted(client: httpx.AsyncClient, db: Database) -> None:
    response = await shopify.post(
        client,
        "customers/create",
        shopify.fixture("customers_create"),
        secret=shopify.PREVIOUS_SECRET,
        webhook_id="rotated",
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "processed", "webhook_id": "rotated"}
    assert await queries.customer(db, 706405506930370084) is not None


# --- signature --------------------------------------------------------------------


def _hex_signature(body: bytes) -> str:
    return hmac.new(shopify.SECRET.encode(), body, hashlib.sha256).hexdigest()


def _flip_one_byte(body: bytes) -> bytes:
    # A byte inside a string value, so the body is still valid JSON.
    index = body.index(b"Bob")
    return body[:index] + b"C" + body[index + 1 :]


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(lambda body: None, id="missing"),
        pytest.param(lambda body: "", id="empty"),
        pytest.param(lambda body: "   ", id="blank"),
        pytest.param(lambda body: shopify.sign(body, "wrong-secret"), id="wrong-secret"),
        pytest.param(_hex_signature, id="hex-not-base64"),
        pytest.param(lambda body: shopify.sign(body + b" "), id="other-body"),
        pytest.param(lambda body: shopify.sign(body)[:-4], id="truncated"),
        pytest.param(lambda body: "not base64 at all ✓", id="garbage"),
        pytest.param(lambda body: shopify.sign(_flip_one_byte(body)), id="one-byte-flipped"),
    ],
)
async def test_bad_signature_is_401_and_stores_nothing(
    client: httpx.AsyncClient, db: Database, signature: object
) -> None:
    body = shopify.fixture_bytes("customers_create")
    headers = signed_headers("customers/create", body)
    value = signature(body)  # type: ignore[operator]
    if value is None:
        del headers["X-Shopify-Hmac-Sha256"]
    else:
        headers["X-Shopify-Hmac-Sha256"] = value
    response = await client.post(
        "/webhooks/shopify",
        content=body,
        headers={key: value.encode() for key, value in headers.items()},
    )

    assert response.status_code == 401, response.text
    assert response.json() == {
        "status_code": 401,
        "detail": "invalid or missing HMAC signature",
    }
    await assert_nothing_stored(db)


async def test_body_changed_after_signing_is_401(client: httpx.AsyncClient, db: Database) -> None:
    body = shopify.fixture_bytes("customers_create")
    headers = signed_headers("customers/create", body)
    response = await shopify.post_raw(client, _flip_one_byte(body), headers)
    assert response.status_code == 401
    await assert_nothing_stored(db)


async def test_signature_is_over_the_raw_bytes_not_reserialised_json(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Whitespace and key order as sent are what is signed and what the ledger keeps."""
    body = b'{ "id" : 9007199254740993 ,\n "email":"raw@example.com", "updated_at": null }'
    response = await shopify.post_raw(client, body, signed_headers("customers/create", body))
    assert response.status_code == 200, response.text
    signed_reserialised = signed_headers("customers/create", json.dumps(json.loads(body)).encode())
    response = await shopify.post_raw(client, body, signed_reserialised)
    assert response.status_code == 401
    assert len(await queries.ledger(db)) == 1


async def test_signature_is_checked_before_headers(client: httpx.AsyncClient, db: Database) -> None:
    body = b"not even json"
    response = await shopify.post_raw(client, body, {"Content-Type": "application/json"})
    assert response.status_code == 401
    await assert_nothing_stored(db)


# --- header names -----------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    ["X-Shopify-", "Shopify-", "x-shopify-", "shopify-", "X-SHOPIFY-", "x-ShOpIfY-", "sHoPiFy-"],
)
async def test_header_names_are_case_insensitive_in_both_families(
    client: httpx.AsyncClient, db: Database, prefix: str
) -> None:
    body = shopify.fixture_bytes("customers_create")
    headers = signed_headers("customers/create", body, prefix=prefix, webhook_id="family")
    assert all(name.startswith(prefix) for name in headers if name != "Content-Type")
    response = await shopify.post_raw(client, body, headers)

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "processed", "webhook_id": "family"}
    row = await queries.ledger_row(db, "family")
    assert (row["topic"], row["api_version"], row["status"]) == (
        "customers/create",
        "2026-07",
        "processed",
    )
    assert row["triggered_at"] is not None and row["event_id"] is not None


async def test_header_families_can_be_mixed(client: httpx.AsyncClient, db: Database) -> None:
    body = shopify.fixture_bytes("customers_create")
    headers = {
        "x-shopify-hmac-sha256": shopify.sign(body),
        "Shopify-Topic": "customers/create",
        "X-Shopify-Shop-Domain": shopify.SHOP,
        "shopify-webhook-id": "mixed",
    }
    response = await shopify.post_raw(client, body, headers)
    assert response.status_code == 200, response.text
    assert (await queries.ledger_row(db, "mixed"))["topic"] == "customers/create"


async def test_shop_domain_is_case_insensitive(client: httpx.AsyncClient, db: Database) -> None:
    payload = shopify.fixture("customers_create")
    first = await shopify.post(client, "customers/create", payload, shop="Test-Shop.MyShopify.COM")
    again = await shopify.post(
        client,
        "customers/create",
        payload,
        shop=shopify.SHOP,
        webhook_id=first.json()["webhook_id"],
    )
    assert first.json()["status"] == "processed"
    assert again.json()["status"] == "duplicate"
    assert [row["shop_id"] for row in await queries.ledger(db)] == [shopify.SHOP]


# --- required headers -------------------------------------------------------------

SHOP_HEADER = "X-Shopify-Shop-Domain"
TOPIC_HEADER = "X-Shopify-Topic"
ID_HEADER = "X-Shopify-Webhook-Id"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (TOPIC_HEADER, None, "missing header X-Shopify-Topic"),
        (TOPIC_HEADER, "  ", "missing header X-Shopify-Topic"),
        (TOPIC_HEADER, "orders", "header X-Shopify-Topic must look like"),
        (TOPIC_HEADER, "orders create", "header X-Shopify-Topic must look like"),
        (TOPIC_HEADER, "orders/" + "x" * 300, "header X-Shopify-Topic must look like"),
        (SHOP_HEADER, None, "missing header X-Shopify-Shop-Domain"),
        (SHOP_HEADER, "", "missing header X-Shopify-Shop-Domain"),
        (SHOP_HEADER, "example.com", "header X-Shopify-Shop-Domain must be a *.myshopify.com"),
        (SHOP_HEADER, "shop.myshopify.com.evil.com", "header X-Shopify-Shop-Domain must be"),
        (SHOP_HEADER, "-shop.myshopify.com", "header X-Shopify-Shop-Domain must be"),
        (SHOP_HEADER, "a/b.myshopify.com", "header X-Shopify-Shop-Domain must be"),
        (ID_HEADER, None, "missing header X-Shopify-Webhook-Id"),
        (ID_HEADER, " ", "missing header X-Shopify-Webhook-Id"),
        (ID_HEADER, "has space", "header X-Shopify-Webhook-Id must be at most 255 visible"),
        (ID_HEADER, "x" * 256, "header X-Shopify-Webhook-Id must be at most 255 visible"),
        ("X-Shopify-Triggered-At", "yesterday", "header X-Shopify-Triggered-At must be"),
        ("X-Shopify-Triggered-At", "2026-01-01T10:00:00", "header X-Shopify-Triggered-At"),
        ("X-Shopify-Event-Id", "e" * 256, "header X-Shopify-Event-Id must be"),
        ("X-Shopify-API-Version", "v" * 33, "header X-Shopify-API-Version must be"),
    ],
)
async def test_missing_or_malformed_header_is_400_naming_it(
    client: httpx.AsyncClient, db: Database, name: str, value: str | None, expected: str
) -> None:
    body = shopify.fixture_bytes("customers_create")
    headers = signed_headers("customers/create", body)
    if value is None:
        del headers[name]
    else:
        headers[name] = value
    response = await shopify.post_raw(client, body, headers)

    assert response.status_code == 400, response.text
    assert response.json()["status_code"] == 400
    assert response.json()["detail"].startswith(expected), response.json()
    await assert_nothing_stored(db)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Shopify-Topic", "X-Shopify-Topic"),
        ("Shopify-Shop-Domain", "X-Shopify-Shop-Domain"),
        ("Shopify-Webhook-Id", "X-Shopify-Webhook-Id"),
    ],
)
async def test_missing_header_in_the_events_family_is_400_naming_it(
    client: httpx.AsyncClient, db: Database, name: str, expected: str
) -> None:
    body = shopify.fixture_bytes("customers_create")
    headers = signed_headers("customers/create", body, prefix="Shopify-")
    del headers[name]
    response = await shopify.post_raw(client, body, headers)
    assert response.status_code == 400
    assert response.json()["detail"] == f"missing header {expected}"
    await assert_nothing_stored(db)


# --- body size ----------------------------------------------------------------------


def padded_object(size: int) -> bytes:
    prefix, suffix = b'{"id": 1, "pad": "', b'"}'
    return prefix + b"x" * (size - len(prefix) - len(suffix)) + suffix


async def test_body_over_the_limit_is_413_and_stores_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    body = padded_object(MAX_BODY + 1)
    response = await shopify.post_raw(client, body, signed_headers("products/update", body))
    assert response.status_code == 413, response.text
    assert response.json()["status_code"] == 413
    await assert_nothing_stored(db)


async def asgi_post_chunked(
    client: AsyncTestClient[Any], headers: dict[str, str], body: bytes
) -> int:
    """POST straight to the ASGI app in 64 KiB chunks without Content-Length; the status.

    The test client cannot stream a body, so this drives the app by hand. It runs
    on the test's event loop, not the client's: only for requests that are
    refused before the database is used.
    """
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/webhooks/shopify",
        "raw_path": b"/webhooks/shopify",
        "query_string": b"",
        "root_path": "",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": body[start : start + 65536], "more_body": True}
        for start in range(0, len(body), 65536)
    ]
    messages.append({"type": "http.request", "body": b"", "more_body": False})
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await client.app(scope, receive, send)
    status: int = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status


async def test_body_over_the_limit_without_content_length_is_413(
    client: AsyncTestClient[Any], db: Database
) -> None:
    body = padded_object(MAX_BODY + 10)
    headers = signed_headers("products/update", body)
    assert await asgi_post_chunked(client, headers, body) == 413
    await assert_nothing_stored(db)


async def test_size_is_checked_before_the_signature(
    client: httpx.AsyncClient, db: Database
) -> None:
    body = padded_object(MAX_BODY + 1)
    response = await shopify.post_raw(client, body, {"Content-Type": "application/json"})
    assert response.status_code == 413
    await assert_nothing_stored(db)


async def test_body_of_exactly_the_limit_is_accepted(
    client: httpx.AsyncClient, db: Database
) -> None:
    body = padded_object(MAX_BODY)
    assert len(body) == MAX_BODY
    response = await shopify.post_raw(client, body, signed_headers("products/update", body))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ignored"
    (row,) = await queries.ledger(db)
    assert len(json.loads(row["payload_text"])["pad"]) == MAX_BODY - 20


# --- body content -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b"", "body must be a JSON object", id="empty"),
        pytest.param(b'{"id": 1,', "body is not valid JSON", id="truncated"),
        pytest.param(b"{'id': 1}", "body is not valid JSON", id="single-quotes"),
        pytest.param(b'{"id": 1} {"id": 2}', "body is not valid JSON", id="trailing-data"),
        # msgspec stops at a value of the wrong type before reading on: still 400.
        pytest.param(
            b'{"id": "x", "email": ', "body is not valid JSON", id="truncated-after-bad-id"
        ),
        pytest.param(b'{"id": [1, 2}', "body is not valid JSON", id="unbalanced-after-bad-id"),
        pytest.param(b'[{"id": 1}]', "body must be a JSON object", id="array"),
        pytest.param(b'"text"', "body must be a JSON object", id="string"),
        pytest.param(b"42", "body must be a JSON object", id="number"),
        pytest.param(b"null", "body must be a JSON object", id="null"),
        pytest.param(b'{"id": 1, "email": "\xff\xfe"}', "body is not valid UTF-8", id="not-utf8"),
        pytest.param(b'\xef\xbb\xbf{"id": 1}', "body must be a JSON object", id="utf8-bom"),
    ],
)
async def test_body_that_is_not_a_json_object_is_400_and_stores_nothing(
    client: httpx.AsyncClient, db: Database, body: bytes, expected: str
) -> None:
    # Every kind of topic: with a handler for customers, orders, privacy, or none.
    for topic in ("orders/create", "customers/update", "customers/redact", "products/update"):
        response = await shopify.post_raw(client, body, signed_headers(topic, body))
        assert response.status_code == 400, (topic, response.text)
        assert response.json()["status_code"] == 400
        assert response.json()["detail"].startswith(expected), (topic, response.json())
    await assert_nothing_stored(db)


async def test_an_error_answer_is_json(client: httpx.AsyncClient) -> None:
    body = b"[]"
    response = await shopify.post_raw(client, body, signed_headers("orders/create", body))
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status_code": 400, "detail": "body must be a JSON object"}


async def test_only_post_is_routed(client: httpx.AsyncClient, db: Database) -> None:
    response = await client.get("/webhooks/shopify")
    assert response.status_code == 405
    await assert_nothing_stored(db)


async def test_unknown_topic_is_recorded_as_ignored(
    client: httpx.AsyncClient, db: Database
) -> None:
    body = b'{"id": 788032119674292922, "title": "Example T-Shirt"}'
    response = await shopify.post_raw(
        client, body, signed_headers("products/update", body, webhook_id="p-1")
    )
    assert response.status_code == 200
    assert response.json() == {"status": "ignored", "webhook_id": "p-1"}
    row = await queries.ledger_row(db, "p-1")
    assert (row["status"], row["topic"], row["last_error"]) == ("ignored", "products/update", None)
    assert row["processed_at"] is not None
    assert await queries.fetchval(db, "SELECT payload->>'id' FROM webhook_events") == (
        "788032119674292922"
    )
    counts = await queries.counts(db)
    assert counts["customers"] == counts["orders"] == 0
    assert counts["shops"] == 1
