"""Liveness and readiness: /health never touches the database; /health/ready answers
within about a second whatever the database does, names the failing part, and
recovers by itself when the database comes back (no restart of the app).

PgBouncer stands between the app and PostgreSQL so that the tests can take the
"database" away (kill), make it hang (SIGSTOP) and bring it back, without
touching the PostgreSQL server other sessions share.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.config import Settings
from app.devtools.pgbouncer import PgBouncer
from tests.support.ops import database_name, run_cli

pytestmark = [pytest.mark.timed, pytest.mark.timeout(90)]

# The contract: an answer within about a second (READINESS_TIMEOUT is 1 s).
PROBE_BUDGET = 1.5
RECOVERY_WAIT = 10.0


async def probe(
    client: httpx.AsyncClient, path: str = "/health/ready"
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await client.get(path, timeout=10)
    return response, time.monotonic() - started


async def wait_until_ready(
    client: httpx.AsyncClient, within: float = RECOVERY_WAIT
) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        response, elapsed = await probe(client)
        assert elapsed < PROBE_BUDGET, f"readiness took {elapsed:.2f} s"
        if response.status_code == 200 or time.monotonic() > deadline:
            return response


@pytest.fixture
async def bounced_client(
    pgbouncer: PgBouncer, settings: Settings, database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The app, configured to reach the session database through PgBouncer."""
    through_bouncer = dataclasses.replace(
        settings, database_url=pgbouncer.url(database_name(database_url))
    )
    async with AsyncTestClient(app=create_app(through_bouncer)) as client:
        yield client


@contextmanager
def stopped(process_id: int) -> Iterator[None]:
    """The process frozen (SIGSTOP): its sockets stay open and nothing answers."""
    os.kill(process_id, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(process_id, signal.SIGCONT)


def bouncer_pid(pgbouncer: PgBouncer) -> int:
    assert pgbouncer.process is not None and pgbouncer.process.poll() is None
    return pgbouncer.process.pid


# --- liveness ------------------------------------------------------------------


async def test_health_is_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_database_answers_and_schema_is_current(
    client: httpx.AsyncClient,
) -> None:
    response, elapsed = await probe(client)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready"}
    assert elapsed < PROBE_BUDGET


# --- the database goes away and comes back -------------------------------------


async def test_readiness_flips_when_pgbouncer_dies_and_returns(
    bounced_client: httpx.AsyncClient, pgbouncer: PgBouncer
) -> None:
    response = await wait_until_ready(bounced_client)
    assert response.status_code == 200, response.text

    pgbouncer.kill()
    response, elapsed = await probe(bounced_client)
    assert response.status_code == 503, response.text
    assert elapsed < PROBE_BUDGET, f"not-ready took {elapsed:.2f} s"
    body = response.json()
    assert body["status"] == "not ready"
    assert body.get("database")
    assert "migrations" not in body
    assert response.headers.get("retry-after")

    # Liveness does not depend on the database: no restart while it is away.
    health, elapsed = await probe(bounced_client, "/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert elapsed < PROBE_BUDGET
    # Still not ready on a second look (no cached answer, no hang).
    response, elapsed = await probe(bounced_client)
    assert response.status_code == 503 and "database" in response.json()
    assert elapsed < PROBE_BUDGET

    pgbouncer.restart()
    response = await wait_until_ready(bounced_client)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready"}


async def test_readiness_answers_in_time_while_the_database_hangs(
    bounced_client: httpx.AsyncClient, pgbouncer: PgBouncer
) -> None:
    response = await wait_until_ready(bounced_client)
    assert response.status_code == 200, response.text

    with stopped(bouncer_pid(pgbouncer)):
        # First with the pool's idle connection (a query that never returns),
        # then with new connections (a connect that never completes).
        for _ in range(2):
            response, elapsed = await probe(bounced_client)
            assert response.status_code == 503, response.text
            assert elapsed < PROBE_BUDGET, f"not-ready took {elapsed:.2f} s"
            assert "database" in response.json()
        health, elapsed = await probe(bounced_client, "/health")
        assert health.status_code == 200
        assert elapsed < PROBE_BUDGET

    response = await wait_until_ready(bounced_client)
    assert response.status_code == 200, response.text


# --- the schema is not current -------------------------------------------------


@pytest.fixture
def unmigrated_url(create_database: Any) -> str:
    """A new, empty database (create_database runs its own event loop: a sync fixture)."""
    url: str = create_database(migrated=False)
    return url


async def test_readiness_names_pending_migrations_until_they_are_applied(
    unmigrated_url: str, settings: Settings
) -> None:
    url = unmigrated_url
    app = create_app(dataclasses.replace(settings, database_url=url))
    async with AsyncTestClient(app=app) as client:
        response, elapsed = await probe(client)
        assert response.status_code == 503, response.text
        assert elapsed < PROBE_BUDGET
        body = response.json()
        assert body["status"] == "not ready"
        assert "database" not in body
        assert "pending" in body["migrations"]
        assert "python -m app migrate" in body["migrations"]
        assert (await client.get("/health")).status_code == 200

        migrated = run_cli(url, "migrate")
        assert migrated.returncode == 0, migrated.stderr

        response, _ = await probe(client)
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "ready"}
