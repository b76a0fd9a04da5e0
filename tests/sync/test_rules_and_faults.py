"""The sync under the delivery rules, the rate limit, faults, interruptions and concurrency."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.access.credentials import shops_to_sync
from app.config import Settings
from app.db.database import Database
from app.db.enums import SyncResource, SyncRunStatus
from app.devtools.standin import FakeShop, Fault, ShopifyStandIn
from app.sync.runner import SyncRefused, SyncRequest
from app.sync.runs import RunInProgress
from tests.support import queries, shopify
from tests.support.sync import (
    give_credentials,
    new_shop,
    runner_for,
    stored_customers,
    stored_orders,
    sync,
)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


async def deliver(
    client: httpx.AsyncClient, shop: FakeShop, topic: str, body: dict[str, object]
) -> str:
    return await shopify.deliver(client, topic, body, shop=shop.domain)


async def test_a_newer_webhook_wins_over_fetched_data_and_the_other_way_round(
    client: httpx.AsyncClient, db: Database, sync_config: Settings, shop: FakeShop
) -> None:
    base = datetime(2026, 3, 1, tzinfo=UTC)
    kept = shop.add_customer(email="shopify@example.com", updated_at=base)
    replaced = shop.add_customer(email="old@example.com", updated_at=base + timedelta(hours=2))
    # The webhook for `kept` is newer than what Shopify's API will show; for
    # `replaced` it is older.
    await deliver(
        client,
        shop,
        "customers/update",
        {
            "id": kept["id"],
            "email": "webhook@example.com",
            "updated_at": iso(base + timedelta(hours=1)),
        },
    )
    await deliver(
        client,
        shop,
        "customers/update",
        {
            "id": replaced["id"],
            "email": "webhook@example.com",
            "updated_at": iso(base + timedelta(hours=1)),
        },
    )

    run, status = await sync(db, sync_config, shop)

    assert status is SyncRunStatus.succeeded
    customers = await stored_customers(db, shop.domain)
    assert customers[str(kept["id"])]["email"] == "webhook@example.com"
    assert customers[str(replaced["id"])]["email"] == "old@example.com"
    assert run.counts.stale == 1 and run.counts.applied == 1


async def test_deleted_and_redacted_rows_stay_so(
    client: httpx.AsyncClient, db: Database, sync_config: Settings, shop: FakeShop
) -> None:
    redacted = shop.add_customer(email="gone@example.com", first_name="Gone", phone="+15550199")
    their_order = shop.add_order(customer_id=redacted["id"], email="gone@example.com")
    deleted_order = shop.add_order(total_price="3.00")
    await deliver(client, shop, "orders/delete", {"id": deleted_order["id"]})
    await deliver(
        client,
        shop,
        "customers/redact",
        {
            "shop_id": 1,
            "shop_domain": shop.domain,
            "customer": {"id": redacted["id"], "email": "gone@example.com", "phone": "+15550199"},
            "orders_to_redact": [their_order["id"]],
        },
    )

    _, status = await sync(db, sync_config, shop)
    shop.update_customer(redacted["id"], first_name="Still")  # later changes too
    shop.update_order(deleted_order["id"], total_price="4.00")
    _, again = await sync(db, sync_config, shop)

    assert status is again is SyncRunStatus.succeeded
    customer = (await stored_customers(db, shop.domain))[str(redacted["id"])]
    assert customer["redacted_at"] is not None
    assert (customer["email"], customer["name"], customer["phone"]) == (None, None, None)
    orders = await stored_orders(db, shop.domain)
    assert orders[str(their_order["id"])]["email"] is None
    assert orders[str(their_order["id"])]["customer_id"] == customer["id"]
    assert orders[str(deleted_order["id"])]["deleted_at"] is not None
    assert orders[str(deleted_order["id"])]["total_price"] is None  # the tombstone was never filled


async def test_the_rate_limit_is_obeyed(
    db: Database, sync_config: Settings, shopify_admin: ShopifyStandIn
) -> None:
    shop = new_shop(shopify_admin, bucket_size=1000, restore_rate=400.0)
    await give_credentials(db, sync_config, shop)
    await sync(db, sync_config, shop)  # the full sync, of nothing
    for number in range(900):
        shop.add_customer(email=f"c{number}@example.com")

    run, status = await sync(db, sync_config, shop)

    assert status is SyncRunStatus.succeeded
    assert len(await stored_customers(db, shop.domain)) == 900
    assert shop.throttled_answers == 0
    assert shop.min_available_seen >= 0
    stored = await queries.fetchrow(db, "SELECT * FROM sync_runs WHERE id = $1", run.id)
    assert stored["throttle_wait_seconds"] > 0  # it waited for the bucket instead
    assert stored["api_cost"] > 0


@pytest.mark.parametrize(
    "fault",
    [
        Fault.status(500),
        Fault.status(502),
        Fault.status(429, retry_after=0.2),
        Fault.throttled(),
        Fault.drop(),
        Fault.slow(0.5),
    ],
    ids=["500", "502", "429", "throttled", "dropped", "slow"],
)
async def test_every_fault_recovers(
    db: Database, sync_config: Settings, shop: FakeShop, shopify_admin: ShopifyStandIn, fault: Fault
) -> None:
    shop.generate(customers=10, orders=10, line_items=1)
    shopify_admin.inject(fault, times=2, shop=shop.domain)
    shopify_admin.inject(Fault.status(503), times=1, kind="bulk_result", shop=shop.domain)

    run, status = await sync(db, sync_config, shop)

    assert status is SyncRunStatus.succeeded, run
    assert len(await stored_customers(db, shop.domain)) == 10
    assert len(await stored_orders(db, shop.domain)) == 10


async def test_an_interrupted_run_resumes_without_losing_or_duplicating(
    db: Database, sync_config: Settings, shopify_admin: ShopifyStandIn
) -> None:
    shop = new_shop(shopify_admin, restore_rate=2000.0)
    await give_credentials(db, sync_config, shop)
    await sync(db, sync_config, shop)
    # Changes spread over an hour and a half after the full sync's watermark (set
    # back: times ahead of the service's clock are refused), so the resumed run's
    # overlap (five minutes before the watermark) covers few of them.
    await queries.execute(db, "UPDATE sync_state SET watermark = now() - interval '2 hours'")
    start = datetime.now(UTC) - timedelta(minutes=119)
    for number in range(600):
        moment = start + timedelta(seconds=10 * number)
        shop.add_customer(email=f"r{number}@example.com", created_at=moment, updated_at=moment)

    def break_after_first_page(run: object) -> None:
        shopify_admin.inject(Fault.status(400), times=1, shop=shop.domain)

    async with runner_for(db, sync_config) as runner:
        _, status = await runner.sync(SyncRequest(shop=shop.domain), break_after_first_page)
    assert status is SyncRunStatus.failed
    partly = len(await stored_customers(db, shop.domain))
    assert 0 < partly < 600

    second, status = await sync(db, sync_config, shop)

    assert status is SyncRunStatus.succeeded
    customers = await stored_customers(db, shop.domain)
    assert len(customers) == 600
    assert {c["email"] for c in customers.values()} == {f"r{n}@example.com" for n in range(600)}
    assert second.counts.fetched < 600 - partly + 60  # from the watermark, not from the start


async def test_two_runs_for_one_shop_at_once_one_runs(
    db: Database, sync_config: Settings, shop: FakeShop
) -> None:
    shop.generate(customers=5, orders=5, line_items=1)
    shop.bulk_polls_to_complete = 5
    async with runner_for(db, sync_config) as first, runner_for(db, sync_config) as second:
        started = await first.begin(SyncRequest(shop=shop.domain))
        with pytest.raises(RunInProgress) as busy:
            await second.begin(SyncRequest(shop=shop.domain))
        assert busy.value.run_id == started.run.id
        results = await asyncio.gather(
            first.execute(started),
            second.sync(SyncRequest(shop=shop.domain)),
            return_exceptions=True,
        )
    assert results[0] is SyncRunStatus.succeeded
    assert isinstance(results[1], RunInProgress)
    assert await queries.fetchval(db, "SELECT count(*) FROM sync_runs") == 1
    assert await queries.fetchval(db, "SELECT count(*) FROM sync_leases") == 0


async def test_a_crashed_runners_lease_expires(
    db: Database, sync_config: Settings, shop: FakeShop
) -> None:
    async with runner_for(db, sync_config) as runner:
        crashed = await runner.begin(SyncRequest(shop=shop.domain))
    await queries.execute(db, "UPDATE sync_leases SET expires_at = now() - interval '1 second'")

    _, status = await sync(db, sync_config, shop)

    assert status is SyncRunStatus.succeeded
    old = await queries.fetchrow(db, "SELECT * FROM sync_runs WHERE id = $1", crashed.run.id)
    assert old["status"] == "failed" and "abandoned" in old["last_error"]


async def test_a_refused_token_fails_the_run_and_the_shop_is_skipped_until_new_credentials(
    db: Database, sync_config: Settings, shop: FakeShop, shopify_admin: ShopifyStandIn
) -> None:
    shopify_admin.inject(Fault.status(401), times=1, shop=shop.domain)

    run, status = await sync(db, sync_config, shop)

    assert status is SyncRunStatus.failed
    stored = await queries.fetchrow(db, "SELECT * FROM sync_runs WHERE id = $1", run.id)
    assert "401" in stored["last_error"]
    graphql_calls = [r for r in shopify_admin.requests if r.path.startswith(f"/{shop.domain}/")]
    # No retry storm: the refused call is not repeated; the orders' export,
    # started side by side with the customers', is started and checked once.
    assert [call.status for call in graphql_calls].count(401) == 1
    assert len(graphql_calls) <= 3
    assert shop.domain not in await shops_to_sync(db)
    with pytest.raises(SyncRefused):
        await sync(db, sync_config, shop)


async def test_an_uninstalled_shop_stops_syncing(
    client: httpx.AsyncClient, db: Database, sync_config: Settings, shop: FakeShop
) -> None:
    assert shop.domain in await shops_to_sync(db)

    await deliver(client, shop, "app/uninstalled", {"id": 1, "myshopify_domain": shop.domain})

    assert shop.domain not in await shops_to_sync(db)
    assert (
        await queries.fetchval(
            db, "SELECT count(*) FROM shop_credentials WHERE shop_id = $1", shop.domain
        )
        == 0
    )
    with pytest.raises(SyncRefused):
        await sync(db, sync_config, shop)


async def test_a_failed_bulk_operation_applies_its_partial_data(
    db: Database, sync_config: Settings, shop: FakeShop
) -> None:
    shop.generate(customers=40, orders=0, line_items=0)
    shop.fail_next_bulk(partial=True)

    run, status = await sync(db, sync_config, shop, resources=(SyncResource.customers,))

    assert status is SyncRunStatus.partial
    assert 0 < len(await stored_customers(db, shop.domain)) < 40
    stored = await queries.fetchrow(db, "SELECT * FROM sync_runs WHERE id = $1", run.id)
    assert stored["status"] == "partial" and "partial data" in stored["note"]
    again, status = await sync(db, sync_config, shop)  # still no full sync: it runs again
    assert again.kind.value == "full" and status is SyncRunStatus.succeeded
    assert len(await stored_customers(db, shop.domain)) == 40


async def test_the_finish_webhook_ends_the_wait_early(
    client: httpx.AsyncClient,
    db: Database,
    sync_config: Settings,
    shop: FakeShop,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.shopify import bulk

    monkeypatch.setattr(bulk, "POLL_FIRST_SECONDS", 60.0)
    shop.bulk_polls_to_complete = 2
    shop.generate(customers=3, orders=0, line_items=0)

    async def announce() -> None:
        while not shop.bulk_operations:  # noqa: ASYNC110 (the stand-in runs in another thread)
            await asyncio.sleep(0.05)
        await deliver(
            client,
            shop,
            "bulk_operations/finish",
            {
                "admin_graphql_api_id": shop.bulk_operations[0].id,
                "completed_at": None,
                "created_at": None,
                "error_code": None,
                "status": "completed",
                "type": "query",
            },
        )

    started = asyncio.get_running_loop().time()
    (_, status), _ = await asyncio.gather(
        sync(db, sync_config, shop, resources=(SyncResource.customers,)),
        announce(),
    )

    assert status is SyncRunStatus.succeeded
    assert asyncio.get_running_loop().time() - started < 30
    assert len(await stored_customers(db, shop.domain)) == 3


async def test_no_token_in_logs_answers_or_the_database(
    client: httpx.AsyncClient,
    db: Database,
    sync_config: Settings,
    shop: FakeShop,
    shopify_admin: ShopifyStandIn,
    caplog: pytest.LogCaptureFixture,
) -> None:
    shop.generate(customers=3, orders=3, line_items=1)
    shopify_admin.inject(Fault.status(500), times=1, shop=shop.domain)
    run, _ = await sync(db, sync_config, shop)
    answers = [
        await client.get(f"/sync/runs/{run.id}", headers=ADMIN),
        await client.get(f"/shops/{shop.domain}/sync", headers=ADMIN),
        await client.get("/metrics"),
        await client.get("/schema/openapi.json"),
    ]

    for answer in answers:
        assert shop.token not in answer.text
    assert shop.token not in caplog.text
    dump = await queries.fetch(
        db,
        "SELECT to_jsonb(t)::text AS row FROM shop_credentials t"
        " UNION ALL SELECT to_jsonb(t)::text FROM sync_runs t"
        " UNION ALL SELECT to_jsonb(t)::text FROM webhook_events t",
    )
    assert dump and all(shop.token not in row["row"] for row in dump)
    bulk_downloads = [r for r in shopify_admin.requests if r.kind == "bulk_result"]
    assert bulk_downloads
    assert all("x-shopify-access-token" not in r.headers for r in bulk_downloads)
    assert json.dumps(repr(run)).find(shop.token) == -1


ADMIN = {"Authorization": "Bearer test-admin-token"}


async def test_the_next_run_deletes_what_a_killed_run_staged(
    db: Database, sync_config: Settings, shop: FakeShop
) -> None:
    killed = await queries.fetchval(
        db,
        "INSERT INTO sync_runs (shop_id, kind, resource, status, id)"
        " VALUES ($1, 'full', 'orders', 'running', gen_random_uuid()) RETURNING id",
        shop.domain,
    )
    await queries.execute(
        db,
        "INSERT INTO sync_bulk_rows (shop_id, run_id, gid, parent_gid, document)"
        " VALUES ($1, $2, 'gid://shopify/Order/1', NULL, '{\"email\": \"staged@example.com\"}')",
        shop.domain,
        killed,
    )

    _, status = await sync(db, sync_config, shop)

    assert status is SyncRunStatus.succeeded
    assert await queries.fetchval(db, "SELECT count(*) FROM sync_bulk_rows") == 0
    assert await queries.where_found(db, "staged@example.com") == []
