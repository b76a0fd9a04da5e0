"""The deployed service, end to end: the image's command, PgBouncer, real HTTP.

One stack for the module (app/devtools/stack.py): an embedded PostgreSQL (a
database on the Citus coordinator when CITUS_TEST_URL is set),
PgBouncer in transaction mode in front of it, `python -m app migrate`, then
`python -m app serve` with two workers. Every test uses shops of its own, so
no test sees another's rows. The graceful-shutdown test stops the service;
a later test gets a fresh one.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from app.devtools.pgbouncer import free_port
from app.devtools.stack import Stack
from app.webhooks.handlers import HANDLERS
from tests.e2e.deployment import dockerfile_stages, healthcheck_command
from tests.support import citus, shopify

pytestmark = [pytest.mark.pgbouncer, pytest.mark.timed, pytest.mark.timeout(120)]

LATER = "2026-01-02T10:00:00-05:00"
EARLIER = "2026-01-01T10:00:00-05:00"


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    # On a Citus cluster (CITUS_TEST_URL) the stack's database is an empty one
    # on the coordinator, prepared like the integration tests' and distributed
    # by the stack's own `migrate`; otherwise the stack starts its PostgreSQL.
    database = request.getfixturevalue("create_database")(migrated=False) if citus.URL else None
    # The graceful-shutdown test keeps deliveries waiting on a lock while it sends
    # them one by one and then stops the service: a statement timeout of a few
    # seconds keeps the first of them from timing out on a busy machine.
    with Stack(workers=2, env={"DB_STATEMENT_TIMEOUT": "5"}, database_url=database) as running:
        yield running


@pytest.fixture(autouse=True)
def service_running(stack: Stack) -> None:
    """The graceful-shutdown test stops the service; whatever runs after it gets a new one."""
    if not stack.running:
        stack.start_service()


@pytest.fixture(scope="module")
async def db(stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the stack's PostgreSQL, to check what the service wrote."""
    connection = await asyncpg.connect(stack.postgres_url, timeout=10)
    yield connection
    await connection.close()


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        yield http


def unique_shop() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}.myshopify.com"


async def deliver(
    client: httpx.AsyncClient,
    topic: str,
    payload: dict[str, Any],
    shop: str,
    *,
    expected: str = "processed",
    webhook_id: str | None = None,
) -> str:
    """POST a signed delivery; assert the answer; return its webhook id."""
    webhook_id = webhook_id or str(uuid.uuid4())
    response = await shopify.post(client, topic, payload, shop=shop, webhook_id=webhook_id)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": expected, "webhook_id": webhook_id}
    return webhook_id


async def ledger(db: asyncpg.Connection, shop: str, webhook_id: str) -> asyncpg.Record:
    rows = await db.fetch(
        "SELECT topic, status, payload::text AS payload FROM webhook_events"
        " WHERE shop_id = $1 AND webhook_id = $2",
        shop,
        webhook_id,
    )
    assert len(rows) == 1, rows
    return rows[0]


async def customer_row(db: asyncpg.Connection, shop: str, customer_id: int) -> asyncpg.Record:
    row = await db.fetchrow(
        "SELECT * FROM customers WHERE shop_id = $1 AND shopify_id = $2", shop, str(customer_id)
    )
    assert row is not None, f"no customer {customer_id} in {shop}"
    return row


async def order_row(db: asyncpg.Connection, shop: str, order_id: int) -> asyncpg.Record:
    row = await db.fetchrow(
        "SELECT * FROM orders WHERE shop_id = $1 AND shopify_id = $2", shop, str(order_id)
    )
    assert row is not None, f"no order {order_id} in {shop}"
    return row


async def shop_row(db: asyncpg.Connection, shop: str) -> asyncpg.Record:
    row = await db.fetchrow("SELECT * FROM shops WHERE shop_id = $1", shop)
    assert row is not None, f"no shop {shop}"
    return row


# --- every handled topic ------------------------------------------------------

Scenario = Callable[[httpx.AsyncClient, asyncpg.Connection, str, str], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(*topics: str) -> Callable[[Scenario], Scenario]:
    def register(function: Scenario) -> Scenario:
        for topic in topics:
            SCENARIOS[topic] = function
        return function

    return register


@scenario("customers/create")
async def _customer_created(
    client: httpx.AsyncClient, db: asyncpg.Connection, shop: str, topic: str
) -> None:
    payload = shopify.customer(5001, email="ann@example.com", first_name="Ann", last_name="Lee")
    webhook_id = await deliver(client, "customers/create", payload, shop)
    row = await customer_row(db, shop, 5001)
    assert (row["email"], row["name"], row["deleted_at"]) == ("ann@example.com", "Ann Lee", None)
    recorded = await ledger(db, shop, webhook_id)
    assert (recorded["topic"], recorded["status"]) == ("customers/create", "processed")
    assert json.loads(recorded["payload"])["id"] == 5001
    assert (await shop_row(db, shop))["first_seen_at"] is not None


@scenario("customers/update", "customers/enable", "customers/disable")
async def _customer_changed(
    client: httpx.AsyncClient, db: asyncpg.Connection, shop: str, topic: str
) -> None:
    await deliver(client, "customers/create", shopify.customer(5002, updated_at=EARLIER), shop)
    state = {"customers/enable": "enabled", "customers/disable": "disabled"}.get(topic, "enabled")
    changed = shopify.customer(5002, updated_at=LATER, email="new@example.com")
    changed["state"] = state
    webhook_id = await deliver(client, topic, changed, shop)
    row = await customer_row(db, shop, 5002)
    assert row["email"] == "new@example.com"
    assert row["shopify_updated_at"].isoformat() == "2026-01-02T15:00:00+00:00"
    assert (await ledger(db, shop, webhook_id))["topic"] == topic


@scenario("customers/delete")
async def _customer_deleted(
    client: httpx.AsyncClient, db: asyncpg.Connection, shop: str, topic: str
) -> None:
    await deliver(client, "customers/create", shopify.customer(5003), shop)
    deleted = shopify.fixture("customers_delete")
    deleted["id"] = 5003
    await deliver(client, "customers/delete", deleted, shop)
    assert (await customer_row(db, shop, 5003))["deleted_at"] is not None


@scenario("orders/create")
async def _order_created(
    client: httpx.AsyncClient, db: asyncpg.Connection, shop: str, topic: str
) -> None:
    payload = shopify.order(6001, customer_id=5101, total_price="50.00")
    webhook_id = await deliver(client, "orders/create", payload, shop)
    order = await order_row(db, shop, 6001)
    customer = await customer_row(db, shop, 5101)
    assert order["total_price"] == 50 and order["customer_id"] == customer["id"]
    assert (customer["order_count"], customer["total_spent"]) == (1, 50)
    assert (await ledger(db, shop, webhook_id))["status"] == "processed"


@scenario(
    "orders/updated",
    "orders/paid",
    "orders/fulfilled",
    "orders/partially_fulfilled",
)
async def _order_changed(
    client: httpx.AsyncClient, db: asyncpg.Connection, shop: str, topic: str
) -> None:
    created = shopify.order(6002, customer_id=5102, total_price="50.00", financial_status="pending")
    await deliver(client, "orders/create", created, shop)
    changed = shopify.order(
        6002,
        customer_id=5102,
        updated_at=LATER,
        total_price="75.00",
        financial_status="paid" if topic != "orders/updated" else "pending",
    )
    fulfillment = {"orders/fulfilled": "fulfilled", "orders/partially_fulfilled": "partial"}
    changed["fulfillment_status"] = fulfillment.get(topic)
    await deliver(client, topic, changed, shop)
    order = await order_row(db, shop, 6002)
    assert order["total_price"] == 75
    assert order["financial_status"] == changed["financial_status"]
    assert order["fulfillment_status"] == changed["fulfillment_status"]
    assert (await customer_row(db, shop, 5102))["total_spent"] == 75


@scenario("orders/cancelled")
async def _order_cancelled(
    client: httpx.AsyncClient, db: asyncpg.Connection, shop: str, topic: str
) -> None:
    await deliver(client, "orders/create", shopify.order(6003, customer_id=5103), shop)
    cancelled = shopify.order(
        6003, customer_id=5103, updated_at=LATER, cancelled_at=LATER, financial_status="voided"
    )
    await deliver(client, "orders/cancelled", cancelled, shop)
    assert (await order_row(db, shop, 6003))["cancelled_at"] is not None
    customer = await customer_row(db, shop, 5103)
    assert (customer["order_count"], customer["total_spent"]) == (0, 0)


@scenario("orders/delete")
async def _order_deleted(
    client: httpx.AsyncClient, db: asyncpg.Connection, shop: str, topic: str
) -> None:
    await deliver(client, "orders/create", shopify.order(6004, customer_id=5104), shop)
    deleted = shopify.fixture("orders_delete")
    deleted["id"] = 6004
    await deliver(client, "orders/delete", deleted, shop)
    assert (await order_row(db, shop, 6004))["deleted_at"] is not None
    assert (await customer_row(db, shop, 5104))["order_count"] == 0


@scenario("customers/data_request")
async def _data_request(
    client: httpx.AsyncClient, db: asyncpg.Connection, shop: str, topic: str
) -> None:
    payload = shopify.fixture("customers_data_request")
    payload["shop_domain"] = shop
    webhook_id = await deliver(client, "customers/data_request", payload, shop)
    recorded = await ledger(db, shop, webhook_id)
    assert (recorded["topic"], recorded["status"]) == ("customers/data_request", "processed")
    assert json.loads(recorded["payload"])["data_request"] == {"id": 9999}
    assert (await shop_row(db, shop))["shopify_shop_id"] == "954889"


@scenario("customers/redact")
async def _customer_redacted(
    client: httpx.AsyncClient, db: asyncpg.Connection, shop: str, topic: str
) -> None:
    created = shopify.customer(191167, email="john@example.com", first_name="John")
    created_id = await deliver(client, "customers/create", created, shop)
    payload = shopify.fixture("customers_redact")
    payload["shop_domain"] = shop
    await deliver(client, "customers/redact", payload, shop)
    customer = await customer_row(db, shop, 191167)
    assert (customer["email"], customer["name"]) == (None, None)
    assert customer["redacted_at"] is not None
    assert "john@example.com" not in (await ledger(db, shop, created_id))["payload"]


@scenario("shop/redact")
async def _shop_redacted(
    client: httpx.AsyncClient, db: asyncpg.Connection, shop: str, topic: str
) -> None:
    await deliver(client, "orders/create", shopify.order(6005, customer_id=5105), shop)
    payload = shopify.fixture("shop_redact")
    payload["shop_domain"] = shop
    webhook_id = await deliver(client, "shop/redact", payload, shop)
    for table in ("orders", "customers"):
        count = await db.fetchval(f"SELECT count(*) FROM {table} WHERE shop_id = $1", shop)
        assert count == 0, table
    remaining = await db.fetch("SELECT webhook_id FROM webhook_events WHERE shop_id = $1", shop)
    assert [row["webhook_id"] for row in remaining] == [webhook_id]
    assert (await shop_row(db, shop))["redacted_at"] is not None


@scenario("app/uninstalled")
async def _uninstalled(
    client: httpx.AsyncClient, db: asyncpg.Connection, shop: str, topic: str
) -> None:
    await deliver(client, "app/uninstalled", shopify.fixture("app_uninstalled"), shop)
    row = await shop_row(db, shop)
    assert row["uninstalled_at"] is not None
    assert row["shopify_shop_id"] == "548380009"


@scenario("customer.tags_added", "customer.tags_removed")
async def _tags_changed(
    client: httpx.AsyncClient, db: asyncpg.Connection, shop: str, topic: str
) -> None:
    customer = "gid://shopify/Customer/5201"
    added = {"customerId": customer, "tags": ["vip", "wholesale"], "occurredAt": EARLIER}
    await deliver(client, "customer.tags_added", added, shop)
    if topic == "customer.tags_removed":
        removed = {"customerId": customer, "tags": ["vip"], "occurredAt": LATER}
        await deliver(client, topic, removed, shop)
    expected = ["wholesale"] if topic == "customer.tags_removed" else ["vip", "wholesale"]
    assert (await customer_row(db, shop, 5201))["tags"] == expected


@scenario("customers_email_marketing_consent/update", "customers_marketing_consent/update")
async def _consent_changed(
    client: httpx.AsyncClient, db: asyncpg.Connection, shop: str, topic: str
) -> None:
    consent = {"state": "subscribed", "opt_in_level": "single_opt_in", "consent_updated_at": LATER}
    if topic == "customers_marketing_consent/update":
        payload = {"id": 5202, "phone": "+15550100", "sms_marketing_consent": consent}
        channel = "sms"
    else:
        payload = {
            "customer_id": 5202,
            "email_address": "a@example.com",
            "email_marketing_consent": consent,
        }
        channel = "email"
    await deliver(client, topic, payload, shop)
    row = await customer_row(db, shop, 5202)
    assert row[f"{channel}_marketing_state"] == "subscribed"
    assert row[f"{channel}_marketing_opt_in_level"] == "single_opt_in"


@scenario("customers/purchasing_summary")
async def _purchasing_summary(
    client: httpx.AsyncClient, db: asyncpg.Connection, shop: str, topic: str
) -> None:
    payload = {
        "customerId": "gid://shopify/Customer/5203",
        "numberOfOrders": 3,
        "amountSpent": {"amount": "120.50", "currencyCode": "USD"},
        "lastOrderId": "gid://shopify/Order/1",
        "occurredAt": LATER,
    }
    await deliver(client, topic, payload, shop)
    row = await customer_row(db, shop, 5203)
    assert (row["shopify_order_count"], row["shopify_amount_spent"]) == (3, Decimal("120.50"))


@scenario("customers/merge")
async def _merged(client: httpx.AsyncClient, db: asyncpg.Connection, shop: str, topic: str) -> None:
    await deliver(client, "orders/create", shopify.order(6206, customer_id=5205), shop)
    await deliver(client, "customers/create", shopify.customer(5204), shop)
    payload = {
        "admin_graphql_api_customer_kept_id": "gid://shopify/Customer/5204",
        "admin_graphql_api_customer_deleted_id": "gid://shopify/Customer/5205",
        "admin_graphql_api_job_id": None,
        "status": "completed",
        "errors": [],
    }
    await deliver(client, topic, payload, shop)
    kept, gone = await customer_row(db, shop, 5204), await customer_row(db, shop, 5205)
    assert gone["merged_into"] == "5204" and gone["merged_at"] is not None
    assert (await order_row(db, shop, 6206))["customer_id"] == kept["id"]
    assert kept["order_count"] == 1


@scenario("bulk_operations/finish")
async def _bulk_finished(
    client: httpx.AsyncClient, db: asyncpg.Connection, shop: str, topic: str
) -> None:
    payload = {
        "admin_graphql_api_id": "gid://shopify/BulkOperation/147595010",
        "completed_at": LATER,
        "created_at": EARLIER,
        "error_code": None,
        "status": "completed",
        "type": "query",
    }
    webhook_id = await deliver(client, topic, payload, shop)
    recorded = await ledger(db, shop, webhook_id)
    assert recorded["status"] == "processed"
    assert (
        json.loads(recorded["payload"])["admin_graphql_api_id"] == payload["admin_graphql_api_id"]
    )


def test_every_handled_topic_has_a_scenario() -> None:
    assert set(SCENARIOS) == set(HANDLERS)


@pytest.mark.parametrize("topic", sorted(SCENARIOS))
async def test_topic_is_applied(
    topic: str, client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    await SCENARIOS[topic](client, db, unique_shop(), topic)


# --- duplicates and signatures ------------------------------------------------


async def test_a_repeated_delivery_is_recorded_once(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    shop, webhook_id = unique_shop(), str(uuid.uuid4())
    payload = shopify.order(7001)
    await deliver(client, "orders/create", payload, shop, webhook_id=webhook_id)
    await deliver(
        client, "orders/create", payload, shop, webhook_id=webhook_id, expected="duplicate"
    )
    assert await db.fetchval("SELECT count(*) FROM webhook_events WHERE shop_id = $1", shop) == 1
    assert await db.fetchval("SELECT count(*) FROM orders WHERE shop_id = $1", shop) == 1


async def test_concurrent_copies_of_a_delivery_are_applied_once(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    shop, webhook_id = unique_shop(), str(uuid.uuid4())
    body = json.dumps(shopify.order(7002)).encode()
    headers = shopify.headers("orders/create", body, shop=shop, webhook_id=webhook_id)
    responses = await asyncio.gather(
        *(client.post("/webhooks/shopify", content=body, headers=headers) for _ in range(6))
    )
    assert [response.status_code for response in responses] == [200] * 6
    statuses = Counter(response.json()["status"] for response in responses)
    assert statuses == {"processed": 1, "duplicate": 5}
    assert await db.fetchval("SELECT count(*) FROM webhook_events WHERE shop_id = $1", shop) == 1
    assert await db.fetchval("SELECT count(*) FROM orders WHERE shop_id = $1", shop) == 1


@pytest.mark.parametrize("forgery", ["wrong secret", "no signature", "body changed"])
async def test_a_bad_signature_is_refused_and_not_recorded(
    forgery: str, client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    shop = unique_shop()
    body = json.dumps(shopify.order(7003)).encode()
    headers = shopify.headers("orders/create", body, shop=shop)
    if forgery == "wrong secret":
        headers = shopify.headers("orders/create", body, shop=shop, secret="not-the-secret")
    elif forgery == "no signature":
        del headers["X-Shopify-Hmac-Sha256"]
    else:
        changed = body.replace(b'"100.00"', b'"1.00"')
        assert changed != body
        body = changed
    response = await client.post("/webhooks/shopify", content=body, headers=headers)
    assert response.status_code == 401, response.text
    assert await db.fetchval("SELECT count(*) FROM webhook_events WHERE shop_id = $1", shop) == 0
    assert await db.fetchval("SELECT count(*) FROM orders WHERE shop_id = $1", shop) == 0


async def test_the_previous_secret_is_still_accepted(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    shop = unique_shop()
    response = await shopify.post(
        client, "orders/create", shopify.order(7004), shop=shop, secret=shopify.PREVIOUS_SECRET
    )
    assert response.status_code == 200, response.text
    assert (await order_row(db, shop, 7004))["shopify_id"] == "7004"


# --- probes -------------------------------------------------------------------


async def test_liveness_and_readiness(client: httpx.AsyncClient) -> None:
    live = await client.get("/health")
    ready = await client.get("/health/ready")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


def test_the_image_healthcheck_command_passes_only_against_a_live_service(stack: Stack) -> None:
    check = healthcheck_command(dockerfile_stages()[-1])

    def run(port: int) -> int:
        env = {**stack.base_environment(), "PORT": str(port)}
        return subprocess.run(check, env=env, capture_output=True, timeout=20).returncode

    assert stack.port is not None
    assert run(stack.port) == 0
    assert run(free_port()) != 0


# --- graceful shutdown ----------------------------------------------------------

STREAMS = 12  # concurrent senders of unique deliveries
HELD = 6  # deliveries kept in flight (waiting on a lock) when SIGTERM arrives
EXIT_WITHIN = 15.0  # seconds from SIGTERM to the main process's exit


@dataclass(frozen=True)
class Sent:
    webhook_id: str
    order_id: int
    started: float
    finished: float
    outcome: int | str  # HTTP status, or the transport error's class name

    @property
    def accepted(self) -> bool:
        return isinstance(self.outcome, int) and 200 <= self.outcome < 300


async def send_order(client: httpx.AsyncClient, shop: str, order_id: int, webhook_id: str) -> Sent:
    body = json.dumps(shopify.order(order_id)).encode()
    headers = shopify.headers("orders/create", body, shop=shop, webhook_id=webhook_id)
    started = time.monotonic()
    outcome: int | str
    try:
        response = await client.post("/webhooks/shopify", content=body, headers=headers)
        outcome = response.status_code
    except httpx.TransportError as error:
        outcome = type(error).__name__
    return Sent(webhook_id, order_id, started, time.monotonic(), outcome)


async def eventually(condition: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def advisory_lock_waiters(key: int) -> str:
    """SQL counting sessions waiting for the bigint advisory lock `key`."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        f" AND classid = {unsigned >> 32} AND objid = {unsigned & 0xFFFFFFFF} AND objsubid = 1"
    )


async def test_sigterm_finishes_deliveries_in_flight_and_loses_none(
    stack: Stack, db: asyncpg.Connection
) -> None:
    stream_shop, held_shop = unique_shop(), unique_shop()
    numbers = itertools.count(1)
    streamed: list[Sent] = []
    stop_sending = asyncio.Event()

    async def stream(client: httpx.AsyncClient) -> None:
        while not stop_sending.is_set():
            n = next(numbers)
            streamed.append(await send_order(client, stream_shop, 10**9 + n, f"stream-{n}"))

    async def stream_accepted(count: int) -> bool:
        return sum(sent.accepted for sent in streamed) >= count

    # A session-level lock on the held shop, where writers take it (on Citus
    # the shop's worker): its deliveries wait inside their transactions, in
    # flight on the server, until it is released.
    assert stack.postgres_url is not None
    holder = await asyncpg.connect(
        await citus.where_shop_locks(stack.postgres_url, held_shop), timeout=10
    )
    lock = await holder.fetchval("SELECT ingest_lock_key($1, 'shop', '')", held_shop)
    await holder.execute("SELECT pg_advisory_lock($1)", lock)
    timeout = httpx.Timeout(10.0, connect=3.0)
    limits = httpx.Limits(max_connections=STREAMS + HELD)
    try:
        async with httpx.AsyncClient(
            base_url=stack.base_url, timeout=timeout, limits=limits
        ) as client:
            streams = [asyncio.create_task(stream(client)) for _ in range(STREAMS)]
            await eventually(lambda: stream_accepted(20), 30, "the stream to flow")
            # One at a time, each once the one before waits: a delivery whose
            # lock is held waits in a group of such deliveries, and one that
            # arrives while that group waits goes in a group (a session) of its own.
            held = []
            for n in range(HELD):
                held.append(
                    asyncio.create_task(send_order(client, held_shop, 2 * 10**9 + n, f"held-{n}"))
                )

                async def all_held_waiting(count: int = n + 1) -> bool:
                    waiting: int = await holder.fetchval(advisory_lock_waiters(lock))
                    return waiting == count

                await eventually(all_held_waiting, 10, "the held deliveries to wait on the lock")

            signalled = time.monotonic()
            stack.terminate()
            exit_code = asyncio.create_task(asyncio.to_thread(stack.wait, EXIT_WITHIN))
            await asyncio.sleep(0.3)  # the stream keeps sending meanwhile
            await holder.execute(f"SELECT pg_advisory_unlock({lock})")
            code = await exit_code
            exited = time.monotonic()
            await asyncio.sleep(0.3)  # ...and after the server is gone
            stop_sending.set()
            held_sent = await asyncio.wait_for(asyncio.gather(*held), 20)
            await asyncio.wait_for(asyncio.gather(*streams), 20)
    finally:
        await holder.close()

    # The process exits, soon, cleanly, and takes its workers with it.
    assert code == 0, f"exit code {code} (None: still running)\n{stack.log()[-3000:]}"
    assert exited - signalled < EXIT_WITHIN
    assert stack.wait_for_group(5.0), "worker processes outlived the main process"

    # Deliveries in flight at SIGTERM were finished and answered, not dropped.
    assert [sent.outcome for sent in held_sent] == [200] * HELD, stack.log()[-3000:]

    # The stream really crossed the shutdown: accepted before, refused after.
    assert any(sent.accepted and sent.finished < signalled for sent in streamed)
    after_exit = [sent for sent in streamed if sent.started > exited]
    assert after_exit, "nothing was sent after the server exited"
    assert not any(sent.accepted for sent in after_exit)

    # Refused means a connection error or 503 (retry later), never a 500.
    refused = [sent for sent in streamed if not sent.accepted]
    assert {sent.outcome for sent in refused if isinstance(sent.outcome, int)} <= {503}

    # Every delivery answered 2xx is stored exactly once, with its order.
    everything = [*streamed, *held_sent]
    shops = [stream_shop, held_shop]
    recorded = Counter(
        row["webhook_id"]
        for row in await db.fetch(
            "SELECT webhook_id FROM webhook_events WHERE shop_id = ANY($1::varchar[])"
            " AND status = 'processed'",
            shops,
        )
    )
    orders = Counter(
        int(row["shopify_id"])
        for row in await db.fetch(
            "SELECT shopify_id FROM orders WHERE shop_id = ANY($1::varchar[])", shops
        )
    )
    accepted = [sent for sent in everything if sent.accepted]
    missing = [sent for sent in accepted if recorded[sent.webhook_id] != 1]
    assert not missing, f"answered 2xx but not stored once: {missing[:5]}"
    assert all(orders[sent.order_id] == 1 for sent in accepted)
    # Nothing half-applied: every stored delivery has its order and vice versa
    # (a refused one may have committed just before its connection dropped).
    by_webhook = {sent.webhook_id: sent.order_id for sent in everything}
    assert set(recorded) <= set(by_webhook)
    assert sorted(by_webhook[webhook_id] for webhook_id in recorded) == sorted(orders)
    assert max(recorded.values()) == 1 and max(orders.values()) == 1
