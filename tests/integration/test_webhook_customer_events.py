"""The customer topics of API 2025-01 on: tags, marketing consent, purchasing summary, merge.

Real PostgreSQL, real HTTP through the ASGI app, signed deliveries. Ids are
exact 64-bit ids (Shopify's samples under /work/shared/fixtures were rounded).
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from app.db.database import Database
from tests.support import queries, shopify
from tests.support.ops import ADMIN

CUSTOMER = 9007199254740993  # above 2^53: a JavaScript number would round it
KEPT = 9223372036854775001
MERGED = 9223372036854775002


def gid(customer_id: int) -> str:
    return f"gid://shopify/Customer/{customer_id}"


def tags_event(tags: list[str], occurred_at: str, customer_id: int = CUSTOMER) -> dict[str, Any]:
    return {"customerId": gid(customer_id), "tags": tags, "occurredAt": occurred_at}


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def stored_tags(db: Database, customer_id: int = CUSTOMER) -> list[str] | None:
    row = await queries.customer(db, customer_id)
    assert row is not None
    return row["tags"]


# -- tags ---------------------------------------------------------------------------------------

TAG_DELIVERIES = [
    ("customer.tags_added", tags_event(["vip", "wholesale"], "2026-03-01T10:00:00Z"), "a1"),
    ("customer.tags_removed", tags_event(["wholesale"], "2026-03-02T10:00:00Z"), "r1"),
    ("customer.tags_added", tags_event(["newsletter"], "2026-03-03T10:00:00Z"), "a2"),
    ("customer.tags_removed", tags_event(["vip"], "2026-03-04T10:00:00Z"), "r2"),
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
async def test_tags_in_every_order_and_twice(
    client: httpx.AsyncClient, db: Database, order: tuple[int, ...]
) -> None:
    for index in order:
        topic, payload, webhook_id = TAG_DELIVERIES[index]
        assert await shopify.deliver(client, topic, payload, webhook_id) in {"processed", "stale"}
    for index in order:  # every delivery again: the same webhook ids
        topic, payload, webhook_id = TAG_DELIVERIES[index]
        assert await shopify.deliver(client, topic, payload, webhook_id) == "duplicate"
    # The latest event per tag: vip removed (03-04) after added (03-01), wholesale
    # removed (03-02) after added (03-01), newsletter added.
    assert await stored_tags(db) == ["newsletter"]
    counts = await queries.counts(db)
    assert (counts["customers"], counts["webhook_events"]) == (1, 4)


async def test_same_event_under_another_webhook_id_changes_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    payload = tags_event(["vip"], "2026-03-01T10:00:00Z")
    assert await shopify.deliver(client, "customer.tags_added", payload, "x1") == "processed"
    assert await shopify.deliver(client, "customer.tags_added", payload, "x2") == "stale"
    assert await stored_tags(db) == ["vip"]


async def test_add_and_remove_of_one_tag_out_of_order(
    client: httpx.AsyncClient, db: Database
) -> None:
    # The remove happened last but arrives first: the older add must not bring the tag back.
    removed = tags_event(["vip"], "2026-03-02T10:00:00Z")
    added = tags_event(["vip", "gold"], "2026-03-01T10:00:00Z")
    assert await shopify.deliver(client, "customer.tags_removed", removed) == "processed"
    assert await shopify.deliver(client, "customer.tags_added", added) == "processed"
    assert await stored_tags(db) == ["gold"]
    # And the other way round for another tag: the later add wins over an older remove.
    assert (
        await shopify.deliver(
            client, "customer.tags_added", tags_event(["blue"], "2026-03-05T10:00:00Z")
        )
        == "processed"
    )
    assert (
        await shopify.deliver(
            client, "customer.tags_removed", tags_event(["blue"], "2026-03-04T10:00:00Z")
        )
        == "stale"
    )
    assert await stored_tags(db) == ["blue", "gold"]


async def test_tags_on_a_customer_not_known_yet(client: httpx.AsyncClient, db: Database) -> None:
    payload = tags_event(["vip"], "2026-03-01T10:00:00Z")
    assert await shopify.deliver(client, "customer.tags_added", payload) == "processed"
    row = await queries.customer(db, CUSTOMER)
    assert row is not None
    assert (row["tags"], row["order_count"], row["total_spent"]) == (["vip"], 0, Decimal(0))
    # The customer's own delivery (API 2025-01 on: no tags key) keeps the tags.
    await shopify.deliver(client, "customers/create", shopify.customer(CUSTOMER))
    row = await queries.customer(db, CUSTOMER)
    assert row is not None and (row["email"], row["tags"]) == ("bob@biller.com", ["vip"])


async def test_full_payload_with_tags_still_sets_them(
    client: httpx.AsyncClient, db: Database
) -> None:
    await shopify.deliver(
        client, "customer.tags_added", tags_event(["vip"], "2026-03-01T10:00:00Z")
    )
    update = shopify.customer(CUSTOMER, tags="alpha, beta", updated_at="2026-03-02T00:00:00Z")
    assert await shopify.deliver(client, "customers/update", update) == "processed"
    assert await stored_tags(db) == ["alpha", "beta"]
    # A later delta applies on top of them.
    removed = tags_event(["alpha"], "2026-03-03T10:00:00Z")
    assert await shopify.deliver(client, "customer.tags_removed", removed) == "processed"
    assert await stored_tags(db) == ["beta"]


@pytest.mark.parametrize(
    "payload",
    [
        {
            "customerId": "gid://shopify/Order/1",
            "tags": ["a"],
            "occurredAt": "2026-03-01T10:00:00Z",
        },
        {"customerId": gid(CUSTOMER), "tags": "a", "occurredAt": "2026-03-01T10:00:00Z"},
        {"customerId": gid(CUSTOMER), "tags": ["a"]},
        shopify.customer(CUSTOMER),
    ],
    ids=["order-gid", "tags-not-a-list", "no-occurred-at", "customer-body"],
)
async def test_tags_body_of_another_shape_is_failed(
    client: httpx.AsyncClient, db: Database, payload: dict[str, Any]
) -> None:
    assert await shopify.deliver(client, "customer.tags_added", payload, "bad") == "failed"
    assert (await queries.ledger_row(db, "bad"))["status"] == "failed"
    assert await queries.customer(db, CUSTOMER) is None


async def test_tags_of_a_deleted_customer_change_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    await shopify.deliver(client, "customers/delete", {"id": CUSTOMER})
    payload = tags_event(["vip"], "2026-03-01T10:00:00Z")
    assert await shopify.deliver(client, "customer.tags_added", payload) == "stale"
    assert await stored_tags(db) is None


# -- marketing consent --------------------------------------------------------------------------


def email_consent(state: str | None, updated_at: str | None, level: str | None = None) -> Any:
    return {
        "customer_id": CUSTOMER,
        "email_address": "bob@biller.com",
        "email_marketing_consent": {
            "state": state,
            "opt_in_level": level,
            "consent_updated_at": updated_at,
        },
    }


def sms_consent(state: str | None, updated_at: str | None, level: str | None = None) -> Any:
    return {
        "id": CUSTOMER,
        "phone": "+16135550100",
        "sms_marketing_consent": {
            "state": state,
            "opt_in_level": level,
            "consent_updated_at": updated_at,
            "consent_collected_from": "other",
        },
    }


CONSENT_COLUMNS = (
    "email_marketing_state",
    "email_marketing_opt_in_level",
    "email_marketing_consent_updated_at",
    "sms_marketing_state",
    "sms_marketing_opt_in_level",
    "sms_marketing_consent_updated_at",
)


async def consent(db: Database) -> tuple[Any, ...]:
    row = await queries.customer(db, CUSTOMER)
    assert row is not None
    return tuple(row[column] for column in CONSENT_COLUMNS)


async def test_consent_updates_in_and_out_of_order(client: httpx.AsyncClient, db: Database) -> None:
    newer = email_consent("subscribed", "2026-04-02T10:00:00Z", "confirmed_opt_in")
    older = email_consent("unsubscribed", "2026-04-01T10:00:00Z", "single_opt_in")
    email = "customers_email_marketing_consent/update"
    sms = "customers_marketing_consent/update"
    assert await shopify.deliver(client, email, newer) == "processed"
    assert await shopify.deliver(client, email, older) == "stale"
    assert await shopify.deliver(client, sms, sms_consent("PENDING", "2026-04-01T00:00:00Z")) == (
        "processed"
    )
    assert await consent(db) == (
        "subscribed",
        "confirmed_opt_in",
        ts("2026-04-02T10:00:00+00:00"),
        "pending",
        None,
        ts("2026-04-01T00:00:00+00:00"),
    )
    # In order: the later one is applied; a consent without a time cannot replace a timed one.
    later = sms_consent("unsubscribed", "2026-04-03T00:00:00Z", "UNKNOWN")
    assert await shopify.deliver(client, sms, later) == "processed"
    assert await shopify.deliver(client, sms, sms_consent("subscribed", None)) == "stale"
    assert (await consent(db))[3:] == ("unsubscribed", "unknown", ts("2026-04-03T00:00:00+00:00"))
    row = await queries.customer(db, CUSTOMER)
    assert row is not None and row["email"] is None  # the consent is not the customer's data


async def test_consent_value_outside_the_set_is_failed(
    client: httpx.AsyncClient, db: Database
) -> None:
    body = email_consent("maybe", "2026-04-02T10:00:00Z")
    assert await shopify.deliver(client, "customers_email_marketing_consent/update", body) == (
        "failed"
    )
    body = sms_consent("invalid", "2026-04-02T10:00:00Z")  # email has `invalid`, SMS has not
    assert await shopify.deliver(client, "customers_marketing_consent/update", body) == "failed"
    assert await queries.customer(db, CUSTOMER) is None


async def test_redact_erases_consent_and_later_consent_is_recorded_scrubbed(
    client: httpx.AsyncClient, db: Database
) -> None:
    email = "customers_email_marketing_consent/update"
    await shopify.deliver(client, email, email_consent("subscribed", "2026-04-02T10:00:00Z"))
    await shopify.deliver(
        client, "customer.tags_added", tags_event(["vip"], "2026-03-01T10:00:00Z")
    )
    redact = {
        "shop_id": 954889,
        "shop_domain": shopify.SHOP,
        "customer": {"id": CUSTOMER, "email": "bob@biller.com", "phone": None},
        "orders_to_redact": [],
    }
    assert await shopify.deliver(client, "customers/redact", redact) == "processed"
    assert await consent(db) == (None,) * 6
    assert await stored_tags(db) is None
    assert await queries.fetchval(db, "SELECT count(*) FROM customer_tag_events") == 0
    later = email_consent("unsubscribed", "2026-05-01T10:00:00Z")
    assert await shopify.deliver(client, email, later, "late") == "stale"
    assert await consent(db) == (None,) * 6
    assert await queries.where_found(db, "bob@biller.com") == []


# -- purchasing summary -------------------------------------------------------------------------


def summary(orders: int, amount: str, occurred_at: str, customer_id: int = CUSTOMER) -> Any:
    return {
        "customerId": gid(customer_id),
        "numberOfOrders": orders,
        "amountSpent": {"amount": amount, "currencyCode": "USD"},
        "lastOrderId": "gid://shopify/Order/1",
        "occurredAt": occurred_at,
    }


async def mismatched(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get(f"/shops/{shopify.SHOP}/customers/mismatched", headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["shop"] == shopify.SHOP
    customers: list[dict[str, Any]] = body["customers"]
    return customers


async def mismatched_gauge(client: httpx.AsyncClient) -> float:
    text = (await client.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith("shopify_ingest_customers_mismatched "):
            return float(line.split()[1])
    raise AssertionError("no shopify_ingest_customers_mismatched in /metrics")


async def test_purchasing_summary_mismatch_detection(
    client: httpx.AsyncClient, db: Database
) -> None:
    topic = "customers/purchasing_summary"
    await shopify.deliver(
        client, "orders/create", shopify.order(5001, customer_id=CUSTOMER, total_price="100.00")
    )
    # Agrees (up to rounding): not listed.
    assert await shopify.deliver(client, topic, summary(1, "100.004", "2026-05-01T00:00:00Z")) == (
        "processed"
    )
    assert await mismatched(client) == []
    assert await mismatched_gauge(client) == 0
    # An older summary never replaces a newer one.
    assert await shopify.deliver(client, topic, summary(7, "1.00", "2026-04-01T00:00:00Z")) == (
        "stale"
    )
    # Shopify counts an order we have not seen.
    assert await shopify.deliver(client, topic, summary(2, "150.00", "2026-05-02T00:00:00Z")) == (
        "processed"
    )
    row = await queries.customer(db, CUSTOMER)
    assert row is not None
    assert (row["shopify_order_count"], row["shopify_amount_spent"], row["shopify_summary_at"]) == (
        2,
        Decimal("150.0000"),
        ts("2026-05-02T00:00:00+00:00"),
    )
    assert (row["order_count"], row["total_spent"]) == (1, Decimal("100.0000"))
    listed = await mismatched(client)
    assert [customer["shopify_id"] for customer in listed] == [str(CUSTOMER)]
    assert listed[0]["shopify_order_count"] == 2 and listed[0]["order_count"] == 1
    assert await mismatched_gauge(client) == 1
    # The missing order arrives: the figures agree again.
    await shopify.deliver(
        client, "orders/create", shopify.order(5002, customer_id=CUSTOMER, total_price="50.00")
    )
    assert await mismatched(client) == []
    assert await mismatched_gauge(client) == 0


async def test_purchasing_summary_for_an_unknown_customer_creates_it(
    client: httpx.AsyncClient, db: Database
) -> None:
    body = summary(3, "12.50", "2026-05-01T00:00:00Z")
    assert await shopify.deliver(client, "customers/purchasing_summary", body) == "processed"
    assert [c["shopify_id"] for c in await mismatched(client)] == [str(CUSTOMER)]
    response = await client.get(f"/shops/{shopify.SHOP}/customers/mismatched")
    assert response.status_code in {401, 403}


# -- merge --------------------------------------------------------------------------------------


def merge(status: str, kept: int = KEPT, deleted: int = MERGED) -> dict[str, Any]:
    return {
        "admin_graphql_api_customer_kept_id": gid(kept),
        "admin_graphql_api_customer_deleted_id": gid(deleted),
        "admin_graphql_api_job_id": None,
        "status": status,
        "errors": [],
    }


async def two_customers_with_orders(client: httpx.AsyncClient) -> None:
    await shopify.deliver(
        client, "orders/create", shopify.order(6001, customer_id=KEPT, total_price="10.00")
    )
    await shopify.deliver(
        client, "orders/create", shopify.order(6002, customer_id=MERGED, total_price="20.00")
    )
    await shopify.deliver(
        client,
        "orders/create",
        shopify.order(
            6003,
            customer_id=MERGED,
            total_price="30.00",
            created_at="2025-06-01T00:00:00Z",
            updated_at="2025-06-01T00:00:00Z",
        ),
    )


async def totals(db: Database, customer_id: int) -> tuple[Any, ...]:
    row = await queries.customer(db, customer_id)
    assert row is not None
    return (row["order_count"], row["total_spent"], row["first_order_at"])


async def test_merge_moves_orders_and_totals_and_is_idempotent(
    client: httpx.AsyncClient, db: Database
) -> None:
    await two_customers_with_orders(client)
    assert await shopify.deliver(client, "customers/merge", merge("completed"), "m1") == (
        "processed"
    )
    kept = await queries.customer(db, KEPT)
    merged = await queries.customer(db, MERGED)
    assert kept is not None and merged is not None
    for order_id in (6001, 6002, 6003):
        order = await queries.order(db, order_id)
        assert order is not None and order["customer_id"] == kept["id"]
    assert await totals(db, KEPT) == (3, Decimal("60.0000"), ts("2025-06-01T00:00:00+00:00"))
    assert await totals(db, MERGED) == (0, Decimal(0), None)
    assert merged["merged_into"] == str(KEPT)
    assert merged["merged_at"] is not None and merged["deleted_at"] is not None

    # Again: the same delivery, and the same merge under another webhook id.
    assert await shopify.deliver(client, "customers/merge", merge("completed"), "m1") == (
        "duplicate"
    )
    assert await shopify.deliver(client, "customers/merge", merge("completed"), "m2") == "stale"
    assert await totals(db, KEPT) == (3, Decimal("60.0000"), ts("2025-06-01T00:00:00+00:00"))
    again = await queries.customer(db, MERGED)
    assert again is not None and again["merged_at"] == merged["merged_at"]

    # Later deliveries treat the merged customer like a deleted one.
    update = shopify.customer(MERGED, email="late@example.com", updated_at="2026-11-01T00:00:00Z")
    assert await shopify.deliver(client, "customers/update", update) == "stale"
    tags = tags_event(["vip"], "2026-11-01T00:00:00Z", customer_id=MERGED)
    assert await shopify.deliver(client, "customer.tags_added", tags) == "stale"
    late = await queries.customer(db, MERGED)
    assert late is not None and (late["email"], late["tags"]) == (merged["email"], None)


async def test_merge_that_failed_changes_nothing(client: httpx.AsyncClient, db: Database) -> None:
    await two_customers_with_orders(client)
    before = {cid: await queries.customer(db, cid) for cid in (KEPT, MERGED)}
    body = merge("failed")
    body["errors"] = [
        {"customer_ids": [KEPT], "field": "merge_in_progress", "message": "being merged."}
    ]
    assert await shopify.deliver(client, "customers/merge", body, "mf") == "processed"
    assert {cid: await queries.customer(db, cid) for cid in (KEPT, MERGED)} == before
    assert await totals(db, MERGED) == (2, Decimal("50.0000"), ts("2025-06-01T00:00:00+00:00"))
    ledger = await queries.ledger_row(db, "mf")
    assert ledger["status"] == "processed" and ledger["payload"] is not None


async def test_merge_of_customers_not_known_yet(client: httpx.AsyncClient, db: Database) -> None:
    assert await shopify.deliver(client, "customers/merge", merge("completed")) == "processed"
    merged = await queries.customer(db, MERGED)
    assert merged is not None and merged["merged_into"] == str(KEPT)
    # The merged customer's create arriving late does not bring it back.
    assert await shopify.deliver(client, "customers/create", shopify.customer(MERGED)) == "stale"
    assert await queries.customer(db, KEPT) is not None


async def test_merge_into_itself_is_failed(client: httpx.AsyncClient, db: Database) -> None:
    body = merge("completed", kept=KEPT, deleted=KEPT)
    assert await shopify.deliver(client, "customers/merge", body) == "failed"
    assert await queries.customer(db, KEPT) is None


# -- bulk_operations/finish ---------------------------------------------------------------------


async def test_bulk_operation_finish_is_processed_with_its_payload(
    client: httpx.AsyncClient, db: Database
) -> None:
    body = {
        "admin_graphql_api_id": "gid://shopify/BulkOperation/147595010",
        "completed_at": "2024-01-01T07:34:56-05:00",
        "created_at": "2026-07-01T12:17:28-04:00",
        "error_code": None,
        "status": "completed",
        "type": "query",
    }
    assert await shopify.deliver(client, "bulk_operations/finish", body, "b1") == "processed"
    ledger = await queries.ledger_row(db, "b1")
    assert ledger["status"] == "processed"
    assert json.loads(ledger["payload_text"]) == body
