"""The admin API: bearer-token protection of every endpoint, and the ledger listing
(GET /events: filters, keyset pagination, payloads on request; GET /events/{id})."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.config import Settings
from app.db.database import Database
from tests.support import queries, shopify
from tests.support.ops import ADMIN, ADMIN_TOKEN

# --- authentication -----------------------------------------------------------


async def _seed_customer(client: httpx.AsyncClient, db: Database) -> tuple[str, str]:
    """One processed delivery; (its ledger id, the customer's Shopify id)."""
    response = await shopify.post(
        client, "customers/create", shopify.customer(4401), webhook_id="auth-seed"
    )
    assert response.status_code == 200, response.text
    row = await queries.ledger_row(db, "auth-seed")
    return str(row["id"]), "4401"


def admin_requests(ledger_id: str, customer_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, options) of every admin endpoint, with arguments that succeed."""
    return [
        ("GET", "/events", {}),
        ("GET", "/events", {"params": {"shop": shopify.SHOP, "limit": "5"}}),
        ("GET", f"/events/{ledger_id}", {}),
        ("POST", "/replay", {"json": {"status": "failed", "dry_run": True}}),
        ("GET", f"/shops/{shopify.SHOP}/customers/{customer_id}/export", {}),
    ]


@pytest.fixture
async def seeded(client: httpx.AsyncClient, db: Database) -> tuple[str, str]:
    return await _seed_customer(client, db)


async def test_every_admin_endpoint_answers_with_the_right_token(
    client: httpx.AsyncClient, seeded: tuple[str, str]
) -> None:
    for method, path, options in admin_requests(*seeded):
        response = await client.request(method, path, headers=ADMIN, **options)
        assert response.status_code == 200, (method, path, response.text)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token",
        f"Bearer {ADMIN_TOKEN}x",
        f"Bearer {ADMIN_TOKEN[:-1]}",
        "Bearer ",
        f"Basic {ADMIN_TOKEN}",
        ADMIN_TOKEN,
    ],
    ids=["missing", "wrong", "longer", "prefix", "empty", "basic-scheme", "no-scheme"],
)
async def test_every_admin_endpoint_refuses_a_missing_or_wrong_token(
    client: httpx.AsyncClient, db: Database, seeded: tuple[str, str], authorization: str | None
) -> None:
    before = await queries.counts(db)
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path, options in admin_requests(*seeded):
        response = await client.request(method, path, headers=headers, **options)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers.get("www-authenticate", "").lower().startswith("bearer")
        # Nothing about the data leaks into the refusal.
        assert "4401" not in response.text and "auth-seed" not in response.text
    assert await queries.counts(db) == before


@pytest.fixture
async def client_without_admin(
    db: Database, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(dataclasses.replace(settings, admin_token=None))
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


async def test_admin_api_is_off_without_admin_token(
    client_without_admin: httpx.AsyncClient, db: Database
) -> None:
    ledger_id, customer_id = await _seed_customer(client_without_admin, db)
    for method, path, options in admin_requests(ledger_id, customer_id):
        for headers in ({}, ADMIN, {"Authorization": "Bearer "}):
            response = await client_without_admin.request(method, path, headers=headers, **options)
            assert response.status_code == 403, (method, path, response.text)
            assert "ADMIN_TOKEN" in response.json()["detail"], response.text
    # The rest of the service still works.
    assert (await client_without_admin.get("/health")).status_code == 200
    assert (await client_without_admin.get("/metrics")).status_code == 200


# --- GET /events: what is listed -------------------------------------------------


async def _deliver(
    client: httpx.AsyncClient, topic: str, payload: dict[str, Any], webhook_id: str, **options: Any
) -> dict[str, Any]:
    response = await shopify.post(client, topic, payload, webhook_id=webhook_id, **options)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture
async def ledger(client: httpx.AsyncClient, db: Database) -> list[dict[str, Any]]:
    """A varied ledger: two shops, several topics, processed, failed and ignored rows.

    Returns the rows as stored, newest first (the listing's order).
    """
    deliveries: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
        ("customers/create", shopify.customer(501), "ev-a1", {"Event-Id": "event-a1"}),
        ("orders/create", shopify.order(601, customer_id=501), "ev-a2", {}),
        ("orders/create", {"id": "not-a-number"}, "ev-a3", {}),  # failed
        ("products/create", {"id": 9}, "ev-a4", {}),  # ignored
        ("customers/update", shopify.customer(502), "ev-a5", {"Event-Id": "event-a5"}),
        ("orders/updated", shopify.order(601, customer_id=501, total_price="5.00"), "ev-a6", {}),
        ("customers/create", shopify.customer(501), "ev-b1", {"shop": shopify.OTHER_SHOP}),
        ("orders/create", {"id": -1}, "ev-b2", {"shop": shopify.OTHER_SHOP}),  # failed
        ("orders/create", shopify.order(602), "ev-b3", {"shop": shopify.OTHER_SHOP}),
    ]
    for topic, payload, webhook_id, options in deliveries:
        await _deliver(client, topic, payload, webhook_id, **options)
    rows = await queries.fetch(
        db,
        "SELECT *, payload::text AS payload_text FROM webhook_events"
        " ORDER BY received_at DESC, id DESC",
    )
    assert len(rows) == len(deliveries)
    # received_at is the commit's now(): one delivery after another, all distinct.
    assert len({row["received_at"] for row in rows}) == len(rows)
    return rows


async def list_events(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/events", params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def webhook_ids(body: dict[str, Any]) -> list[str]:
    return [event["webhook_id"] for event in body["events"]]


async def test_events_are_listed_newest_first_with_their_fields(
    client: httpx.AsyncClient, ledger: list[dict[str, Any]]
) -> None:
    body = await list_events(client)
    assert webhook_ids(body) == [row["webhook_id"] for row in ledger]
    assert body["next_cursor"] is None
    first = body["events"][0]
    stored = ledger[0]
    assert first["id"] == str(stored["id"])
    assert first["shop_id"] == stored["shop_id"]
    assert first["topic"] == stored["topic"]
    assert first["status"] == stored["status"]
    assert first["attempts"] == 1
    assert datetime.fromisoformat(first["received_at"]) == stored["received_at"]
    # No payloads unless asked for.
    assert all("payload" not in event for event in body["events"])


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"shop": shopify.OTHER_SHOP}, lambda row: row["shop_id"] == shopify.OTHER_SHOP),
        ({"topic": "orders/create"}, lambda row: row["topic"] == "orders/create"),
        ({"status": "failed"}, lambda row: row["status"] == "failed"),
        ({"status": "ignored"}, lambda row: row["status"] == "ignored"),
        ({"status": "processed"}, lambda row: row["status"] == "processed"),
        ({"webhook_id": "ev-a5"}, lambda row: row["webhook_id"] == "ev-a5"),
        ({"event_id": "event-a1"}, lambda row: row["event_id"] == "event-a1"),
        (
            {"shop": shopify.SHOP, "topic": "orders/create", "status": "processed"},
            lambda row: (
                row["shop_id"] == shopify.SHOP
                and row["topic"] == "orders/create"
                and row["status"] == "processed"
            ),
        ),
    ],
    ids=["shop", "topic", "failed", "ignored", "processed", "webhook_id", "event_id", "combined"],
)
async def test_each_filter_narrows_the_listing(
    client: httpx.AsyncClient, ledger: list[dict[str, Any]], params: dict[str, str], expected: Any
) -> None:
    wanted = [row["webhook_id"] for row in ledger if expected(row)]
    assert 0 < len(wanted) < len(ledger)
    assert webhook_ids(await list_events(client, **params)) == wanted


async def test_since_and_until_bound_the_reception_time(
    client: httpx.AsyncClient, ledger: list[dict[str, Any]]
) -> None:
    oldest_first = list(reversed(ledger))
    boundary = oldest_first[3]["received_at"]
    upper = oldest_first[6]["received_at"]

    since = await list_events(client, since=boundary.isoformat())
    assert webhook_ids(since) == [
        row["webhook_id"] for row in ledger if row["received_at"] >= boundary
    ]
    assert len(since["events"]) == len(ledger) - 3

    until = await list_events(client, until=boundary.isoformat())
    assert webhook_ids(until) == [
        row["webhook_id"] for row in ledger if row["received_at"] < boundary
    ]
    assert len(until["events"]) == 3

    window = await list_events(client, since=boundary.isoformat(), until=upper.isoformat())
    assert webhook_ids(window) == [row["webhook_id"] for row in oldest_first[3:6]][::-1]


async def test_unknown_values_match_nothing(
    client: httpx.AsyncClient, ledger: list[dict[str, Any]]
) -> None:
    for params in (
        {"shop": "nobody.myshopify.com"},
        {"topic": "orders/paid"},
        {"webhook_id": "never-sent"},
        {"event_id": "never-sent"},
    ):
        assert (await list_events(client, **params))["events"] == [], params


async def test_pages_return_every_row_exactly_once_newest_first(
    client: httpx.AsyncClient, ledger: list[dict[str, Any]]
) -> None:
    seen: list[str] = []
    pages = 0
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4}
        if cursor:
            params["cursor"] = cursor
        body = await list_events(client, **params)
        pages += 1
        assert len(body["events"]) <= 4
        seen += [event["id"] for event in body["events"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert len(body["events"]) == 4
        assert pages < 10, "pagination does not end"
    assert pages == 3  # 4 + 4 + 1
    assert seen == [str(row["id"]) for row in ledger]


async def test_pages_keep_the_filter(
    client: httpx.AsyncClient, ledger: list[dict[str, Any]]
) -> None:
    wanted = [str(row["id"]) for row in ledger if row["shop_id"] == shopify.SHOP]
    first = await list_events(client, shop=shopify.SHOP, limit=2)
    assert first["next_cursor"]
    seen = [event["id"] for event in first["events"]]
    cursor = first["next_cursor"]
    while cursor:
        body = await list_events(client, shop=shopify.SHOP, limit=2, cursor=cursor)
        seen += [event["id"] for event in body["events"]]
        cursor = body["next_cursor"]
    assert seen == wanted


async def test_a_page_that_fills_exactly_has_no_next_cursor(
    client: httpx.AsyncClient, ledger: list[dict[str, Any]]
) -> None:
    body = await list_events(client, limit=len(ledger))
    assert len(body["events"]) == len(ledger)
    assert body["next_cursor"] is None


async def test_payloads_only_when_asked_for(
    client: httpx.AsyncClient, ledger: list[dict[str, Any]]
) -> None:
    body = await list_events(client, include_payload="true", webhook_id="ev-a1")
    [event] = body["events"]
    assert event["payload"] == json.loads(ledger[-1]["payload_text"])
    assert event["payload"]["id"] == 501

    every = await list_events(client, include_payload="true")
    by_webhook = {row["webhook_id"]: json.loads(row["payload_text"]) for row in ledger}
    assert {e["webhook_id"]: e["payload"] for e in every["events"]} == by_webhook

    without = await list_events(client, include_payload="false")
    assert all("payload" not in event for event in without["events"])


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-a-cursor"},
        {"cursor": "W10="},  # base64 of "[]": valid encoding, not our shape
        {"cursor": "WyJ5ZXN0ZXJkYXkiLCAibm8iXQ=="},  # ["yesterday", "no"]
        {"limit": "1001"},
        {"limit": "0"},
        {"limit": "many"},
        {"status": "exploded"},
        {"since": "last tuesday"},
    ],
    ids=[
        "garbage-cursor",
        "empty-cursor",
        "bad-values-cursor",
        "limit-1001",
        "limit-0",
        "limit-text",
        "status",
        "since",
    ],
)
async def test_bad_listing_parameters_are_400(
    client: httpx.AsyncClient, ledger: list[dict[str, Any]], params: dict[str, str]
) -> None:
    response = await client.get("/events", params=params, headers=ADMIN)
    assert response.status_code == 400, response.text


async def test_limit_1000_is_allowed(
    client: httpx.AsyncClient, ledger: list[dict[str, Any]]
) -> None:
    assert len((await list_events(client, limit=1000))["events"]) == len(ledger)


# --- GET /events/{id} --------------------------------------------------------------


async def test_one_event_with_payload_status_attempts_and_error(
    client: httpx.AsyncClient, ledger: list[dict[str, Any]]
) -> None:
    failed = next(row for row in ledger if row["webhook_id"] == "ev-a3")
    response = await client.get(f"/events/{failed['id']}", headers=ADMIN)
    assert response.status_code == 200, response.text
    event = response.json()
    assert event["id"] == str(failed["id"])
    assert event["webhook_id"] == "ev-a3"
    assert event["shop_id"] == shopify.SHOP
    assert event["topic"] == "orders/create"
    assert event["status"] == "failed"
    assert event["attempts"] == 1
    assert event["last_error"] and event["last_error"] == failed["last_error"]
    assert event["payload"] == {"id": "not-a-number"}

    processed = next(row for row in ledger if row["webhook_id"] == "ev-a2")
    event = (await client.get(f"/events/{processed['id']}", headers=ADMIN)).json()
    assert event["status"] == "processed"
    assert event["last_error"] is None
    assert event["payload"]["id"] == 601


async def test_unknown_event_is_404(
    client: httpx.AsyncClient, ledger: list[dict[str, Any]]
) -> None:
    response = await client.get(f"/events/{uuid.uuid4()}", headers=ADMIN)
    assert response.status_code == 404, response.text
    # Not a uuid: no such route.
    assert (await client.get("/events/ev-a3", headers=ADMIN)).status_code in (400, 404)
