"""Shared fixtures: a real PostgreSQL (TEST_DATABASE_URL or an embedded one), a
fresh migrated database per test session, tables emptied before each test, and
the real ASGI app behind an HTTP test client.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.config import Settings, load_settings
from app.db.database import Database
from app.db.embedded import EmbeddedServer
from app.devtools.pgbouncer import PgBouncer, pgbouncer_binary
from app.devtools.standin import ShopifyStandIn
from tests.support import nats, shopify
from tests.support.ops import run_cli


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked `nats` skips (locally) or fails (in CI) when NATS is not there."""
    if item.get_closest_marker("nats") is None:
        return
    reason = nats.missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}, and CI runs every test (.ci/run starts it)")
    pytest.skip(reason)


TABLES = (
    "message_logs",
    "automations",
    "orders",
    "customers",
    "webhook_events",
    "shops",
    "shop_credentials",
    "sync_runs",
    "sync_state",
    "sync_leases",
    "sync_bulk_rows",
    "erasures",
    "customer_tag_events",
    "subscription_checks",
    "customer_events",
    "customer_event_relays",
)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def execute(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(url, statement_cache_size=0)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def migrate(url: str) -> None:
    """Run the real migrations, through the real command line."""
    result = run_cli(url, "migrate", timeout=120)
    assert result.returncode == 0, f"migrate failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server: TEST_DATABASE_URL, or a private embedded one."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
        return
    server = EmbeddedServer(tmp_path_factory.mktemp("postgres") / "pgdata")
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
def create_database(postgres_url: str) -> Iterator[Any]:
    """Creates empty databases on the test server; drops them at the end of the session."""
    created: list[str] = []

    def create(migrated: bool = True) -> str:
        name = f"ingest_test_{uuid.uuid4().hex[:10]}"
        asyncio.run(execute(postgres_url, f'CREATE DATABASE "{name}"'))
        created.append(name)
        url = with_database(postgres_url, name)
        if migrated:
            migrate(url)
        return url

    yield create
    for name in created:
        asyncio.run(execute(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_url(create_database: Any) -> str:
    """The session's migrated database."""
    url: str = create_database()
    return url


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return load_settings(
        {
            "DATABASE_URL": database_url,
            "SHOPIFY_API_SECRET": shopify.SECRET,
            "SHOPIFY_API_SECRET_PREVIOUS": shopify.PREVIOUS_SECRET,
            "ADMIN_TOKEN": "test-admin-token",
            "MAX_BODY_BYTES": str(1024 * 1024),
            "DB_POOL_SIZE": "10",
            "LOG_LEVEL": "INFO",
        }
    )


def database_for(settings: Settings, url: str | None = None) -> Database:
    return Database.from_settings(settings, url)


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[Database]:
    database = database_for(settings)
    await database.start()
    yield database
    await database.stop()


@pytest.fixture
async def db(database: Database) -> Database:
    """The session database with every table emptied: each test starts clean."""
    async with database.connection() as connection:
        await connection.execute(f"TRUNCATE {', '.join(TABLES)} CASCADE")
    return database


@pytest.fixture
async def client(db: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the real ASGI app (lifespan included)."""
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def shopify_admin() -> Iterator[ShopifyStandIn]:
    """The stand-in for Shopify's Admin API, on a loopback port, for the whole session."""
    with ShopifyStandIn() as stand_in:
        yield stand_in


@pytest.fixture
def pgbouncer_available() -> None:
    if pgbouncer_binary() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pgbouncer is required in CI (apt-get install pgbouncer)")
        pytest.skip("pgbouncer is not installed")


@pytest.fixture
def pgbouncer(pgbouncer_available: None, postgres_url: str) -> Iterator[PgBouncer]:
    bouncer = PgBouncer(postgres_url).start()
    yield bouncer
    bouncer.close()
