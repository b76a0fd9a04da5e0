"""Customer events: written with their change, exactly once; erased with the customer;
read from the feed in order, behind a cursor that survives a restart.

The relay to NATS: tests/integration/test_events_relay.py.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.config import Settings
from app.db.database import Database
from app.outbox.retention import delete_expired
from tests.support import queries, shopify
from tests.support.asgi import concurrent_client
from tests.support.customer_events import events, feed
from tests.support.ops import ADMIN
from tests.support.shopify import OTHER_SHOP, SHOP, deliver

CUSTOMER = 9007199254740993  # above 2^53
FEED = f"/shops/{SHOP}/customer-events"


def real_order(order_id: int, customer_id: int = CUSTOMER, **fields: Any) -> dict[str, Any]:
    """A counted order: Shopify's sample is a test order, this one is not."""
    return shopify.order(order_id, customer_id=customer_id, test=False, **fields)


def tags_added(tags: list[str], occurred_at: str, customer_id: int = CUSTOMER) -> dict[str, Any]:
    return {
        "customerId": f"gid://shopify/Customer/{customer_id}",
        "tags": tags,
        "occurredAt": occurred_at,
    }


@pytest.fixture
async def live(db: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with concurrent_client(settings) as client:
        yield client


# -- first_order ---------------------------------------------------------------------------------


async def test_fifty_parallel_copies_of_a_first_order_announce_it_once(
    live: httpx.AsyncClient, db: Database
) -> None:
    same_delivery = [shopify.post(live, "orders/create", real_order(1), webhook_id="w")] * 25
    # The same order again under other webhook ids (orders/paid, a retry with a new id...).
    other_ids = [
        shopify.post(live, "orders/paid", real_order(1), webhook_id=f"w{n}") for n in range(25)
    ]

    answers = await asyncio.gather(*same_delivery, *other_ids)

    assert all(answer.status_code == 200 for answer in answers)
    (event,) = await events(db, kind="first_order")
    assert event["customer"] == str(CUSTOMER)
    assert event["data"] == {"order_id": "1", "order_created_at": "2026-01-01T14:00:00+00:00"}


async def test_first_order_once_across_later_orders_replays_and_groups(
    live: httpx.AsyncClient, client: httpx.AsyncClient, db: Database
) -> None:
    assert await deliver(client, "orders/create", real_order(1)) == "processed"
    # A later order, the first one updated, and a group of orders of a new customer at once.
    assert await deliver(client, "orders/create", real_order(2)) == "processed"
    updated = real_order(1, updated_at="2026-01-02T10:00:00-05:00", financial_status="refunded")
    assert await deliver(client, "orders/updated", updated) == "processed"
    group = [
        shopify.post(live, "orders/create", real_order(100 + n, customer_id=77)) for n in range(8)
    ]
    assert {answer.json()["status"] for answer in await asyncio.gather(*group)} == {"processed"}

    replay = await client.post("/replay", json={"shop": SHOP}, headers=ADMIN)

    assert replay.status_code == 200
    assert (replay.json()["matched"], replay.json()["failed"]) == (11, 0)
    announced = Counter(event["customer"] for event in await events(db, kind="first_order"))
    assert announced == {str(CUSTOMER): 1, "77": 1}


async def test_test_and_cancelled_orders_are_not_counted(
    client: httpx.AsyncClient, db: Database
) -> None:
    assert await deliver(client, "orders/create", shopify.order(1, customer_id=5)) == "processed"
    cancelled = real_order(2, customer_id=5, cancelled_at="2026-01-01T12:00:00Z")
    assert await deliver(client, "orders/create", cancelled) == "processed"
    assert await events(db, kind="first_order") == []  # the sample order is a test order

    assert await deliver(client, "orders/create", real_order(3, customer_id=5)) == "processed"

    (event,) = await events(db, kind="first_order")
    assert (event["customer"], event["data"]["order_id"]) == ("5", "3")


async def test_no_first_order_for_a_deleted_customer(
    client: httpx.AsyncClient, db: Database
) -> None:
    deleted = shopify.customer_deleted(6)
    assert await deliver(client, "customers/delete", deleted) == "processed"

    assert await deliver(client, "orders/create", real_order(1, customer_id=6)) == "processed"

    assert await events(db) == []


# -- tag_added -----------------------------------------------------------------------------------


async def test_tags_added_from_customer_payloads_and_deltas(
    client: httpx.AsyncClient, db: Database
) -> None:
    first = shopify.customer(CUSTOMER, tags="vip, newsletter")
    assert await deliver(client, "customers/create", first) == "processed"
    same_again = shopify.customer(
        CUSTOMER, tags="newsletter, vip", updated_at="2026-01-02T00:00:00Z"
    )
    assert await deliver(client, "customers/update", same_again) == "processed"
    one_more = shopify.customer(CUSTOMER, tags="vip, gold", updated_at="2026-01-03T00:00:00Z")
    assert await deliver(client, "customers/update", one_more) == "processed"
    delta = tags_added(["gold", "wholesale"], "2026-01-04T00:00:00Z")
    assert await deliver(client, "customer.tags_added", delta, "delta") == "processed"
    assert await deliver(client, "customer.tags_added", delta, "delta") == "duplicate"
    assert await deliver(client, "customer.tags_added", delta, "delta-again") == "stale"
    older = tags_added(["gold"], "2026-01-01T00:00:00Z")
    assert await deliver(client, "customer.tags_added", older) == "stale"

    tags = [event["data"]["tag"] for event in await events(db, kind="tag_added")]
    assert tags == ["newsletter", "vip", "gold", "wholesale"]


# -- redaction -----------------------------------------------------------------------------------


async def seed_events(client: httpx.AsyncClient, shop: str = SHOP) -> None:
    customer = shopify.customer(CUSTOMER, tags="vip")
    assert await deliver(client, "customers/create", customer, shop=shop) == "processed"
    assert await deliver(client, "orders/create", real_order(1), shop=shop) == "processed"
    bystander = real_order(2, customer_id=4242)
    assert await deliver(client, "orders/create", bystander, shop=shop) == "processed"


async def test_customers_redact_erases_the_customers_events(
    client: httpx.AsyncClient, db: Database
) -> None:
    await seed_events(client)
    await seed_events(client, OTHER_SHOP)
    assert len(await events(db)) == 3

    redact = shopify.customers_redact(CUSTOMER, orders_to_redact=[1])
    assert await deliver(client, "customers/redact", redact) == "processed"

    assert [event["customer"] for event in await events(db)] == ["4242"]
    assert len(await events(db, OTHER_SHOP)) == 3
    # And later orders of the redacted customer announce nothing.
    assert await deliver(client, "orders/create", real_order(3)) == "processed"
    assert [event["customer"] for event in await events(db)] == ["4242"]


async def test_shop_redact_erases_the_shops_events(client: httpx.AsyncClient, db: Database) -> None:
    await seed_events(client)
    await seed_events(client, OTHER_SHOP)

    assert await deliver(client, "shop/redact", shopify.shop_redact()) == "processed"

    assert await events(db) == []
    assert len(await events(db, OTHER_SHOP)) == 3


# -- the feed ------------------------------------------------------------------------------------


async def read(client: httpx.AsyncClient, count: int, **params: Any) -> list[dict[str, Any]]:
    """`count` events from the feed, page by page (`limit`), waiting for each page.

    An event shows once every transaction older than its own has ended, in any
    database of the server (other tests' included): it may take a moment.
    """
    seen: list[dict[str, Any]] = []
    for _ in range(20):
        page = await feed(client, wait=5, **params)
        seen += page["events"]
        params["after"] = page["next"]
        if len(seen) >= count:
            break
    return seen


async def test_the_feed_pages_through_events_in_order(
    client: httpx.AsyncClient, db: Database
) -> None:
    for number in range(5):
        order = real_order(number + 1, customer_id=1000 + number)
        assert await deliver(client, "orders/create", order) == "processed"
    assert await deliver(client, "customers/update", shopify.customer(1000, tags="a, b")) == (
        "processed"
    )

    seen = await read(client, 7, limit=3)

    assert [event["kind"] for event in seen] == ["first_order"] * 5 + ["tag_added"] * 2
    assert [event["id"] for event in seen] == sorted(event["id"] for event in seen)
    assert seen[0] == {
        "id": seen[0]["id"],
        "shop": SHOP,
        "customer_id": "1000",
        "kind": "first_order",
        "occurred_at": seen[0]["occurred_at"],
        "data": {"order_id": "1", "order_created_at": "2026-01-01T14:00:00Z"},
    }
    assert [event["data"] for event in seen[5:]] == [{"tag": "a"}, {"tag": "b"}]
    only_tags = await feed(client, kinds="tag_added")
    assert [event["data"]["tag"] for event in only_tags["events"]] == ["a", "b"]
    assert (await feed(client, after=only_tags["next"], kinds="tag_added"))["events"] == []
    # The other shop's feed is its own.
    other = await client.get(f"/shops/{OTHER_SHOP}/customer-events", headers=ADMIN)
    assert other.json()["events"] == []


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"after": "bm90LWEtY3Vyc29y"}, "cursor is not one this service issued"),
        ({"after": "%%%"}, "cursor is not one this service issued"),
        ({"after": "x" * 100}, "cursor is not one this service issued"),
        ({"kinds": "first_order,cart_abandoned"}, "kinds: 'cart_abandoned' is not one of"),
    ],
)
async def test_the_feed_refuses_bad_cursors_and_kinds(
    client: httpx.AsyncClient, db: Database, params: dict[str, str], detail: str
) -> None:
    response = await client.get(FEED, params=params, headers=ADMIN)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail)


async def test_the_feed_is_admin_only(client: httpx.AsyncClient, db: Database) -> None:
    assert (await client.get(FEED)).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await client.get(FEED, headers=wrong)).status_code == 401
    assert (await client.get("/shops/nope/customer-events", headers=ADMIN)).status_code == 400


async def test_a_waiting_reader_gets_the_event_when_it_comes(
    live: httpx.AsyncClient, db: Database
) -> None:
    empty = await live.get(FEED, params={"wait": 0.5}, headers=ADMIN)
    assert empty.json()["events"] == []
    waiting = asyncio.create_task(
        live.get(FEED, params={"wait": 20, "after": empty.json()["next"]}, headers=ADMIN)
    )
    await asyncio.sleep(0.5)
    assert not waiting.done()
    # While the reader waits it holds no database connection.
    busy = await queries.fetchval(
        db,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND state <> 'idle' AND pid <> pg_backend_pid() AND query LIKE '%customer_events%'",
    )
    assert busy == 0
    started = asyncio.get_running_loop().time()

    assert await deliver(live, "orders/create", real_order(1)) == "processed"
    answer = await waiting

    assert asyncio.get_running_loop().time() - started < 5
    assert [event["kind"] for event in answer.json()["events"]] == ["first_order"]


async def test_the_cursor_survives_a_restart(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    assert await deliver(client, "orders/create", real_order(1, customer_id=1)) == "processed"
    first = await feed(client, wait=5)
    assert [event["customer_id"] for event in first["events"]] == ["1"]
    cursor = first["next"]
    assert await deliver(client, "orders/create", real_order(2, customer_id=2)) == "processed"

    async with AsyncTestClient(app=create_app(settings)) as restarted:
        after_restart = await read(restarted, 1, after=cursor)

    assert [event["customer_id"] for event in after_restart] == ["2"]


async def test_an_event_committed_late_is_not_skipped(
    client: httpx.AsyncClient, db: Database, database_url: str
) -> None:
    """A transaction that wrote an event earlier but commits later: the feed waits for it."""
    slow = await asyncpg.connect(database_url)
    try:
        await slow.execute("BEGIN")
        await slow.execute(
            "INSERT INTO customers (shop_id, shopify_id, tags, order_count, total_spent)"
            " VALUES ($1, 'slow', ARRAY['early'], 0, 0)",
            SHOP,
        )
        assert await deliver(client, "customers/create", shopify.customer(8, tags="late")) == (
            "processed"
        )
        while_open = await feed(client)
        await slow.execute("COMMIT")
    finally:
        await slow.close()

    after_commit = await read(client, 2, after=while_open["next"])

    assert while_open["events"] == []
    assert [event["data"]["tag"] for event in after_commit] == ["early", "late"]


# -- retention -----------------------------------------------------------------------------------


async def test_retention_deletes_only_old_events(client: httpx.AsyncClient, db: Database) -> None:
    for number in range(3):
        order = real_order(number + 1, customer_id=100 + number)
        assert await deliver(client, "orders/create", order) == "processed"
    await queries.execute(
        db,
        "UPDATE customer_events SET occurred_at = now() - interval '31 days'"
        " WHERE customer_shopify_id IN ('100', '101')",
    )

    deleted = await delete_expired(db, 30)

    assert deleted == 2
    assert [event["customer"] for event in await events(db)] == ["102"]
    assert await delete_expired(db, 30) == 0


async def test_the_relay_lag_is_in_the_metrics(client: httpx.AsyncClient, db: Database) -> None:
    assert await deliver(client, "orders/create", real_order(1)) == "processed"
    await queries.execute(
        db,
        "INSERT INTO customer_event_relays (name, updated_at) VALUES ('TEST', now())",
    )
    await queries.execute(db, "UPDATE customer_events SET occurred_at = now() - interval '90 s'")

    text = (await client.get("/metrics")).text

    lines = dict(
        line.split(" ", 1) for line in text.splitlines() if line.startswith("shopify_ingest_events")
    )
    assert float(lines["shopify_ingest_events_relay_lag_events"]) == 1
    assert 85 <= float(lines["shopify_ingest_events_relay_lag_seconds"]) < 200
