"""The database going away: 503 with Retry-After, nothing half-written, recovery.

These tests stop a PostgreSQL server, so they use a private embedded one (never
the shared server other test sessions use), started once for the module.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from app.config import Settings
from app.db.embedded import EmbeddedServer
from tests.conftest import migrate
from tests.support import shopify
from tests.support.asgi import concurrent_client
from tests.support.servers import execute, with_database

# It stops and starts a server of its own: the stack tier.
pytestmark = [pytest.mark.stack, pytest.mark.timed]

UNAVAILABLE = {
    "status_code": 503,
    "detail": "the database is unavailable; nothing was recorded, retry later",
}


@dataclasses.dataclass
class PrivateServer:
    server: EmbeddedServer
    url: str

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server.start()

    async def fetchval(self, sql: str, *args: Any) -> Any:
        connection = await asyncpg.connect(self.url, timeout=5)
        try:
            return await connection.fetchval(sql, *args)
        finally:
            await connection.close()


@pytest.fixture(scope="module")
def private_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateServer]:
    server = EmbeddedServer(tmp_path_factory.mktemp("private") / "pgdata")
    root_url = server.start()
    asyncio.run(execute(root_url, 'CREATE DATABASE "ingest"'))
    url = with_database(root_url, "ingest")
    migrate(url)
    yield PrivateServer(server, url)
    server.stop()


@pytest.fixture
async def private(private_server: PrivateServer) -> AsyncIterator[PrivateServer]:
    """The private server, running, with empty tables."""
    private_server.start()
    await private_server.fetchval(
        "TRUNCATE message_logs, automations, orders, customers, webhook_events, shops CASCADE"
    )
    yield private_server
    private_server.start()


@pytest.fixture
async def private_client(
    private: PrivateServer, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    async with concurrent_client(dataclasses.replace(settings, database_url=private.url)) as client:
        yield client


async def test_database_down_is_503_and_the_app_recovers(
    private: PrivateServer, private_client: httpx.AsyncClient
) -> None:
    first = await shopify.post(private_client, "orders/create", shopify.order(1, customer_id=2))
    assert first.json()["status"] == "processed"

    await asyncio.to_thread(private.stop)
    payload = shopify.order(3, customer_id=2)
    started = time.monotonic()
    response = await shopify.post(private_client, "orders/create", payload, webhook_id="down")
    elapsed = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == UNAVAILABLE
    assert elapsed < 5.0

    # Every kind of delivery gets the same answer while the database is down.
    for topic, body in (
        ("products/update", {"id": 1}),
        ("orders/create", {"id": "bad"}),
        ("customers/redact", shopify.customers_redact(2)),
    ):
        other = await shopify.post(private_client, topic, body)
        assert (other.status_code, other.json()) == (503, UNAVAILABLE), topic

    # Back up: Shopify's retry of the same delivery goes through, no restart needed.
    await asyncio.to_thread(private.start)
    retry = await shopify.post(private_client, "orders/create", payload, webhook_id="down")
    assert retry.status_code == 200, retry.text
    assert retry.json() == {"status": "processed", "webhook_id": "down"}
    assert await private.fetchval("SELECT count(*) FROM webhook_events") == 2
    assert await private.fetchval("SELECT order_count FROM customers WHERE shopify_id = '2'") == 2


async def test_database_stopped_mid_request_is_503_and_nothing_is_written(
    private: PrivateServer, private_client: httpx.AsyncClient
) -> None:
    payload = shopify.order(10, customer_id=11)
    holder = await asyncpg.connect(private.url, timeout=5)
    try:
        # Hold the order's lock, so the delivery is inside its transaction,
        # waiting, when the server goes down.
        await holder.execute("BEGIN")
        await holder.execute("SELECT ingest_lock_rows($1, 'order', ARRAY['10'])", shopify.SHOP)
        delivery = asyncio.create_task(
            shopify.post(private_client, "orders/create", payload, webhook_id="mid")
        )
        waiting = 0
        for _ in range(200):
            waiting = await holder.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            )
            if waiting or delivery.done():
                break
            await asyncio.sleep(0.01)
        assert waiting == 1, "the delivery never waited for the lock"

        await asyncio.to_thread(private.stop)
        response = await asyncio.wait_for(delivery, timeout=10)
    finally:
        holder.terminate()

    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert response.json() == UNAVAILABLE

    await asyncio.to_thread(private.start)
    for table in ("webhook_events", "orders", "customers", "shops"):
        assert await private.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    retry = await shopify.post(private_client, "orders/create", payload, webhook_id="mid")
    assert retry.json() == {"status": "processed", "webhook_id": "mid"}
    assert await private.fetchval("SELECT count(*) FROM orders") == 1
