"""The console's pool, in the real service: its size is a hard bound, and deliveries keep theirs.

`python -m app serve` runs as its own process with CONSOLE_POOL_SIZE=2,
behind PgBouncer in transaction mode with the compose file's settings. Six
console pages that a lock makes slow occupy exactly two server connections
(seen from PostgreSQL); the other four wait DB_ACQUIRE_TIMEOUT and answer
503, while signed deliveries are processed as usual.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.devtools.pgbouncer import PgBouncer
from app.devtools.stack import PGBOUNCER_SETTINGS
from tests.console.support import PASSWORD, Service, console_service, create_user, login
from tests.support import shopify
from tests.support.load import eventually
from tests.support.ops import database_name

# Its own PgBouncer and service process.
pytestmark = [pytest.mark.stack, pytest.mark.pgbouncer, pytest.mark.timeout(120)]

SLOW_PAGE = "/admin/api/tables/sync_runs/"


@pytest.fixture
def service(create_database: Any, postgres_url: str, tmp_path: Path) -> Iterator[Service]:
    url: str = create_database()
    bouncer = PgBouncer(postgres_url, settings=PGBOUNCER_SETTINGS).start()
    try:
        with console_service(
            url,
            tmp_path / "service.log",
            DATABASE_URL=bouncer.url(database_name(url)),
            CONSOLE_POOL_SIZE="2",
            DB_POOL_SIZE="4",
            DB_ACQUIRE_TIMEOUT="0.5",
            ADMIN_STATEMENT_TIMEOUT="10",
        ) as running:
            yield running
    finally:
        bouncer.close()


async def console_backends(connection: asyncpg.Connection) -> int:
    """Backends of the service waiting for the lock on sync_runs: the console's slow pages."""
    count: int = await connection.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query LIKE '%sync_runs%'"
    )
    return count


async def test_slow_console_pages_hold_at_most_the_console_pool_and_deliveries_go_on(
    service: Service,
) -> None:
    username = await create_user(service.database_url)
    async with httpx.AsyncClient(base_url=service.base_url, timeout=20.0) as console:
        assert (await login(console, username, PASSWORD)).status_code == 200
        pages = await asyncio.gather(*(console.get(SLOW_PAGE) for _ in range(20)))
        assert {page.status_code for page in pages} == {200}

        blocker = await asyncpg.connect(service.database_url)
        try:
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("LOCK TABLE sync_runs IN ACCESS EXCLUSIVE MODE")
            began = time.monotonic()
            slow = [asyncio.create_task(console.get(SLOW_PAGE)) for _ in range(6)]
            refused = []

            def four_refused() -> bool:
                refused[:] = [task for task in slow if task.done()]
                return len(refused) >= 4

            # Answered while the lock is held: refused, not waiting for it.
            await eventually(four_refused, 30, "four pages finding no console connection")
            assert len(refused) == 4, "four pages found no console connection"
            assert time.monotonic() - began > 0.4  # after DB_ACQUIRE_TIMEOUT, not at once
            for page in refused:
                assert page.result().status_code == 503, page.result().text
                assert page.result().headers["retry-after"] == "5"
            assert await console_backends(blocker) == 2  # the console pool's size, no more

            # Meanwhile deliveries get their connections: a delivery finding none
            # within DB_ACQUIRE_TIMEOUT would get 503, and each is answered while the
            # console's two pages still hold theirs.
            async with httpx.AsyncClient(base_url=service.base_url, timeout=5.0) as shopify_side:
                for number in range(5):
                    status = await shopify.deliver(
                        shopify_side,
                        "customers/create",
                        shopify.customer(9_300_000_000 + number),
                        f"console-pool-{number}",
                    )
                    assert status == "processed"
                    assert await console_backends(blocker) == 2
            await transaction.rollback()
        finally:
            await blocker.close()
        waited = [task for task in slow if task not in refused]
        assert [(await page).status_code for page in waited] == [200, 200]

    log = service.log()
    assert '"message": "console: database unavailable"' in log
    assert PASSWORD not in log
