"""POST /replay: stored deliveries applied again through the live handlers.

"The code before the fix" is simulated by swapping a handler in
app.webhooks.handlers.HANDLERS for one whose payload type rejects something
(financial_status "expired"); putting the real handler back is "the fix".
The database is always the real one.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from app.db.database import Database
from app.webhooks.handlers import HANDLERS
from tests.support import queries, shopify
from tests.support.ops import (
    ADMIN,
    data_snapshot,
    ledger_by_webhook,
    order_handler_before_fix,
    scrape,
    snapshot,
    value,
)
from tests.support.shopify import deliver

# Columns that differ between two shops holding the same data.
ROW_IDENTITY = {"id", "shop_id", "created_at", "customer_id", "row_text"}

CUSTOMER = 7_100_000_001
ORDER = 7_200_000_001


async def replay(client: httpx.AsyncClient, **request: Any) -> dict[str, Any]:
    response = await client.post("/replay", json=request, headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def expired_order(
    order_id: int = ORDER, *, total_price: str = "123.45", **fields: Any
) -> dict[str, Any]:
    """An order whose financial_status the code before the fix did not accept."""
    return shopify.order(
        order_id,
        customer_id=CUSTOMER,
        financial_status="expired",
        total_price=total_price,
        customer_updated_at="2026-01-01T09:30:00-05:00",
        customer_fields={"email": "replayed@example.com", "first_name": "Re", "last_name": "Play"},
        **fields,
    )


def business(row: dict[str, Any] | None) -> dict[str, Any]:
    assert row is not None
    return {key: value for key, value in row.items() if key not in ROW_IDENTITY}


# --- a failed delivery, fixed and replayed ---------------------------------------


async def test_failed_delivery_is_processed_after_the_fix_like_a_live_one(
    client: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = expired_order()
    with monkeypatch.context() as before_fix:
        before_fix.setitem(HANDLERS, "orders/create", order_handler_before_fix())
        status = await deliver(client, "orders/create", payload, "needs-fix")
    assert status == "failed"
    failed = await queries.ledger_row(db, "needs-fix")
    assert failed["status"] == "failed" and failed["attempts"] == 1
    assert "financial_status" in failed["last_error"]
    # Nothing the delivery would have written was kept.
    assert await queries.order(db, ORDER) is None
    assert await queries.customer(db, CUSTOMER) is None

    # The fixed code, live, in another shop: the reference.
    assert await deliver(client, "orders/create", payload, "live", shop=shopify.OTHER_SHOP) == (
        "processed"
    )

    scraped = await scrape(client)
    report = await replay(client, status="failed")
    after = await scrape(client)

    assert report["matched"] == 1
    assert report["processed"] == 1
    assert (report["stale"], report["failed"], report["ignored"]) == (0, 0, 0)
    assert report["failed_ids"] == []
    assert report["dry_run"] is False
    assert report["next_cursor"] is None
    assert [d["id"] for d in report["deliveries"]] == [str(failed["id"])]

    row = await queries.ledger_row(db, "needs-fix")
    assert row["status"] == "processed"
    assert row["attempts"] == 2
    assert row["last_error"] is None
    assert row["processed_at"] > failed["processed_at"]
    assert row["payload_text"] == failed["payload_text"]  # replay never rewrites the payload

    # Exactly the data the live delivery left.
    replayed_order = await queries.order(db, ORDER)
    live_order = await queries.order(db, ORDER, shop=shopify.OTHER_SHOP)
    assert business(replayed_order) == business(live_order)
    assert replayed_order is not None
    assert replayed_order["financial_status"] == "expired"
    assert replayed_order["customer_shopify_id"] == str(CUSTOMER)
    replayed_customer = await queries.customer(db, CUSTOMER)
    live_customer = await queries.customer(db, CUSTOMER, shop=shopify.OTHER_SHOP)
    assert business(replayed_customer) == business(live_customer)
    assert replayed_customer is not None
    assert replayed_customer["email"] == "replayed@example.com"
    assert replayed_customer["order_count"] == 1
    assert str(replayed_customer["total_spent"]) == "123.4500"
    live_ledger = await queries.ledger_row(db, "live", shop=shopify.OTHER_SHOP)
    assert row["payload_text"] == live_ledger["payload_text"]

    processed = "shopify_ingest_replayed_total"
    assert (
        value(after, processed, outcome="processed")
        - value(scraped, processed, outcome="processed")
        == 1
    )
    assert value(after, processed, outcome="failed") == value(scraped, processed, outcome="failed")


async def test_a_delivery_that_still_fails_stays_failed_with_its_error(
    client: httpx.AsyncClient, db: Database
) -> None:
    assert await deliver(client, "orders/create", {"id": "not-a-number"}, "broken") == "failed"
    before = await queries.ledger_row(db, "broken")
    scraped = await scrape(client)

    report = await replay(client, webhook_ids=["broken"])

    assert (report["matched"], report["processed"], report["failed"]) == (1, 0, 1)
    assert report["failed_ids"] == [str(before["id"])]
    row = await queries.ledger_row(db, "broken")
    assert row["status"] == "failed"
    assert row["attempts"] == 2
    assert row["last_error"] and "id" in row["last_error"]
    assert row["processed_at"] > before["processed_at"]
    after = await scrape(client)
    name = "shopify_ingest_replayed_total"
    assert value(after, name, outcome="failed") - value(scraped, name, outcome="failed") == 1


async def test_ignored_topics_replay_as_ignored(client: httpx.AsyncClient, db: Database) -> None:
    assert await deliver(client, "products/create", {"id": 1}, "product") == "ignored"
    report = await replay(client, status="ignored")
    assert (report["matched"], report["ignored"], report["processed"]) == (1, 1, 0)
    row = await queries.ledger_row(db, "product")
    assert (row["status"], row["attempts"]) == ("ignored", 2)


# --- order ---------------------------------------------------------------------


async def test_replay_applies_deliveries_in_the_order_shopify_triggered_them(
    client: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two updates of one order with the same updated_at: whichever is applied
    # last wins. The later-triggered one arrives (and is stored) first.
    later = expired_order(total_price="20.00")
    earlier = expired_order(total_price="10.00")
    with monkeypatch.context() as before_fix:
        before_fix.setitem(HANDLERS, "orders/updated", order_handler_before_fix("orders/updated"))
        assert (
            await deliver(
                client, "orders/updated", later, "later", triggered_at="2026-03-01T12:00:02Z"
            )
            == "failed"
        )
        assert (
            await deliver(
                client, "orders/updated", earlier, "earlier", triggered_at="2026-03-01T12:00:01Z"
            )
            == "failed"
        )
    ledger = await ledger_by_webhook(db)
    assert ledger["later"]["received_at"] < ledger["earlier"]["received_at"]

    report = await replay(client, status="failed")

    assert [d["webhook_id"] for d in report["deliveries"]] == ["earlier", "later"]
    assert report["processed"] == 2
    order = await queries.order(db, ORDER)
    assert order is not None
    assert str(order["total_price"]) == "20.0000"
    customer = await queries.customer(db, CUSTOMER)
    assert customer is not None and str(customer["total_spent"]) == "20.0000"


async def test_without_triggered_at_the_reception_order_decides(
    client: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as before_fix:
        before_fix.setitem(HANDLERS, "orders/updated", order_handler_before_fix("orders/updated"))
        for webhook_id, total in (("first", "1.00"), ("second", "2.00"), ("third", "3.00")):
            payload = expired_order(total_price=total)
            assert (
                await deliver(client, "orders/updated", payload, webhook_id, triggered_at=None)
                == "failed"
            )
    report = await replay(client, status="failed")
    assert [d["webhook_id"] for d in report["deliveries"]] == ["first", "second", "third"]
    order = await queries.order(db, ORDER)
    assert order is not None and str(order["total_price"]) == "3.0000"


# --- dry run --------------------------------------------------------------------


async def test_dry_run_reports_and_changes_nothing(
    client: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await deliver(client, "customers/create", shopify.customer(CUSTOMER + 5), "context")
    with monkeypatch.context() as before_fix:
        before_fix.setitem(HANDLERS, "orders/create", order_handler_before_fix())
        for number in range(3):
            payload = expired_order(ORDER + number)
            assert await deliver(client, "orders/create", payload, f"dry-{number}") == "failed"
    before = await snapshot(db)
    scraped = await scrape(client)

    report = await replay(client, status="failed", dry_run=True)

    assert report["dry_run"] is True
    assert report["matched"] == 3
    assert (report["processed"], report["stale"], report["failed"], report["ignored"]) == (
        0,
        0,
        0,
        0,
    )
    assert sorted(d["webhook_id"] for d in report["deliveries"]) == ["dry-0", "dry-1", "dry-2"]
    assert await snapshot(db) == before
    after = await scrape(client)
    for outcome in ("processed", "failed", "stale", "ignored"):
        name = "shopify_ingest_replayed_total"
        assert value(after, name, outcome=outcome) == value(scraped, name, outcome=outcome)

    # The same request without dry_run does the work.
    assert (await replay(client, status="failed"))["processed"] == 3


# --- limit and cursor -------------------------------------------------------------


async def test_limit_and_cursor_walk_the_selection_in_pages(
    client: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Seven deliveries stored in an order unrelated to when they were triggered.
    seconds = [5, 2, 7, 1, 6, 3, 4]
    with monkeypatch.context() as before_fix:
        before_fix.setitem(HANDLERS, "orders/create", order_handler_before_fix())
        for second in seconds:
            assert (
                await deliver(
                    client,
                    "orders/create",
                    expired_order(ORDER + second),
                    f"page-{second}",
                    triggered_at=f"2026-03-01T12:00:0{second}Z",
                )
                == "failed"
            )
    await deliver(
        client, "orders/create", expired_order(ORDER + 99), "elsewhere", shop=shopify.OTHER_SHOP
    )

    # The selection (a shop) does not shrink as rows get processed: only the
    # cursor moves the replay on.
    pages = []
    cursor = None
    while True:
        request: dict[str, Any] = {"shop": shopify.SHOP, "limit": 3}
        if cursor:
            request["cursor"] = cursor
        page = await replay(client, **request)
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None or len(pages) > 5:
            break

    assert [page["matched"] for page in pages] == [3, 3, 1]
    assert [page["processed"] for page in pages] == [3, 3, 1]
    replayed = [d["webhook_id"] for page in pages for d in page["deliveries"]]
    assert replayed == [f"page-{second}" for second in sorted(seconds)]
    ledger = await ledger_by_webhook(db)
    assert all(ledger[f"page-{s}"]["attempts"] == 2 for s in seconds)
    assert all(ledger[f"page-{s}"]["status"] == "processed" for s in seconds)
    assert ledger["elsewhere"]["attempts"] == 1


async def test_limit_bounds(client: httpx.AsyncClient, db: Database) -> None:
    for limit in (0, -1, 10_001):
        response = await client.post(
            "/replay", json={"status": "failed", "limit": limit}, headers=ADMIN
        )
        assert response.status_code == 400, (limit, response.text)
    assert (await replay(client, status="failed", limit=10_000))["matched"] == 0
    bad_cursor = await client.post(
        "/replay", json={"status": "failed", "cursor": "nonsense"}, headers=ADMIN
    )
    assert bad_cursor.status_code == 400, bad_cursor.text


async def test_default_limit_is_1000(client: httpx.AsyncClient, db: Database) -> None:
    # 1001 ledger rows written straight into the table (fast); they are ignored topics.
    await queries.execute(
        db,
        "INSERT INTO webhook_events (shop_id, webhook_id, topic, payload, status, attempts,"
        " triggered_at, received_at)"
        " SELECT $1, 'bulk-' || n, 'products/create', '{}'::jsonb, 'ignored', 1,"
        " now() - make_interval(secs => 2000 - n), now()"
        " FROM generate_series(1, 1001) AS n",
        shopify.SHOP,
    )
    page = await replay(client, status="ignored", dry_run=True)
    assert page["matched"] == 1000
    assert page["next_cursor"]
    rest = await replay(client, status="ignored", dry_run=True, cursor=page["next_cursor"])
    assert rest["matched"] == 1
    assert rest["deliveries"][0]["webhook_id"] == "bulk-1001"
    assert rest["next_cursor"] is None


# --- replaying what was already applied -------------------------------------------


async def test_replaying_processed_deliveries_changes_no_data(
    client: httpx.AsyncClient, db: Database
) -> None:
    other = CUSTOMER + 1
    deliveries = [
        ("customers/create", shopify.customer(CUSTOMER, updated_at="2026-01-01T10:00:00Z")),
        ("orders/create", shopify.order(ORDER, customer_id=CUSTOMER, total_price="50.00")),
        (
            "orders/updated",
            shopify.order(
                ORDER,
                customer_id=CUSTOMER,
                total_price="40.00",
                updated_at="2026-01-02T10:00:00Z",
            ),
        ),
        (
            "customers/update",
            shopify.customer(CUSTOMER, email="new@example.com", updated_at="2026-01-03T10:00:00Z"),
        ),
        ("orders/create", shopify.order(ORDER + 1, customer_id=other, total_price="9.99")),
        ("orders/delete", shopify.deleted(ORDER + 1)),
        ("customers/create", shopify.customer(other + 1, email="gone@example.com")),
        ("customers/delete", shopify.customer_deleted(other + 1)),
        ("customers/data_request", shopify.data_request(CUSTOMER)),
        # The shop's numeric id is the data request's (a different one is refused).
        ("app/uninstalled", {**shopify.fixture("app_uninstalled"), "id": 954889}),
    ]
    for number, (topic, payload) in enumerate(deliveries):
        triggered = f"2026-03-01T12:00:{number:02d}Z"
        assert (
            await deliver(client, topic, payload, f"done-{number}", triggered_at=triggered)
            == "processed"
        )
    data = await data_snapshot(db)
    ledger = await ledger_by_webhook(db)

    report = await replay(client, status="processed")

    assert report["matched"] == len(deliveries)
    assert report["failed"] == 0 and report["failed_ids"] == []
    assert report["processed"] + report["stale"] == len(deliveries)
    assert await data_snapshot(db) == data
    after = await ledger_by_webhook(db)
    for webhook_id, row in after.items():
        assert row["attempts"] == 2
        assert row["status"] == "processed"
        assert row["payload"] == ledger[webhook_id]["payload"]

    # And once more: still the same data.
    await replay(client, shop=shopify.SHOP)
    assert await data_snapshot(db) == data


# --- choosing deliveries ------------------------------------------------------------


async def test_explicit_ids_and_webhook_ids_select_exactly_those(
    client: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as before_fix:
        before_fix.setitem(HANDLERS, "orders/create", order_handler_before_fix())
        for number in range(4):
            await deliver(client, "orders/create", expired_order(ORDER + number), f"pick-{number}")
    ledger = await ledger_by_webhook(db)

    by_id = await replay(client, ids=[str(ledger["pick-1"]["id"])])
    assert by_id["matched"] == 1 and by_id["processed"] == 1
    by_webhook = await replay(client, webhook_ids=["pick-2", "pick-3"])
    assert by_webhook["matched"] == 2 and by_webhook["processed"] == 2

    statuses = {key: row["status"] for key, row in (await ledger_by_webhook(db)).items()}
    assert statuses == {
        "pick-0": "failed",
        "pick-1": "processed",
        "pick-2": "processed",
        "pick-3": "processed",
    }
    assert await queries.order(db, ORDER) is None
    assert await queries.order(db, ORDER + 1) is not None

    nothing = await replay(client, ids=[str(uuid.uuid4())])
    assert nothing["matched"] == 0 and nothing["deliveries"] == []
    nothing = await replay(client, webhook_ids=["never-sent"])
    assert nothing["matched"] == 0


async def test_filters_select_deliveries(client: httpx.AsyncClient, db: Database) -> None:
    await deliver(client, "customers/create", shopify.customer(CUSTOMER), "f-1")
    await deliver(client, "orders/create", shopify.order(ORDER), "f-2")
    await deliver(
        client, "customers/create", shopify.customer(CUSTOMER), "f-3", shop=shopify.OTHER_SHOP
    )
    ledger = await ledger_by_webhook(db)
    boundary: datetime = ledger["f-2"]["received_at"]

    def matched(report: dict[str, Any]) -> list[str]:
        return sorted(d["webhook_id"] for d in report["deliveries"])

    assert matched(await replay(client, shop=shopify.OTHER_SHOP, dry_run=True)) == ["f-3"]
    assert matched(await replay(client, topic="customers/create", dry_run=True)) == ["f-1", "f-3"]
    assert matched(await replay(client, since=boundary.isoformat(), dry_run=True)) == ["f-2", "f-3"]
    assert matched(await replay(client, until=boundary.isoformat(), dry_run=True)) == ["f-1"]
    assert matched(
        await replay(client, shop=shopify.SHOP, topic="orders/create", dry_run=True)
    ) == ["f-2"]


@pytest.mark.parametrize(
    "request_body",
    [{}, {"dry_run": True}, {"limit": 5}, {"ids": [], "webhook_ids": []}, {"shop": ""}],
    ids=["empty", "dry-run-only", "limit-only", "empty-lists", "blank-shop"],
)
async def test_an_empty_selection_is_refused(
    client: httpx.AsyncClient, db: Database, request_body: dict[str, Any]
) -> None:
    await deliver(client, "orders/create", {"id": "not-a-number"}, "untouched")
    response = await client.post("/replay", json=request_body, headers=ADMIN)
    assert response.status_code == 400, response.text
    assert (await queries.ledger_row(db, "untouched"))["attempts"] == 1


@pytest.mark.parametrize(
    "extra",
    [
        {"payload": {"id": 1}},
        {"payload": None},
        {"body": "{}"},
        {"status": "exploded"},
        {"ids": ["not-a-uuid"]},
    ],
    ids=["payload", "null-payload", "body", "bad-status", "bad-id"],
)
async def test_requests_carrying_payloads_or_unknown_fields_are_refused(
    client: httpx.AsyncClient, db: Database, extra: dict[str, Any]
) -> None:
    await deliver(client, "orders/create", {"id": "not-a-number"}, "untouched")
    row = await queries.ledger_row(db, "untouched")
    request = {"ids": [str(row["id"])], **extra}
    response = await client.post("/replay", json=request, headers=ADMIN)
    assert response.status_code == 400, response.text
    after = await queries.ledger_row(db, "untouched")
    assert after["attempts"] == 1
    assert after["payload_text"] == row["payload_text"]
