"""The sync's HTTP endpoints (through the real ASGI app) and commands: in this process
(call_cli), and as real processes where a process is what is tested (a schedule stopped by
a signal, an exit code and its one-line error)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from app.access.cipher import Purpose, TokenCipher
from app.asgi import create_app
from app.config import Settings
from app.db.database import Database
from app.devtools.standin import FakeShop, ShopifyStandIn
from app.sync.runner import SyncRefused
from tests.support import queries
from tests.support.ops import ROOT, CliResult, call_cli
from tests.support.sync import ALL_SCOPES, OTHER_TOKEN_KEY, TOKEN_KEY, new_shop

ADMIN = {"Authorization": "Bearer test-admin-token"}


@pytest.fixture
async def api(db: Database, sync_config: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with AsyncTestClient(app=create_app(sync_config)) as test_client:
        yield test_client


async def wait_for_run(api: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    for _ in range(200):
        run: dict[str, Any] = (await api.get(f"/sync/runs/{run_id}", headers=ADMIN)).json()
        if run["status"] != "running":
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish")


async def test_credentials_then_a_background_sync_over_http(
    api: httpx.AsyncClient, db: Database, shopify_admin: ShopifyStandIn
) -> None:
    shop = new_shop(shopify_admin)
    shop.generate(customers=12, orders=20, line_items=2)
    put = await api.put(
        f"/shops/{shop.domain}/credentials",
        json={"access_token": shop.token, "scope": ALL_SCOPES},
        headers=ADMIN,
    )
    assert put.status_code == 204, put.text
    stored = await queries.fetchval(db, "SELECT access_token_encrypted FROM shop_credentials")
    assert shop.token not in stored
    assert TokenCipher((TOKEN_KEY,)).decrypt(stored, shop.domain, Purpose.access) == shop.token

    started = await api.post(f"/shops/{shop.domain}/sync", json={"full": False}, headers=ADMIN)
    assert started.status_code == 202, started.text
    run = await wait_for_run(api, started.json()["run_id"])

    assert run["status"] == "succeeded"
    assert run["kind"] == "full"  # the shop's first run
    assert run["resource"] == "customers,orders"
    assert (run["fetched"], run["applied"], run["failed"]) == (32, 32, 0)
    assert run["api_cost"] > 0 and run["finished_at"] is not None
    listing = (await api.get(f"/shops/{shop.domain}/sync", headers=ADMIN)).json()
    assert [r["id"] for r in listing["runs"]] == [run["id"]]
    metrics = (await api.get("/metrics")).text
    assert 'shopify_ingest_sync_runs_total{status="succeeded"} 1.0' in metrics
    assert 'shopify_ingest_sync_objects_total{outcome="applied"} 32.0' in metrics
    assert 'shopify_ingest_sync_shops{state="failing"} 0.0' in metrics

    deleted = await api.delete(f"/shops/{shop.domain}/credentials", headers=ADMIN)
    assert deleted.status_code == 204
    refused = await api.post(f"/shops/{shop.domain}/sync", headers=ADMIN)
    assert refused.status_code == 409
    assert "no Admin API credentials" in refused.json()["detail"]


async def test_a_second_start_while_one_runs_is_refused(
    api: httpx.AsyncClient, db: Database, shop: FakeShop
) -> None:
    shop.bulk_polls_to_complete = 4
    first = await api.post(f"/shops/{shop.domain}/sync", headers=ADMIN)
    second = await api.post(f"/shops/{shop.domain}/sync", headers=ADMIN)

    assert first.status_code == 202
    assert second.status_code == 409
    assert first.json()["run_id"] in second.json()["detail"]
    await wait_for_run(api, first.json()["run_id"])


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("put", "/shops/not-a-shop.example.com/credentials", {"access_token": "x"}, 400),
        ("put", "/shops/a.myshopify.com/credentials", {"token": "x"}, 400),
        ("put", "/shops/a.myshopify.com/credentials", {"access_token": ""}, 400),
        ("put", "/shops/a.myshopify.com/credentials", {"access_token": "a b"}, 400),
        ("post", "/shops/a.myshopify.com/sync", {"resources": ["products"]}, 400),
        ("get", "/sync/runs/not-a-uuid", None, 404),
        ("get", "/sync/runs/00000000-0000-0000-0000-000000000000", None, 404),
    ],
)
async def test_bad_requests_get_clear_errors(
    api: httpx.AsyncClient, method: str, path: str, body: Any, status: int
) -> None:
    response = await api.request(method, path, json=body, headers=ADMIN)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


async def test_the_endpoints_need_the_admin_token(api: httpx.AsyncClient) -> None:
    for method, path in [
        ("put", "/shops/a.myshopify.com/credentials"),
        ("delete", "/shops/a.myshopify.com/credentials"),
        ("post", "/shops/a.myshopify.com/sync"),
        ("get", "/shops/a.myshopify.com/sync"),
        ("get", "/sync/runs/00000000-0000-0000-0000-000000000000"),
    ]:
        response = await api.request(method, path, json={"access_token": "x"})
        assert response.status_code == 401, (method, path)


async def test_storing_a_token_without_an_encryption_key_is_a_clear_error(
    db: Database, sync_config: Settings
) -> None:
    settings = dataclasses.replace(sync_config, token_encryption_keys=())
    async with AsyncTestClient(app=create_app(settings)) as api:
        response = await api.put(
            "/shops/a.myshopify.com/credentials", json={"access_token": "shpat_1"}, headers=ADMIN
        )
    assert response.status_code == 503
    assert "TOKEN_ENCRYPTION_KEY" in response.json()["detail"]
    assert await queries.fetchval(db, "SELECT count(*) FROM shop_credentials") == 0


def cli_environment(settings: Settings, keys: str = TOKEN_KEY, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "SHOPIFY_ADMIN_BASE_URL": settings.shopify_admin_base_url,
        "TOKEN_ENCRYPTION_KEY": keys,
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def cli(
    settings: Settings, *args: str, stdin: str = "", keys: str = TOKEN_KEY, **extra: str
) -> CliResult:
    return call_cli(*args, env=cli_environment(settings, keys, **extra), stdin=stdin)


def cli_process(settings: Settings, *args: str, keys: str = TOKEN_KEY) -> CliResult:
    completed = subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=cli_environment(settings, keys),
        timeout=120,
        check=False,
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


async def test_the_command_line_stores_a_token_syncs_and_rotates_keys(
    db: Database, sync_config: Settings, shopify_admin: ShopifyStandIn
) -> None:
    shop = new_shop(shopify_admin)
    shop.generate(customers=5, orders=7, line_items=1)
    no_key = cli(sync_config, "shops", "set-token", shop.domain, stdin=shop.token + "\n", keys="")
    assert no_key.returncode == 2 and "TOKEN_ENCRYPTION_KEY" in no_key.stderr

    stored = cli(
        sync_config,
        "shops",
        "set-token",
        shop.domain,
        "--scope",
        "read_customers,read_orders",
        stdin=shop.token + "\n",
    )
    assert stored.returncode == 0, stored.stderr
    synced = cli(sync_config, "sync", "--shop", shop.domain)
    assert synced.returncode == 0, synced.stderr
    assert "full sync of customers,orders succeeded" in synced.stdout
    assert "applied 12" in synced.stdout
    assert "read_all_orders" in synced.stdout  # the 60-day limit is said
    again = cli(sync_config, "sync", "--shop", shop.domain, "--resources", "orders")
    assert again.returncode == 0 and "incremental sync of orders succeeded" in again.stdout

    rotated = cli(sync_config, "shops", "rotate-keys", keys=f"{OTHER_TOKEN_KEY},{TOKEN_KEY}")
    assert rotated.returncode == 0 and "re-encrypted 1" in rotated.stdout
    new_only = cli(sync_config, "sync", "--shop", shop.domain, keys=OTHER_TOKEN_KEY)
    assert new_only.returncode == 0, new_only.stderr
    old_only = cli(sync_config, "sync", "--shop", shop.domain, keys=TOKEN_KEY)
    assert old_only.returncode == 1 and "cannot be decrypted" in old_only.stderr
    for result in (stored, synced, again, rotated, new_only, old_only):
        assert shop.token not in result.stdout + result.stderr


async def test_a_run_finding_another_in_progress_does_nothing_and_exits_0(
    db: Database, sync_config: Settings, shop: FakeShop
) -> None:
    await queries.execute(
        db,
        "INSERT INTO sync_leases (shop_id, run_id, expires_at)"
        " VALUES ($1, gen_random_uuid(), now() + interval '1 minute')",
        shop.domain,
    )
    result = cli(sync_config, "sync", "--shop", shop.domain)
    assert result.returncode == 0
    assert "another sync is running" in result.stdout
    assert await queries.fetchval(db, "SELECT count(*) FROM sync_runs") == 0


async def test_sync_all_runs_every_shop_with_credentials(
    db: Database, sync_config: Settings, shopify_admin: ShopifyStandIn
) -> None:
    from tests.support.sync import give_credentials

    shops = [new_shop(shopify_admin) for _ in range(2)]
    for shop in shops:
        shop.generate(customers=2, orders=2, line_items=1)
        await give_credentials(db, sync_config, shop)

    result = cli(sync_config, "sync", "--all")

    assert result.returncode == 0, result.stderr
    rows = await queries.fetch(db, "SELECT shop_id, status FROM sync_runs ORDER BY shop_id")
    assert rows == [
        {"shop_id": s.domain, "status": "succeeded"} for s in sorted(shops, key=lambda s: s.domain)
    ]


async def test_the_schedule_syncs_each_shop_again_and_stops_on_sigterm(
    db: Database, sync_config: Settings, shopify_admin: ShopifyStandIn
) -> None:
    import signal
    import time

    from tests.support.sync import give_credentials

    shop = new_shop(shopify_admin)
    shop.generate(customers=2, orders=2, line_items=1)
    await give_credentials(db, sync_config, shop)
    env = {
        **os.environ,
        "DATABASE_URL": sync_config.database_url or "",
        "SHOPIFY_ADMIN_BASE_URL": sync_config.shopify_admin_base_url,
        "TOKEN_ENCRYPTION_KEY": TOKEN_KEY,
    }
    process = subprocess.Popen(  # noqa: ASYNC220
        # Every half second: the scheduler's shortest sleep.
        [sys.executable, "-m", "app", "sync", "--all", "--every", "0.5"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            runs = await queries.fetchval(
                db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"
            )
            if runs >= 3:
                break
            await asyncio.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert runs >= 3, stderr
    kinds = await queries.fetch(db, "SELECT kind FROM sync_runs ORDER BY started_at")
    assert [row["kind"] for row in kinds][:2] == ["full", "incremental"]
    assert process.returncode == 0
    assert await queries.fetchval(db, "SELECT count(*) FROM sync_leases") == 0


async def test_metrics_count_failing_shops(
    db: Database, sync_config: Settings, shop: FakeShop, shopify_admin: ShopifyStandIn
) -> None:
    from app.devtools.standin import Fault
    from tests.support.sync import sync

    shopify_admin.inject(Fault.status(401), times=1, shop=shop.domain)
    await sync(db, sync_config, shop)
    async with AsyncTestClient(app=create_app(sync_config)) as api:
        metrics = (await api.get("/metrics")).text
    assert 'shopify_ingest_sync_shops{state="failing"} 1.0' in metrics
    assert 'shopify_ingest_sync_runs_total{status="failed"} 1.0' in metrics


async def test_a_missing_encryption_key_is_a_one_line_error_naming_it(
    db: Database, sync_config: Settings, shop: FakeShop
) -> None:
    """Tokens are stored, the key is gone: every command says so in one line and exits 2;
    over HTTP the sync and the subscription check answer 409."""
    public = {"PUBLIC_URL": "https://ingest.example.com"}
    results = [
        cli_process(sync_config, "sync", "--shop", shop.domain, keys=""),
        cli(sync_config, "sync", "--all", keys=""),
        cli(sync_config, "subscriptions", "check", "--shop", shop.domain, keys="", **public),
    ]
    for result in results:
        assert result.returncode == 2, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "TOKEN_ENCRYPTION_KEY" in errors[0], result.stderr
    assert await queries.fetchval(db, "SELECT count(*) FROM sync_runs") == 0

    settings = dataclasses.replace(
        sync_config, token_encryption_keys=(), public_url="https://ingest.example.com"
    )
    async with AsyncTestClient(app=create_app(settings)) as api:
        answers = [
            await api.post(f"/shops/{shop.domain}/sync", headers=ADMIN),
            await api.get(f"/shops/{shop.domain}/subscriptions", headers=ADMIN),
        ]
    for answer in answers:
        assert answer.status_code == 409, answer.text
        assert "TOKEN_ENCRYPTION_KEY" in answer.json()["detail"]


def start_schedule(settings: Settings, keys: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app", "sync", "--all", "--every", "3600"],
        cwd=ROOT,
        env=cli_environment(settings, keys),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def first_line(stream: Any) -> str:
    line: str = await asyncio.wait_for(asyncio.to_thread(stream.readline), timeout=30)
    return line


def stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    import signal

    process.send_signal(signal.SIGTERM)
    return process.communicate(timeout=30)


async def test_the_schedule_says_at_start_what_it_will_do(
    db: Database, sync_config: Settings, shopify_admin: ShopifyStandIn
) -> None:
    empty = start_schedule(sync_config, TOKEN_KEY)
    try:
        first = await first_line(empty.stdout)
    finally:
        stop(empty)
    assert first.startswith("sync: no shop has credentials yet"), first
    assert "every 3600 s" in first
    assert empty.returncode == 0

    from tests.support.sync import give_credentials

    shop = new_shop(shopify_admin)
    await give_credentials(db, sync_config, shop)
    without_key = start_schedule(sync_config, "")
    try:
        error = await first_line(without_key.stderr)
        plan = await first_line(without_key.stdout)
        assert without_key.poll() is None  # it runs on: no restart loop under compose
    finally:
        stop(without_key)
    assert error.startswith("error: TOKEN_ENCRYPTION_KEY is not set"), error
    assert plan.startswith("sync: 1 shop(s) with credentials"), plan


async def test_a_token_stored_while_rotate_keys_runs_is_never_overwritten(
    db: Database, sync_config: Settings, shopify_admin: ShopifyStandIn
) -> None:
    """rotate-keys is held on the first shop's row while new tokens are stored (204) for
    the others; when it goes on, those tokens stay, and it says which shops changed."""
    from tests.support.sync import give_credentials

    shops = sorted((new_shop(shopify_admin) for _ in range(6)), key=lambda s: s.domain)
    for shop in shops:
        await give_credentials(db, sync_config, shop)
    assert sync_config.database_url is not None
    holder = await asyncpg.connect(sync_config.database_url, statement_cache_size=0)
    holding = holder.transaction()
    await holding.start()
    await holder.execute(
        "SELECT FROM shop_credentials WHERE shop_id = $1 FOR UPDATE", shops[0].domain
    )
    rotation = asyncio.create_task(
        asyncio.to_thread(
            cli, sync_config, "shops", "rotate-keys", keys=f"{OTHER_TOKEN_KEY},{TOKEN_KEY}"
        )
    )
    try:
        await wait_for_a_blocked_update(db)
        stored_meanwhile = {}
        async with AsyncTestClient(app=create_app(sync_config)) as api:
            for shop in shops[1:]:
                token = f"shpat_new_{shop.domain[:17]}"
                put = await api.put(
                    f"/shops/{shop.domain}/credentials",
                    json={"access_token": token, "scope": ALL_SCOPES},
                    headers=ADMIN,
                )
                assert put.status_code == 204, put.text
                stored_meanwhile[shop.domain] = token
    finally:
        await holding.commit()
        await holder.close()
    rotated = await rotation

    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    cipher = TokenCipher((OTHER_TOKEN_KEY, TOKEN_KEY))
    rows = await queries.fetch(db, "SELECT shop_id, access_token_encrypted FROM shop_credentials")
    tokens = {
        row["shop_id"]: cipher.decrypt(
            row["access_token_encrypted"], row["shop_id"], Purpose.access
        )
        for row in rows
    }
    assert tokens == {shops[0].domain: shops[0].token, **stored_meanwhile}
    for domain in stored_meanwhile:
        assert f"{domain}: changed while this ran" in rotated.stdout


async def wait_for_a_blocked_update(db: Database) -> None:
    for _ in range(300):
        # On Citus the shard's statement: UPDATE public.shop_credentials_102008 ...
        if await queries.lock_waits(db, "UPDATE %shop_credentials%"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("rotate-keys never reached the held row")


async def test_a_ciphertext_moved_to_another_shops_row_is_refused_not_sent(
    db: Database, sync_config: Settings, shopify_admin: ShopifyStandIn
) -> None:
    from tests.support.sync import give_credentials, sync

    victim, attacker = new_shop(shopify_admin), new_shop(shopify_admin)
    for shop in (victim, attacker):
        await give_credentials(db, sync_config, shop)
    # The attacker's row now holds the victim's encrypted token.
    stolen = await queries.fetchrow(
        db, "SELECT access_token_encrypted FROM shop_credentials WHERE shop_id = $1", victim.domain
    )
    assert stolen is not None
    await queries.execute(
        db,
        "UPDATE shop_credentials SET access_token_encrypted = $1 WHERE shop_id = $2",
        stolen["access_token_encrypted"],
        attacker.domain,
    )

    with pytest.raises(SyncRefused) as refused:
        await sync(db, sync_config, attacker)
    assert "another shop" in str(refused.value)
    async with AsyncTestClient(app=create_app(sync_config)) as api:
        answer = await api.post(f"/shops/{attacker.domain}/sync", headers=ADMIN)
    assert answer.status_code == 409, answer.text
    scheduled = cli(sync_config, "sync", "--all")
    assert f"{attacker.domain}" in scheduled.stderr  # skipped, and said so

    sent_to_attacker = [
        r for r in shopify_admin.requests if r.path.startswith(f"/{attacker.domain}/")
    ]
    assert sent_to_attacker == []
    assert all(
        victim.token not in str(r.headers)
        for r in shopify_admin.requests
        if r.path.startswith(f"/{attacker.domain}")
    )
    assert (
        await queries.fetchval(
            db, "SELECT count(*) FROM sync_runs WHERE shop_id = $1", attacker.domain
        )
        == 0
    )
    assert (
        await queries.fetchval(db, "SELECT status FROM sync_runs WHERE shop_id = $1", victim.domain)
        == "succeeded"
    )


async def test_set_token_refuses_what_the_endpoint_refuses(
    db: Database, sync_config: Settings, api: httpx.AsyncClient
) -> None:
    for token in ("a b", "tökén", "x" * 1001):
        put = await api.put(
            "/shops/a.myshopify.com/credentials", json={"access_token": token}, headers=ADMIN
        )
        assert put.status_code == 400, (token, put.text)
        result = cli(sync_config, "shops", "set-token", "a.myshopify.com", stdin=token + "\n")
        assert result.returncode == 2, (token, result.stdout)
        assert token not in result.stdout + result.stderr
    assert await queries.fetchval(db, "SELECT count(*) FROM shop_credentials") == 0
