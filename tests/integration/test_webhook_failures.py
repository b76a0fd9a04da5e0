"""Payloads that cannot be applied, and a database that does not answer in time.

A payload that cannot be applied is recorded as `failed` with the reason and
answered 200 (retrying would fail the same way); nothing it would have written
is kept. A database that cannot serve the delivery gets 503 and Retry-After, so
Shopify retries, and nothing is half-written.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest

from app.db.database import Database
from tests.support import queries, shopify


def bad_order(**changes: Any) -> dict[str, Any]:
    payload = shopify.order(900, customer_id=901)
    payload.update(changes)
    return payload


def changed(payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**payload, **changes}


def without(payload: dict[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in payload.items() if name != key}


FAILING = [
    pytest.param(
        "orders/create", bad_order(financial_status="bogus"), "financial_status", id="bogus-status"
    ),
    pytest.param("orders/paid", bad_order(total_price="12,50"), "total_price", id="comma-money"),
    pytest.param("orders/create", bad_order(total_price="abc"), "total_price", id="text-money"),
    pytest.param("orders/create", bad_order(total_price="NaN"), "total_price", id="nan-money"),
    pytest.param("orders/create", bad_order(total_price="1e15"), "total_price", id="huge-money"),
    pytest.param(
        "orders/create", bad_order(current_total_price="-Infinity"), "current_total_price", id="inf"
    ),
    pytest.param("orders/create", without(bad_order(), "id"), "id", id="missing-id"),
    pytest.param("orders/updated", bad_order(id="900"), "id", id="string-id"),
    pytest.param("orders/create", bad_order(id=0), "id", id="zero-id"),
    pytest.param("orders/create", bad_order(id=2**63), "id", id="id-over-int64"),
    pytest.param("orders/create", bad_order(id=9.0e17), "id", id="float-id"),
    pytest.param("orders/create", bad_order(currency="USDX"), "currency", id="long-currency"),
    pytest.param("orders/create", bad_order(test="yes"), "test", id="test-not-bool"),
    pytest.param(
        "orders/create", bad_order(created_at="2026-01-01T00:00:00"), "created_at", id="naive-time"
    ),
    pytest.param("orders/create", bad_order(updated_at="yesterday"), "updated_at", id="bad-time"),
    pytest.param("orders/create", bad_order(customer="bob"), "customer", id="customer-not-object"),
    pytest.param(
        "orders/create", bad_order(customer={"email": "x@example.com"}), "id", id="customer-no-id"
    ),
    pytest.param("orders/create", {}, "id", id="empty-object"),
    pytest.param("orders/delete", {"id": "900"}, "id", id="delete-string-id"),
    pytest.param("customers/create", without(shopify.customer(901), "id"), "id", id="cust-no-id"),
    pytest.param(
        "customers/update", changed(shopify.customer(901), id="901"), "id", id="cust-string-id"
    ),
    pytest.param(
        "customers/create",
        changed(shopify.customer(901), email="x" * 256),
        "email",
        id="cust-long-email",
    ),
    pytest.param(
        "customers/create", changed(shopify.customer(901), phone="1" * 51), "phone", id="long-phone"
    ),
    pytest.param(
        "customers/create", changed(shopify.customer(901), tags=["a"]), "tags", id="tags-list"
    ),
    pytest.param("customers/delete", {"tax_exemptions": []}, "id", id="cust-delete-no-id"),
    pytest.param(
        "customers/redact",
        {"shop_id": 1, "shop_domain": shopify.SHOP, "orders_to_redact": []},
        "customer",
        id="redact-no-customer",
    ),
]


@pytest.mark.parametrize(("topic", "payload", "field"), FAILING)
async def test_payload_that_cannot_be_applied_is_recorded_as_failed(
    client: httpx.AsyncClient, db: Database, topic: str, payload: dict[str, Any], field: str
) -> None:
    body = json.dumps(payload).encode()
    response = await shopify.post(client, topic, body, webhook_id="bad")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "failed", "webhook_id": "bad"}

    row = await queries.ledger_row(db, "bad")
    assert (row["status"], row["topic"], row["attempts"]) == ("failed", topic, 1)
    assert row["last_error"] and field in row["last_error"], row["last_error"]
    assert row["processed_at"] is not None
    # Kept as received, so it can be inspected and replayed after a fix.
    assert json.loads(row["payload_text"]) == json.loads(body)
    counts = await queries.counts(db)
    assert (counts["customers"], counts["orders"], counts["webhook_events"]) == (0, 0, 1)


async def test_a_later_good_delivery_of_the_same_order_applies(
    client: httpx.AsyncClient, db: Database
) -> None:
    failed = await shopify.post(client, "orders/create", bad_order(financial_status="bogus"))
    assert failed.json()["status"] == "failed"
    good = await shopify.post(client, "orders/updated", bad_order(financial_status="paid"))
    assert good.json()["status"] == "processed"
    order = await queries.order(db, 900)
    assert order is not None and order["financial_status"] == "paid"
    statuses = sorted(row["status"] for row in await queries.ledger(db))
    assert statuses == ["failed", "processed"]


async def test_value_the_database_refuses_rolls_everything_back(
    client: httpx.AsyncClient, db: Database
) -> None:
    """A NUL character: valid JSON, refused by PostgreSQL in text and in jsonb alike."""
    payload = bad_order(name="#1\u0000")
    response = await shopify.post(client, "orders/create", payload, webhook_id="nul")
    assert response.json() == {"status": "failed", "webhook_id": "nul"}

    row = await queries.ledger_row(db, "nul")
    assert row["status"] == "failed"
    assert "database refused the payload" in row["last_error"]
    assert "payload not stored" in row["last_error"]
    assert row["payload"] is None
    counts = await queries.counts(db)
    # The nested customer was written by the same statement: rolled back with it.
    assert (counts["customers"], counts["orders"], counts["webhook_events"]) == (0, 0, 1)


async def test_totals_overflow_fails_the_delivery_without_partial_writes(
    client: httpx.AsyncClient, db: Database
) -> None:
    largest = "999999999999999.9999"  # the largest amount numeric(19, 4) holds
    first = await shopify.post(
        client, "orders/create", shopify.order(910, customer_id=911, total_price=largest)
    )
    assert first.json()["status"] == "processed"
    before = await queries.customer(db, 911)
    assert before is not None and before["total_spent"] == Decimal(largest)

    # The order itself fits; the customer's total would not. All or nothing.
    second = await shopify.post(
        client,
        "orders/create",
        shopify.order(912, customer_id=911, total_price=largest),
        webhook_id="overflow",
    )
    assert second.json() == {"status": "failed", "webhook_id": "overflow"}
    assert await queries.order(db, 912) is None
    assert await queries.customer(db, 911) == before
    row = await queries.ledger_row(db, "overflow")
    assert row["status"] == "failed" and "database refused" in row["last_error"]
    assert json.loads(row["payload_text"])["id"] == 912


async def test_lock_wait_past_the_timeout_is_503_and_nothing_is_written(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Another transaction holds the order: the delivery gives up in time, answers 503."""
    payload = shopify.order(920, customer_id=921)
    async with db.connection() as holder:
        await holder.execute("BEGIN")
        await holder.execute("SELECT ingest_lock_rows($1, 'order', ARRAY['920'])", shopify.SHOP)
        started = time.monotonic()
        response = await shopify.post(client, "orders/create", payload, webhook_id="held")
        elapsed = time.monotonic() - started
        await holder.execute("ROLLBACK")

    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert response.json() == {
        "status_code": 503,
        "detail": "the database is unavailable; nothing was recorded, retry later",
    }
    assert elapsed < 5.0  # inside Shopify's 5-second budget
    assert await queries.nothing_stored(db)

    # Shopify's retry of the same delivery then goes through.
    retry = await shopify.post(client, "orders/create", payload, webhook_id="held")
    assert retry.json() == {"status": "processed", "webhook_id": "held"}
