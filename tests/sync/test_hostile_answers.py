"""The sync against answers no honest Shopify sends, and a network that crawls.

Whatever an answer holds, a run ends recorded with why: the answer is refused
(`invalid_answer`), or only the offending object fails and the rest is
stored; times from the future and amounts numeric(19,4) cannot hold exactly
are refused; waits, the download and the whole run are bounded; and the
schedule goes on with the next shop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.config import Settings
from app.db.database import Database
from app.db.enums import SyncKind, SyncResource, SyncRunStatus
from app.devtools.standin import FakeShop, Fault, ShopifyStandIn
from app.shopify.bulk import DownloadLimits, OversizedLine, result_lines
from app.shopify.client import AdminClient, FixedToken, http_client
from app.sync.runner import SyncRunner
from app.sync.scheduler import sync_all_once
from tests.support import queries
from tests.support.ops import ROOT
from tests.support.sync import (
    TOKEN_KEY,
    give_credentials,
    new_shop,
    runner_for,
    stored_customers,
    stored_orders,
    sync,
)

ADMIN = {"Authorization": "Bearer test-admin-token"}
CUSTOMERS = (SyncResource.customers,)
FUTURE = "2999-01-01T00:00:00Z"
# Valid RFC 3339 times whose UTC value is year 10000 and 1 BC.
YEAR_10000 = "9999-12-31T23:59:59-14:00"
YEAR_1_BC = "0001-01-01T00:00:00+14:00"
# The largest amount numeric(19,4) holds: two of them overflow a customer's total.
LARGEST = "999999999999999.9999"


def customer_node(number: int, **fields: Any) -> dict[str, Any]:
    """A customer as the Admin API's queries ask for it."""
    return {
        "id": f"gid://shopify/Customer/{number}",
        "legacyResourceId": str(number),
        "firstName": "Ann",
        "lastName": "Lee",
        "defaultEmailAddress": None,
        "defaultPhoneNumber": None,
        "tags": [],
        "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-05-01T00:00:00Z",
        **fields,
    }


def line(node: Any) -> bytes:
    return json.dumps(node).encode() + b"\n"


def page(nodes: list[Any], **cost: Any) -> dict[str, Any]:
    """A customers page answer, with the cost extension given."""
    answer: dict[str, Any] = {
        "data": {
            "customers": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": nodes}
        }
    }
    if cost:
        answer["extensions"] = {"cost": cost}
    return answer


def throttle(**figures: Any) -> dict[str, Any]:
    status = {"maximumAvailable": 1000.0, "currentlyAvailable": 990.0, "restoreRate": 100.0}
    return {"requestedQueryCost": 10, "actualQueryCost": 5, "throttleStatus": status | figures}


async def run_row(db: Database, run_id: object) -> dict[str, Any]:
    row = await queries.fetchrow(db, "SELECT * FROM sync_runs WHERE id = $1", run_id)
    assert row is not None
    return row


async def synced_once(db: Database, settings: Settings, shop: FakeShop) -> None:
    """The shop's first (full) sync, of nothing: the next run is incremental."""
    _, status = await sync(db, settings, shop)
    assert status is SyncRunStatus.succeeded


# --- 1. a failure is recorded as one, and stops nothing else ---------------------------------

DEEP = b'{"data": {"customers": ' + b"[" * 5000 + b"]" * 5000 + b"}}"


@pytest.mark.parametrize(
    "body",
    [
        {"data": {"customers": {"nodes": []}}},
        {"data": {"customers": {"pageInfo": "yes", "nodes": []}}},
        {"data": {}},
        {"data": {"customers": "none"}},
        page([], **throttle() | {"actualQueryCost": "lots"}),
        page([], **throttle(currentlyAvailable="plenty")),
        DEEP,
    ],
    ids=[
        "pageInfo missing",
        "pageInfo malformed",
        "connection missing",
        "connection a string",
        "actualQueryCost lots",
        "currentlyAvailable plenty",
        "nested 5000 deep",
    ],
)
async def test_a_malformed_page_fails_the_run_and_says_why(
    db: Database,
    sync_config: Settings,
    shop: FakeShop,
    shopify_admin: ShopifyStandIn,
    body: Any,
) -> None:
    await synced_once(db, sync_config, shop)
    shopify_admin.inject(Fault.answer(body), shop=shop.domain)

    run, status = await sync(db, sync_config, shop, resources=CUSTOMERS)

    assert status is SyncRunStatus.failed
    stored = await run_row(db, run.id)
    assert stored["status"] == "failed"
    assert stored["error_kind"] == "invalid_answer"
    assert stored["last_error"]
    assert await queries.fetchval(db, "SELECT count(*) FROM sync_leases") == 0


def add_objects_shopify_cannot_send(shop: FakeShop) -> dict[str, int]:
    """Good objects, and one of each kind a check must refuse; their ids by name."""
    good = shop.add_customer(email="good@example.com")
    rich = shop.add_customer(email="rich@example.com")
    ids = {
        "good customer": good["id"],
        "NUL in a name": shop.add_customer(first_name="Nul\x00Name")["id"],
        "updated in 2999": shop.add_customer(updated_at=FUTURE, created_at=FUTURE)["id"],
        "good order": shop.add_order(customer_id=good["id"], total_price="10.00")["id"],
        "negative total": shop.add_order(customer_id=good["id"], total_price="-100.00")["id"],
        "a tenth of a cent": shop.add_order(customer_id=good["id"], total_price="0.00001")["id"],
        "rich 1": shop.add_order(customer_id=rich["id"], total_price=LARGEST)["id"],
        "rich 2": shop.add_order(customer_id=rich["id"], total_price=LARGEST)["id"],
    }
    return ids


@pytest.mark.parametrize("kind", [SyncKind.full, SyncKind.incremental])
async def test_objects_shopify_could_not_send_fail_alone_and_the_rest_is_stored(
    db: Database, sync_config: Settings, shop: FakeShop, kind: SyncKind
) -> None:
    if kind is SyncKind.incremental:
        await synced_once(db, sync_config, shop)
    ids = add_objects_shopify_cannot_send(shop)

    run, status = await sync(db, sync_config, shop)

    assert run.kind is kind
    assert status is SyncRunStatus.succeeded
    # NUL, 2999, negative, 0.00001, and the second of two orders whose sum overflows.
    assert run.counts.failed == 5
    customers = await stored_customers(db, shop.domain)
    assert str(ids["NUL in a name"]) not in customers
    assert str(ids["updated in 2999"]) not in customers
    orders = await stored_orders(db, shop.domain)
    assert orders[str(ids["good order"])]["total_price"] == Decimal("10.00")
    assert str(ids["negative total"]) not in orders
    assert str(ids["a tenth of a cent"]) not in orders
    assert len({str(ids["rich 1"]), str(ids["rich 2"])} & set(orders)) == 1
    watermarks = await queries.fetch(db, "SELECT watermark FROM sync_state")
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    assert all(row["watermark"] is None or row["watermark"] < tomorrow for row in watermarks)
    stored = await run_row(db, run.id)
    assert (stored["status"], stored["failed"]) == ("succeeded", 5)


async def test_bulk_lines_that_cannot_be_used_fail_alone(
    db: Database, sync_config: Settings, shop: FakeShop, shopify_admin: ShopifyStandIn
) -> None:
    settings = dataclasses.replace(sync_config, sync_bulk_max_line_bytes=4096)
    shop.add_customer()  # the operation must have a result to replace
    good = [customer_node(9_000_000_000 + n) for n in range(3)]
    bad = [
        b'{"id": "gid://shopify/Customer/1", "firstName": "\xff\xfe"}\n',  # not UTF-8
        b"[" * 5000 + b"]" * 5000 + b"\n",  # nested too deeply
        line({key: value for key, value in customer_node(2).items() if key != "legacyResourceId"}),
        line("a string"),
        line(customer_node(3, firstName="Nul\u0000Name")),
        line(customer_node(4, updatedAt=YEAR_10000)),
        line(customer_node(5, createdAt=YEAR_1_BC)),
        line(customer_node(6, updatedAt=FUTURE)),
        line(customer_node(7, tags=["t" * 200] * 100)),  # beyond the maximum line size
        b'{"id": "gid://shopify/Customer/8", \n',  # cut short
        line(customer_node(9, legacyResourceId="\u00b2")),  # a digit to int(), not an id
    ]
    body = line(good[0]) + b"".join(bad[:5]) + line(good[1]) + b"".join(bad[5:]) + line(good[2])
    shopify_admin.inject(Fault.bulk_result(body), kind="bulk_result")

    run, status = await sync(db, settings, shop, resources=CUSTOMERS)

    assert status is SyncRunStatus.succeeded
    assert set(await stored_customers(db, shop.domain)) == {n["legacyResourceId"] for n in good}
    assert (run.counts.fetched, run.counts.applied, run.counts.failed) == (14, 3, 11)


async def test_staged_order_lines_that_cannot_be_used_fail_alone(
    db: Database, sync_config: Settings, shop: FakeShop, shopify_admin: ShopifyStandIn
) -> None:
    shop.add_order()  # the operation must have a result to replace

    def order(number: int, **fields: Any) -> dict[str, Any]:
        return {
            "id": f"gid://shopify/Order/{number}",
            "legacyResourceId": str(number),
            "name": f"#{number}",
            "totalPriceSet": {"shopMoney": {"amount": "10.00"}},
            "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-05-01T00:00:00Z",
            "customer": None,
            **fields,
        }

    item = {"id": "gid://shopify/LineItem/71", "quantity": 1, "__parentId": "gid://shopify/Order/7"}
    body = b"".join(
        (
            line(order(7)),
            b'{"id": "gid://shopify/Order/8", "name": "\xff"}\n',  # not UTF-8
            b'{"id": "gid://shopify/Order/9", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}\n",
            line(order(10, name="Nul\u0000")),
            line(order(11, createdAt=YEAR_1_BC)),
            line(order(12, totalPriceSet={"shopMoney": {"amount": "-1.00"}})),
            line(item),
        )
    )
    shopify_admin.inject(Fault.bulk_result(body), kind="bulk_result")

    run, status = await sync(db, sync_config, shop, resources=(SyncResource.orders,))

    assert status is SyncRunStatus.succeeded
    orders = await stored_orders(db, shop.domain)
    assert set(orders) == {"7"}
    assert [item["id"] for item in json.loads(orders["7"]["line_items"])] == [71]
    assert run.counts.failed == 5
    assert await queries.fetchval(db, "SELECT count(*) FROM sync_bulk_rows") == 0


async def test_an_unexpected_failure_in_one_shop_is_recorded_and_the_next_shop_is_synced(
    db: Database,
    sync_config: Settings,
    shopify_admin: ShopifyStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shops = sorted((new_shop(shopify_admin) for _ in range(2)), key=lambda s: s.domain)
    for shop in shops:
        shop.add_customer()
        await give_credentials(db, sync_config, shop)
    broken, fine = shops
    sync_resource = SyncRunner._sync_resource

    async def failing(self: SyncRunner, started: Any, *args: Any) -> bool:
        if started.run.shop == broken.domain:
            raise RuntimeError("a message that may quote the data: ann@example.com")
        return await sync_resource(self, started, *args)

    monkeypatch.setattr(SyncRunner, "_sync_resource", failing)
    async with runner_for(db, sync_config) as runner:
        failed = await sync_all_once(runner)

    assert failed == [broken.domain]
    runs = {
        row["shop_id"]: row
        for row in await queries.fetch(db, "SELECT * FROM sync_runs ORDER BY started_at")
    }
    assert runs[broken.domain]["status"] == "failed"
    assert runs[broken.domain]["error_kind"] == "unexpected"
    assert "RuntimeError" in runs[broken.domain]["last_error"]
    assert "ann@example.com" not in runs[broken.domain]["last_error"]
    assert runs[fine.domain]["status"] == "succeeded"
    assert len(await stored_customers(db, fine.domain)) == 1


@pytest.mark.parametrize("ciphertext", ["gAAAAAé-not-ascii", "not a ciphertext", "gAAAAA"])
async def test_a_corrupt_ciphertext_is_unusable_credentials_never_a_crash(
    db: Database, sync_config: Settings, shop: FakeShop, ciphertext: str
) -> None:
    await queries.execute(
        db,
        "UPDATE shop_credentials SET access_token_encrypted = $2 WHERE shop_id = $1",
        shop.domain,
        ciphertext,
    )
    async with AsyncTestClient(app=create_app(sync_config)) as api:
        answer = await api.post(f"/shops/{shop.domain}/sync", headers=ADMIN)
    assert answer.status_code == 409, answer.text
    assert "credentials unusable" in answer.json()["detail"]

    async with runner_for(db, sync_config) as runner:
        assert await sync_all_once(runner) == [shop.domain]
    assert await queries.fetchval(db, "SELECT count(*) FROM sync_runs") == 0


# --- 2. waits are bounded ------------------------------------------------------------------


@pytest.mark.parametrize(
    "figures",
    [
        {"currentlyAvailable": -1e12},
        {"restoreRate": 1e-9},
        {"maximumAvailable": 1e999},
        {"currentlyAvailable": 5000.0},
    ],
    ids=["negative available", "no refill", "infinite bucket", "more than the bucket"],
)
async def test_implausible_throttle_figures_fail_the_run_at_once(
    db: Database,
    sync_config: Settings,
    shop: FakeShop,
    shopify_admin: ShopifyStandIn,
    figures: dict[str, float],
) -> None:
    await synced_once(db, sync_config, shop)
    body = json.dumps(page([], **throttle(**figures))).replace("Infinity", "1e999")
    shopify_admin.inject(Fault.answer(body.encode()), shop=shop.domain)

    run, status = await asyncio.wait_for(
        sync(db, sync_config, shop, resources=CUSTOMERS), timeout=30
    )

    assert status is SyncRunStatus.failed
    stored = await run_row(db, run.id)
    assert stored["error_kind"] == "invalid_answer"
    assert "throttleStatus" in stored["last_error"]
    assert stored["throttle_wait_seconds"] < 1


async def test_a_single_wait_for_the_bucket_is_capped(
    shop: FakeShop, shopify_admin: ShopifyStandIn
) -> None:
    """A real bucket that refills at 1 point a second: a query of 5,000 points waits 60 s."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    shopify_admin.inject(
        Fault.answer(
            page([], **throttle(maximumAvailable=100_000, currentlyAvailable=0, restoreRate=1))
        ),
        shop=shop.domain,
    )
    async with http_client() as http:
        client = AdminClient(
            http,
            shop=shop.domain,
            tokens=FixedToken(shop.token or ""),
            base_url=shopify_admin.base_url,
            api_version="2026-04",
            sleep=sleep,
        )
        await client.query("{ shop { name } }", cost=1)
        await client.query("{ shop { name } }", cost=5000)

    assert slept and max(slept) == 60.0
    assert client.usage.throttle_wait_seconds == sum(slept)


async def test_a_run_past_its_deadline_ends_failed(
    db: Database, sync_config: Settings, shop: FakeShop
) -> None:
    settings = dataclasses.replace(sync_config, sync_run_deadline_seconds=1.0)
    shop.bulk_polls_to_complete = 10**6  # the operation never finishes
    started = time.monotonic()

    run, status = await sync(db, settings, shop)

    assert status is SyncRunStatus.failed
    assert time.monotonic() - started < 10
    stored = await run_row(db, run.id)
    assert stored["error_kind"] == "deadline"
    assert "SYNC_RUN_DEADLINE_SECONDS" in stored["last_error"]
    assert await queries.fetchval(db, "SELECT count(*) FROM sync_leases") == 0


# --- 3. the bulk download is bounded -----------------------------------------------------


async def test_a_bulk_result_served_slowly_is_cut_at_its_deadline(
    db: Database, sync_config: Settings, shop: FakeShop, shopify_admin: ShopifyStandIn
) -> None:
    settings = dataclasses.replace(sync_config, sync_bulk_download_seconds=1.0)
    for _ in range(10):
        shop.add_customer()
    shopify_admin.inject(Fault.bulk_result(line_delay=0.4), kind="bulk_result")
    started = time.monotonic()

    run, status = await sync(db, settings, shop, resources=CUSTOMERS)

    assert status is SyncRunStatus.failed
    assert time.monotonic() - started < 5
    stored = await run_row(db, run.id)
    assert stored["error_kind"] == "export_failed"
    assert "SYNC_BULK_DOWNLOAD_SECONDS" in stored["last_error"]


@pytest.mark.integration  # the stand-in is a server, if no database
async def test_memory_stays_bounded_for_a_line_far_beyond_the_maximum(
    shopify_admin: ShopifyStandIn,
) -> None:
    line_bytes, chunk = 32 * 1024 * 1024, b"x" * 65536

    def body() -> Iterator[bytes]:
        for _ in range(line_bytes // len(chunk)):
            yield chunk
        yield b"\n" + line(customer_node(1))

    name, path = shopify_admin.results.new_file()
    path.write_bytes(b"")
    shopify_admin.inject(Fault.bulk_result(body()), kind="bulk_result")
    limits = DownloadLimits(deadline_seconds=60, max_line_bytes=64 * 1024)
    started = time.monotonic()
    url = shopify_admin.results.url(name)
    tracemalloc.start()
    try:
        async with http_client() as http:
            lines = [item async for item in result_lines(http, url, limits)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert lines == [OversizedLine(line_bytes), line(customer_node(1)).rstrip(b"\n")]
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes"
    assert time.monotonic() - started < 30


# --- 4. no credential in a log line --------------------------------------------------------


async def test_no_log_line_holds_a_signed_result_url(
    db: Database, sync_config: Settings, shop: FakeShop
) -> None:
    """A full sync as the command runs it, logging everything (DEBUG): the bulk results'
    signed URLs (their signature is a credential) appear in no line."""
    shop.generate(customers=3, orders=3, line_items=1)
    environment = {
        **os.environ,
        "DATABASE_URL": sync_config.database_url or "",
        "SHOPIFY_ADMIN_BASE_URL": sync_config.shopify_admin_base_url,
        "TOKEN_ENCRYPTION_KEY": TOKEN_KEY,
        "LOG_LEVEL": "DEBUG",
    }
    result = subprocess.run(  # noqa: ASYNC221 (the command is the thing tested)
        [sys.executable, "-m", "app", "sync", "--shop", shop.domain],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    urls = [operation.url for operation in shop.bulk_operations if operation.url]
    assert len(urls) == 2
    output = result.stdout + result.stderr
    assert '"level": "debug"' in output  # everything was logged
    for url in urls:
        signature = parse_qs(urlsplit(url).query)["X-Goog-Signature"][0]
        assert signature not in output
        assert urlsplit(url).path not in output
    assert shop.token not in output


# --- 5. times from the future, and what they poisoned before ------------------------------


async def test_rows_and_watermarks_poisoned_before_are_repaired(
    db: Database, sync_config: Settings, shop: FakeShop
) -> None:
    customer = shop.add_customer(email="before@example.com")
    order = shop.add_order(customer_id=customer["id"], total_price="5.00")
    await synced_once(db, sync_config, shop)
    # What an earlier version let in: versions and watermarks in 2999, a time in 1 BC.
    for table in ("customers", "orders"):
        await queries.execute(
            db,
            f"UPDATE {table} SET shopify_updated_at = '2999-01-01T00:00:00Z',"
            " shopify_created_at = '0001-01-01T00:00:00+14:00' WHERE shop_id = $1",
            shop.domain,
        )
    await queries.execute(
        db,
        "UPDATE sync_state SET watermark = '2999-01-01T00:00:00Z' WHERE shop_id = $1",
        shop.domain,
    )
    shop.update_customer(customer["id"], email="after@example.com")
    shop.update_order(order["id"], total_price="6.00")

    run, status = await sync(db, sync_config, shop)

    assert status is SyncRunStatus.succeeded
    assert run.kind is SyncKind.full  # a broken watermark asks for a full sync
    assert "times in the future or out of range" in "; ".join(run.notes)
    stored = (await stored_customers(db, shop.domain))[str(customer["id"])]
    assert stored["email"] == "after@example.com"
    assert stored["shopify_created_at"].year == datetime.now(UTC).year
    assert (await stored_orders(db, shop.domain))[str(order["id"])]["total_price"] == Decimal("6")
    soon = datetime.now(UTC) + timedelta(hours=1)
    watermarks = await queries.fetch(db, "SELECT watermark FROM sync_state")
    assert watermarks and all(row["watermark"] < soon for row in watermarks)
    # And later changes are seen again.
    shop.update_customer(customer["id"], email="later@example.com")
    again, _ = await sync(db, sync_config, shop)
    assert again.kind is SyncKind.incremental
    assert (await stored_customers(db, shop.domain))[str(customer["id"])]["email"] == (
        "later@example.com"
    )


async def test_the_sync_endpoint_and_run_records_survive_hostile_text(
    db: Database, sync_config: Settings, shop: FakeShop, shopify_admin: ShopifyStandIn
) -> None:
    """Shopify's own error text is quoted in last_error: a NUL in it must not lose the record."""
    await synced_once(db, sync_config, shop)
    body = {"errors": [{"message": "refused\u0000with a NUL"}]}
    shopify_admin.inject(Fault.answer(body), shop=shop.domain)

    run, status = await sync(db, sync_config, shop, resources=CUSTOMERS)

    assert status is SyncRunStatus.failed
    stored = await run_row(db, run.id)
    assert stored["error_kind"] == "query_refused"
    assert "refusedwith a NUL" in stored["last_error"]
