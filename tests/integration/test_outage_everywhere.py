"""Every endpoint in a database outage: 503 with Retry-After and a JSON body, never 500.

Login refused (the service's role disabled: SQLSTATE class 28) is the real
thing here: a role created on the test server, then ALTER ROLE ... NOLOGIN
and its sessions ended. Connection refused (nothing listens) covers the
admin endpoints too. Readiness names the part that is down, without the
driver's text (role names, limits), which goes to the log.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.config import Settings
from app.db.database import Database
from app.devtools.pgbouncer import free_port
from tests.support import shopify
from tests.support.ops import ADMIN
from tests.support.servers import execute

EVENT_ID = "00000000-0000-4000-8000-000000000001"


def as_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    where = parts.netloc.rpartition("@")[2]  # host and port, or empty (a socket in the query)
    return urlunsplit(parts._replace(netloc=f"{user}@{where}"))


async def every_endpoint(client: httpx.AsyncClient) -> list[tuple[str, httpx.Response]]:
    """One request to each endpoint that needs the database."""
    body = shopify.encode(shopify.order(7_000_001, customer_id=7_000_002))
    return [
        (
            "webhook",
            await client.post(
                "/webhooks/shopify", content=body, headers=shopify.headers("orders/create", body)
            ),
        ),
        ("ready", await client.get("/health/ready")),
        ("events", await client.get("/events", headers=ADMIN)),
        ("event", await client.get(f"/events/{EVENT_ID}", headers=ADMIN)),
        ("replay", await client.post("/replay", json={"status": "failed"}, headers=ADMIN)),
        (
            "export",
            await client.get(f"/shops/{shopify.SHOP}/customers/1/export", headers=ADMIN),
        ),
    ]


def assert_unavailable(answers: list[tuple[str, httpx.Response]], *secrets: str) -> None:
    for name, response in answers:
        assert response.status_code == 503, (name, response.status_code, response.text)
        assert response.headers.get("retry-after") == "5", name
        assert response.headers["content-type"].startswith("application/json"), name
        body = response.json()
        assert isinstance(body, dict), name
        for secret in secrets:
            assert secret not in response.text, (name, response.text)
    ready = dict(answers)["ready"].json()
    assert ready == {"status": "not ready", "database": "unavailable"}


@pytest.fixture
async def login_role(postgres_url: str, db: Database) -> AsyncIterator[str]:
    role = f"ingest_login_{uuid.uuid4().hex[:8]}"
    await execute(postgres_url, f"CREATE ROLE {role} LOGIN SUPERUSER")
    yield role
    await execute(
        postgres_url,
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'",
    )
    await execute(postgres_url, f"DROP ROLE IF EXISTS {role}")


async def test_login_refused_is_503_on_every_endpoint(
    settings: Settings, postgres_url: str, login_role: str
) -> None:
    assert settings.database_url is not None
    app = create_app(
        dataclasses.replace(settings, database_url=as_user(settings.database_url, login_role))
    )
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/health/ready")).status_code == 200
        first = await shopify.post(client, "orders/create", shopify.order(1, customer_id=2))
        assert first.json()["status"] == "processed", first.text

        await execute(
            postgres_url,
            f"ALTER ROLE {login_role} NOLOGIN",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE usename = '{login_role}'",
        )
        # Twice: first with the pool's dead connections, then with new logins refused.
        for _ in range(2):
            assert_unavailable(await every_endpoint(client), login_role, "not permitted")

        await execute(postgres_url, f"ALTER ROLE {login_role} LOGIN")
        again = await shopify.post(client, "orders/create", shopify.order(3, customer_id=2))
        assert again.status_code == 200, again.text
        assert (await client.get("/health/ready")).status_code == 200


async def test_connection_refused_is_503_on_every_endpoint(settings: Settings) -> None:
    assert settings.database_url is not None
    parts = urlsplit(settings.database_url)
    nowhere = urlunsplit(parts._replace(netloc=f"postgres@127.0.0.1:{free_port()}", query=""))
    app = create_app(dataclasses.replace(settings, database_url=nowhere))
    async with AsyncTestClient(app=app) as client:
        assert_unavailable(await every_endpoint(client), "Connect call failed")
        # Liveness never depends on the database.
        assert (await client.get("/health")).status_code == 200
