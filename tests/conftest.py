"""Shared fixtures: a real PostgreSQL (TEST_DATABASE_URL or an embedded one), a
fresh migrated database per test session (per xdist worker), tables emptied
before each test, and the real ASGI app (built once per worker, its lifespan run
for each test) behind an HTTP test client.

Also the tiers: every test gets one marker of TIERS, from its fixtures unless
its module names one, and that tier's timeout unless it sets its own; and the
markers of tests/support/binaries.py skip (locally) or fail (in CI) a test whose
program is missing.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.config import Settings, load_settings
from app.db.database import Database
from app.db.embedded import EmbeddedServer
from app.devtools.pgbouncer import PgBouncer
from app.devtools.standin import ShopifyStandIn
from app.observability.logs import configure_logging
from tests.support import binaries, citus, nats, shopify
from tests.support.ops import ROOT, run_cli
from tests.support.servers import execute, with_database

# The tiers, cheapest first, and how long one test of each may take (a test
# may set its own timeout). .ci/run runs each tier as a step of its own.
TIERS = {
    "unit": 60,  # no database, no server
    "integration": 120,  # the test PostgreSQL, the app in process
    "stack": 180,  # server processes of their own: PgBouncer, PostgreSQL, the service
    "browser": 120,  # the console in chromium
    "bench": 420,  # the benchmark's smoke run (its subprocess may take 300 s)
}
# Fixtures that run PgBouncer (the deployment stack of tests/faults and
# tests/e2e/test_stack.py is one): the test is of the stack tier and needs the binary.
PGBOUNCER_FIXTURES = {"pgbouncer", "stack"}


def tier_of(item: pytest.Item) -> str:
    """The tier the test's module names, or the one its fixtures decide."""
    named = next((mark.name for mark in item.iter_markers() if mark.name in TIERS), None)
    if named is not None:
        return named
    if item.get_closest_marker("pgbouncer") or PGBOUNCER_FIXTURES & set(item.fixturenames):
        return "stack"
    if "postgres_url" in item.fixturenames:
        return "integration"
    return "unit"


@pytest.hookimpl(tryfirst=True)  # before -m selects tests by these markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A --timeout given on the command line applies to every test without its own.
    tier_timeouts = config.getoption("timeout") is None
    for item in items:
        tier = tier_of(item)
        item.add_marker(tier)
        item.user_properties.append(("tier", tier))
        if tier_timeouts and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TIERS[tier]))
        if PGBOUNCER_FIXTURES & set(item.fixturenames):
            item.add_marker("pgbouncer")
        if (group := server_group(item, tier)) is not None:
            item.add_marker(pytest.mark.xdist_group(group))


def server_group(item: pytest.Item, tier: str) -> str | None:
    """Tests sharing server processes form one group: with `--dist loadgroup` they run on
    one worker, which starts them once. Those are a module's or a package's deployment
    stack (its `stack` fixture), and a browser test module's service.

    The stack tier's `timed` tests (answers timed, a shared server stopped) are one
    group of their own, so that no two of them run at once; the rest of the stack
    tier runs beside them on the other worker."""
    if tier == "stack" and item.get_closest_marker("timed"):
        return "stack: timed"
    if tier == "browser":
        return f"browser:{item.nodeid.split('::')[0]}"
    definitions = getattr(item, "_fixtureinfo", None)
    found = definitions.name2fixturedefs.get("stack") if definitions is not None else None
    if not found or found[-1].scope == "function":
        return None
    return f"stack:{found[-1].baseid}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The tiers of the failed tests: one run may hold several (.ci/run)."""
    failed: dict[str, int] = {}
    for report in (
        *terminalreporter.stats.get("failed", ()),
        *terminalreporter.stats.get("error", ()),
    ):
        # Not from the report's keywords: they hold the folder's name too (tests/integration/).
        tier = dict(getattr(report, "user_properties", ())).get("tier", "no tier")
        failed[tier] = failed.get(tier, 0) + 1
    if failed:
        tiers = ", ".join(f"{tier} ({count})" for tier, count in failed.items())
        terminalreporter.write_line(f"failed tiers: {tiers}", red=True, bold=True)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before any fixture starts it: a test whose program is missing skips, or fails in CI."""
    for name in (*binaries.BINARIES, "nats"):
        if item.get_closest_marker(name) is None:
            continue
        reason = nats.missing() if name == "nats" else binaries.missing(name)
        if reason is None:
            continue
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}, and CI runs every test (.ci/run installs it)")
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


def migrate(url: str) -> None:
    """Run the real migrations, through the real command line."""
    result = run_cli(url, "migrate", timeout=120)
    assert result.returncode == 0, f"migrate failed:\n{result.stdout}\n{result.stderr}"


# What a migrated database depends on: a template database is made per state of these.
MIGRATION_INPUTS = ("migrations", "app/db", "piccolo_conf.py", "uv.lock")


def migrations_digest() -> str:
    digest = hashlib.sha256()
    for name in MIGRATION_INPUTS:
        path = ROOT / name
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts:
                digest.update(f"{file.relative_to(ROOT)}\0".encode() + file.read_bytes())
    return digest.hexdigest()[:16]


async def migrated_template(server_url: str) -> str:
    """A database migrated by the real command line, copied for each migrated database.

    Made once per state of MIGRATION_INPUTS and kept on the server, so that later
    sessions and other workers copy it (CREATE DATABASE ... TEMPLATE, a file copy)
    instead of migrating again; an advisory lock makes one of them build it. It is
    published by a rename once migrated, so no one copies a half-built one.
    """
    name = f"ingest_template_{migrations_digest()}"
    connection = await asyncpg.connect(server_url, statement_cache_size=0)
    try:
        await connection.execute("SELECT pg_advisory_lock(hashtext('ingest_template'))")
        exists = "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)"
        if not await connection.fetchval(exists, name):
            building = f"{name}_building"
            await connection.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
            await connection.execute(f'CREATE DATABASE "{building}"')
            migrate(with_database(server_url, building))
            await connection.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    finally:
        await connection.close()  # which releases the lock
    return name


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server: a Citus coordinator (CITUS_TEST_URL), TEST_DATABASE_URL, or a
    private embedded one."""
    if url := citus.URL or os.environ.get("TEST_DATABASE_URL"):
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
        if citus.URL:
            # A Citus database needs the extension and its workers on every node
            # before it is migrated, so it cannot be copied from a template.
            asyncio.run(execute(postgres_url, f'CREATE DATABASE "{name}"'))
            created.append(name)
            url = with_database(postgres_url, name)
            asyncio.run(citus.prepare(postgres_url, name))
            if migrated:
                migrate(url)
            return url
        template = f' TEMPLATE "{asyncio.run(migrated_template(postgres_url))}"' if migrated else ""
        asyncio.run(execute(postgres_url, f'CREATE DATABASE "{name}"{template}'))
        created.append(name)
        return with_database(postgres_url, name)

    yield create
    for name in created:
        if citus.URL:
            asyncio.run(citus.drop(postgres_url, name))
        else:
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


async def empty_tables(connection: asyncpg.Connection) -> None:
    """TRUNCATE the tables that hold rows: it costs a file swap and a sync per table named."""
    holding = await connection.fetch(
        " UNION ALL ".join(f"(SELECT '{table}' AS name FROM {table} LIMIT 1)" for table in TABLES)
    )
    if holding:
        names = ", ".join(row["name"] for row in holding)
        await connection.execute(f"TRUNCATE {names} CASCADE")


@pytest.fixture
async def db(database: Database) -> Database:
    """The session database with every table emptied: each test starts clean."""
    async with database.connection() as connection:
        await empty_tables(connection)
    return database


@pytest.fixture(scope="session")
def app(settings: Settings) -> Litestar:
    """The ASGI app of the session's settings, built once per worker: building it costs
    more than most tests. Each test runs its lifespan anew (`client`): its own pool,
    background work, HTTP client and tokens."""
    return create_app(settings)


@pytest.fixture
async def client(
    db: Database, settings: Settings, app: Litestar
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the real ASGI app (lifespan included)."""
    # As create_app does: an app a test built with other settings may have changed it.
    configure_logging(settings.log_level)
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def shopify_admin() -> Iterator[ShopifyStandIn]:
    """The stand-in for Shopify's Admin API, on a loopback port, for the whole session."""
    with ShopifyStandIn() as stand_in:
        yield stand_in


@pytest.fixture
def pgbouncer(postgres_url: str) -> Iterator[PgBouncer]:
    bouncer = PgBouncer(postgres_url).start()
    yield bouncer
    bouncer.close()
