"""The operator console over HTTP, in-process (the browser test drives the real service).

Off unless CONSOLE_ENABLED; Piccolo's session login; tables read-only and
without personal data; the forms; and its own pool: bounded in size, in the
wait for a connection and in each statement's time, so that console reads
never take connections from deliveries. The database is always the real one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.cli.serve import proxy_options
from app.config import ConfigError, Settings, load_settings
from app.console.lockout import FAILURES_BEFORE_LOCK
from app.db.database import Database
from app.devtools.standin import ShopifyStandIn
from tests.console.conftest import Clock
from tests.console.support import (
    PASSWORD,
    WRONG_PASSWORD,
    create_user,
    csrf,
    failed_order,
    insert_failed_delivery,
    login,
)
from tests.support import queries, shopify
from tests.support.sync import give_credentials, new_shop, sync_settings

REPLAY_FORM = "/admin/api/forms/replay-failed-deliveries/"
SYNC_FORM = "/admin/api/forms/start-a-sync/"
DELIVERIES = "/admin/api/tables/webhook_events/"


def console_settings(settings: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(
        settings,
        console_enabled=True,
        console_pool_size=2,
        db_acquire_timeout=0.5,
        **changes,
    )


@pytest.fixture(scope="module")
def console_app(settings: Settings) -> Litestar:
    """Built once for the module, as the `app` fixture is: each test runs its lifespan anew."""
    return create_app(console_settings(settings))


@pytest.fixture
async def console(db: Database, console_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with AsyncTestClient(app=console_app) as client:
        yield client


@pytest.fixture
async def operator(console: httpx.AsyncClient, database_url: str) -> str:
    """A console user, logged in on `console`."""
    username = await create_user(database_url)
    response = await login(console, username, PASSWORD)
    assert response.status_code == 200, response.text
    return username


async def submit(client: httpx.AsyncClient, form: str, **data: Any) -> httpx.Response:
    return await client.post(form, json=data, headers=await csrf(client))


def form_message(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    message: str = response.json()["custom_form_success"]
    return message


def form_error(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    error: str = response.json()["custom_form_error"]
    return error


# --- configuration -----------------------------------------------------------


def test_the_console_is_off_by_default_and_enabled_explicitly() -> None:
    assert load_settings({}).console_enabled is False
    assert load_settings({}).console_pool_size == 2
    for value in ("true", "1", "yes", "on", "TRUE"):
        assert load_settings({"CONSOLE_ENABLED": value}).console_enabled is True
    for value in ("false", "0", "no", "off", ""):
        assert load_settings({"CONSOLE_ENABLED": value}).console_enabled is False
    with pytest.raises(ConfigError) as refused:
        load_settings({"CONSOLE_ENABLED": "maybe", "CONSOLE_POOL_SIZE": "0"})
    assert "CONSOLE_ENABLED='maybe' is not true or false" in str(refused.value)
    assert "CONSOLE_POOL_SIZE='0' is not a positive whole number" in str(refused.value)


async def test_without_console_enabled_there_is_no_console(client: httpx.AsyncClient) -> None:
    for path in ("/admin", "/admin/", "/admin/api/tables/", "/admin/public/meta/"):
        assert (await client.get(path)).status_code == 404, path
    assert (await client.post("/admin/public/login/", json={})).status_code == 404


# --- login -------------------------------------------------------------------


async def test_login_refuses_a_wrong_password_and_lets_the_user_in(
    console: httpx.AsyncClient, database_url: str
) -> None:
    username = await create_user(database_url)
    redirect = await console.get("/admin", follow_redirects=False)
    assert redirect.status_code == 308 and redirect.headers["location"] == "/admin/"
    assert (await console.get("/admin/")).status_code == 200  # the page; its data needs a login
    assert (await console.get("/admin/api/tables/")).status_code == 401

    refused = await login(console, username, WRONG_PASSWORD)
    assert refused.status_code == 401
    assert "id" not in console.cookies  # no session
    assert (await login(console, "nobody", PASSWORD)).status_code == 401
    assert (await console.get("/admin/api/tables/")).status_code == 401

    accepted = await login(console, username, PASSWORD)
    assert accepted.status_code == 200, accepted.text
    assert (await console.get("/admin/api/user/")).json()["username"] == username
    tables = (await console.get("/admin/api/tables/")).json()
    # Only these: no users, sessions or credentials (encrypted tokens).
    assert sorted(tables) == ["customers", "orders", "shops", "sync_runs", "webhook_events"]


async def test_failed_logins_lock_the_account_for_a_while_that_grows(
    console: httpx.AsyncClient, database_url: str, clock: Clock
) -> None:
    username = await create_user(database_url)
    for _ in range(FAILURES_BEFORE_LOCK):
        assert (await login(console, username, WRONG_PASSWORD)).status_code == 401

    locked = await login(console, username, PASSWORD)  # the right password, too early
    assert locked.status_code == 429, locked.text
    assert locked.headers["retry-after"] == "30"
    clock.now += 29
    assert (await login(console, username, PASSWORD)).status_code == 429  # not extended
    clock.now += 2
    # It expired; a new failure locks it again, for twice as long.
    assert (await login(console, username, WRONG_PASSWORD)).status_code == 401
    doubled = await login(console, username, PASSWORD)
    assert doubled.status_code == 429 and doubled.headers["retry-after"] == "60"
    clock.now += 61
    assert (await login(console, username, PASSWORD)).status_code == 200


async def test_failed_logins_from_one_address_lock_it_for_every_account(
    console: httpx.AsyncClient, database_url: str, clock: Clock
) -> None:
    username = await create_user(database_url)
    for number in range(FAILURES_BEFORE_LOCK):  # guesses at other accounts, from here
        assert (await login(console, f"guess-{number}", WRONG_PASSWORD)).status_code == 401

    assert (await login(console, username, PASSWORD)).status_code == 429
    clock.now += 31
    assert (await login(console, username, PASSWORD)).status_code == 200


def test_forwarded_addresses_are_believed_only_from_trusted_proxies() -> None:
    assert proxy_options(load_settings({})) == {"proxy_headers": False, "forwarded_allow_ips": []}
    behind = load_settings({"TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7"})
    assert proxy_options(behind) == {
        "proxy_headers": True,
        "forwarded_allow_ips": ["10.0.0.0/8", "192.0.2.7"],
    }
    with pytest.raises(ConfigError) as refused:
        load_settings({"TRUSTED_PROXIES": "10.0.0.0/8, a-proxy"})
    assert "TRUSTED_PROXIES" in str(refused.value)


async def test_a_login_without_the_csrf_token_is_refused(
    console: httpx.AsyncClient, database_url: str
) -> None:
    username = await create_user(database_url)
    response = await console.post(
        "/admin/public/login/", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 403
    assert "id" not in console.cookies


# --- read-only views ---------------------------------------------------------


async def test_tables_are_read_only_and_without_personal_data(
    console: httpx.AsyncClient, operator: str
) -> None:
    payload = failed_order(8_100_000_001, 8_200_000_001)
    assert await shopify.deliver(console, "orders/create", payload, "console-view-1") == "processed"

    listing = await console.get(DELIVERIES, params={"shop_id": shopify.SHOP})
    assert listing.status_code == 200, listing.text
    [row] = listing.json()["rows"]
    assert row["status"] == "processed" and row["topic"] == "orders/create"
    assert "payload" not in row
    detail = (await console.get(f"{DELIVERIES}{row['id']}/")).json()
    assert detail["webhook_id"] == "console-view-1" and "payload" not in detail
    asked = await console.get(DELIVERIES, params={"__visible_fields": "id,payload"})
    assert asked.status_code == 400

    for table in ("customers", "orders", "webhook_events"):
        body = (await console.get(f"/admin/api/tables/{table}/")).text
        assert "replayed@example.com" not in body, table  # the customer's email
        assert "buyer@example.com" not in body, table  # the order's
    customer = (await console.get("/admin/api/tables/customers/")).json()["rows"][0]
    assert not {"email", "name", "phone", "tags"} & set(customer)
    order = (await console.get("/admin/api/tables/orders/")).json()["rows"][0]
    assert not {"email", "line_items"} & set(order)
    assert order["shopify_id"] == "8100000001"

    # No route changes anything: Piccolo Admin's read_only mode registers GET only.
    headers = await csrf(console)
    detail_path = f"{DELIVERIES}{row['id']}/"
    assert (await console.post(DELIVERIES, json={}, headers=headers)).status_code == 405
    assert (await console.patch(detail_path, json={}, headers=headers)).status_code == 405
    assert (await console.put(detail_path, json={}, headers=headers)).status_code == 405
    assert (await console.delete(detail_path, headers=headers)).status_code == 405
    assert (await console.delete(DELIVERIES, headers=headers)).status_code == 405


# --- forms -------------------------------------------------------------------


async def test_replay_form_dry_run_then_for_real(
    console: httpx.AsyncClient, operator: str, db: Database, database_url: str
) -> None:
    connection = await asyncpg.connect(database_url, statement_cache_size=0)
    try:
        mine = await insert_failed_delivery(
            connection, shopify.SHOP, "console-failed-1", failed_order(8_100_000_002, 8_200_000_002)
        )
        other = await insert_failed_delivery(
            connection,
            shopify.OTHER_SHOP,
            "console-failed-2",
            failed_order(8_100_000_003, 8_200_000_003),
        )
    finally:
        await connection.close()

    dry = form_message(await submit(console, REPLAY_FORM, shop=shopify.SHOP, dry_run=True))
    assert dry == (
        f"Dry run: 1 failed delivery of {shopify.SHOP} would be replayed (orders/create: 1)."
        " Nothing was changed."
    )
    assert await status_of(db, mine) == ("failed", 1)

    done = form_message(await submit(console, REPLAY_FORM, shop=shopify.SHOP, dry_run=False))
    assert done.startswith(
        f"Replayed 1 of 1 failed delivery of {shopify.SHOP} (orders/create: 1): 1 processed,"
    )
    assert await status_of(db, mine) == ("processed", 2)
    assert await queries.order(db, 8_100_000_002) is not None
    assert await status_of(db, other) == ("failed", 1)  # another shop's: untouched

    again = form_message(await submit(console, REPLAY_FORM, shop=shopify.SHOP, dry_run=False))
    assert again == f"No failed deliveries of {shopify.SHOP} match: nothing to replay."
    # A window that excludes the other shop's delivery (received an hour ago).
    window = await submit(
        console, REPLAY_FORM, shop=shopify.OTHER_SHOP.upper(), since="2999-01-01T00:00:00"
    )
    assert form_message(window).startswith("No failed deliveries of other-shop.myshopify.com")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"shop": "example.com"}, "'example.com' is not a *.myshopify.com domain"),
        ({"shop": "a\x00.myshopify.com"}, "is not a *.myshopify.com domain"),
        (
            {"shop": shopify.SHOP, "since": "2026-01-02T00:00:00", "until": "2026-01-01T00:00:00"},
            "since must be before until",
        ),
    ],
)
async def test_replay_form_refuses_bad_input(
    console: httpx.AsyncClient, operator: str, data: dict[str, Any], error: str
) -> None:
    assert error in form_error(await submit(console, REPLAY_FORM, **data))


async def test_replay_form_validates_its_fields(console: httpx.AsyncClient, operator: str) -> None:
    missing = await submit(console, REPLAY_FORM, dry_run=True)
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["shop"]
    bad_time = await submit(console, REPLAY_FORM, shop=shopify.SHOP, since="yesterday")
    assert bad_time.status_code == 422


async def test_forms_need_a_login(console: httpx.AsyncClient) -> None:
    response = await submit(console, REPLAY_FORM, shop=shopify.SHOP, dry_run=False)
    assert response.status_code == 401


async def test_sync_form_starts_a_sync_in_the_background(
    db: Database, settings: Settings, shopify_admin: ShopifyStandIn, database_url: str
) -> None:
    config = console_settings(sync_settings(settings, shopify_admin))
    shop = new_shop(shopify_admin)
    shop.generate(customers=3, orders=4, line_items=1)
    async with AsyncTestClient(app=create_app(config)) as console:
        username = await create_user(database_url)
        assert (await login(console, username, PASSWORD)).status_code == 200

        refused = form_error(await submit(console, SYNC_FORM, shop=shop.domain))
        assert (
            refused
            == f"cannot sync {shop.domain}: no Admin API credentials stored for {shop.domain}"
        )

        await give_credentials(db, config, shop)
        started = form_message(await submit(console, SYNC_FORM, shop=shop.domain, full=True))
        assert started.startswith(f"Sync of {shop.domain} started: run ")
        assert "(full, customers,orders)" in started
        run_id = started.split("run ", 1)[1].split(" ", 1)[0]
        run = await wait_for_run(db, run_id)
        assert (run["status"], run["applied"], run["failed"]) == ("succeeded", 7, 0)

        assert shop.token not in started


async def wait_for_run(db: Database, run_id: str) -> dict[str, Any]:
    for _ in range(200):
        run = await queries.fetchrow(db, "SELECT * FROM sync_runs WHERE id = $1::uuid", run_id)
        if run is not None and run["status"] != "running":
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish")


async def status_of(db: Database, ledger_id: Any) -> tuple[str, int]:
    row = await queries.fetchrow(
        db, "SELECT status, attempts FROM webhook_events WHERE id = $1", ledger_id
    )
    assert row is not None
    return row["status"], row["attempts"]


# --- its own pool: a deadline for every statement (tests/console/test_console_pool.py: its size)


async def test_a_slow_console_read_is_cut_at_its_deadline(
    db: Database, settings: Settings, database_url: str
) -> None:
    config = console_settings(settings, admin_statement_timeout=0.5)
    async with AsyncTestClient(app=create_app(config)) as console:
        username = await create_user(database_url)
        assert (await login(console, username, PASSWORD)).status_code == 200
        blocker = await asyncpg.connect(database_url)
        try:
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("LOCK TABLE webhook_events IN ACCESS EXCLUSIVE MODE")
            began = time.monotonic()
            answer = await console.get(DELIVERIES)
            assert answer.status_code == 503, answer.text
            assert answer.json()["detail"] == "the database is unavailable or too slow; retry later"
            assert time.monotonic() - began < 2.0
            await transaction.rollback()
        finally:
            await blocker.close()
        assert (await console.get(DELIVERIES)).status_code == 200
