"""Expiring tokens kept fresh: before use, after a 401, once per shop at a time, through faults."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from app.access import metrics
from app.access.cipher import Purpose, TokenCipher
from app.access.tokens import TokenService
from app.config import Settings
from app.db.database import Database
from app.db.enums import SyncRunStatus
from app.devtools.stack import ROOT
from app.devtools.standin import FakeShop, Fault, ShopifyStandIn
from app.devtools.standin.oauth import session_token
from app.shopify.client import http_client
from app.sync.scheduler import sync_all_once
from tests.support import queries
from tests.support.access import ADMIN, credentials_row, new_shop, token_calls
from tests.support.asgi import concurrent_client
from tests.support.sync import TOKEN_KEY, runner_for, stored_customers, sync


async def no_sleep(_: float) -> None:
    """The token endpoint's backoff, without the wait."""


async def hand_over(
    db: Database, config: Settings, stand_in: ShopifyStandIn, shop: FakeShop, **lifetimes: float
) -> dict[str, Any]:
    """An expiring pair Shopify issued to the app, handed to the service (PUT credentials)."""
    issued = stand_in.oauth.issue(shop.domain, **lifetimes)
    async with concurrent_client(config) as client:
        answer = await client.put(
            f"/shops/{shop.domain}/credentials",
            json={
                "access_token": issued["access_token"],
                "refresh_token": issued["refresh_token"],
                "expires_in": max(1, issued["expires_in"]),
                "refresh_token_expires_in": issued["refresh_token_expires_in"],
                "scope": issued["scope"],
            },
            headers=ADMIN,
        )
    assert answer.status_code == 204, answer.text
    return issued


def refreshes(outcome: str) -> float:
    return metrics.TOKEN_REFRESHES.labels(outcome=outcome)._value.get()


async def test_a_token_close_to_its_expiry_is_refreshed_before_it_is_used(
    db: Database, access_config: Settings, shopify_admin: ShopifyStandIn, shop: FakeShop
) -> None:
    issued = await hand_over(db, access_config, shopify_admin, shop, access_ttl=120)
    ok_before = refreshes("ok")

    _, status = await sync(db, access_config, shop, full=True)

    assert status is SyncRunStatus.succeeded
    assert len(token_calls(shopify_admin, shop.domain, "refresh_token")) == 1
    unauthorized = [r for r in shopify_admin.requests if r.status == 401 and shop.domain in r.path]
    assert unauthorized == []  # refreshed first, never refused
    assert refreshes("ok") == ok_before + 1
    live = shopify_admin.oauth.access(shop.domain).live
    assert live is not None and live.access_token != issued["access_token"]
    row = await credentials_row(db, shop.domain)
    assert row is not None
    cipher = TokenCipher((TOKEN_KEY,))
    assert cipher.decrypt(row["access_token_encrypted"], shop.domain, Purpose.access) == (
        live.access_token
    )
    assert row["expires_at"] > datetime.now(UTC) + timedelta(minutes=55)


async def test_a_token_expiring_in_the_middle_of_a_full_sync_is_refreshed_once(
    db: Database, access_config: Settings, shopify_admin: ShopifyStandIn, shop: FakeShop
) -> None:
    await hand_over(db, access_config, shopify_admin, shop)
    shop.bulk_polls_to_complete = 3
    # Shopify's side: the token dies after the customers export has started.
    shopify_admin.oauth.expire_after(shop.domain, calls=3)

    _, status = await sync(db, access_config, shop, full=True)

    assert status is SyncRunStatus.succeeded
    assert len(token_calls(shopify_admin, shop.domain, "refresh_token")) == 1
    unauthorized = [r for r in shopify_admin.requests if r.status == 401 and shop.domain in r.path]
    # The calls that found it expired (the two exports run side by side: one or two in
    # flight), each retried once with the new one.
    assert 1 <= len(unauthorized) <= 2
    assert len(await stored_customers(db, shop.domain)) == len(shop.customers)


async def test_two_processes_and_the_token_endpoint_needing_a_refresh_at_once_make_one_call(
    db: Database, access_config: Settings, shopify_admin: ShopifyStandIn, shop: FakeShop
) -> None:
    await hand_over(db, access_config, shopify_admin, shop, access_ttl=60)
    # Shopify takes its time to answer, so all three ask while the first refresh is in flight.
    shopify_admin.inject(Fault.slow(1.5), times=3, kind="token", shop=shop.domain)
    config = dataclasses.replace(access_config, token_broker_enabled=True)
    env = {
        **os.environ,
        "DATABASE_URL": config.database_url or "",
        "SHOPIFY_ADMIN_BASE_URL": config.shopify_admin_base_url,
        "SHOPIFY_API_KEY": config.shopify_api_key or "",
        "SHOPIFY_API_SECRET": config.shopify_api_secret or "",
        "TOKEN_ENCRYPTION_KEY": TOKEN_KEY,
        "PUBLIC_URL": config.public_url or "",
        "WEBHOOK_TOPICS": "orders/create",
        "LOG_LEVEL": "WARNING",
    }
    commands = [
        ("sync", "--shop", shop.domain),
        ("subscriptions", "check", "--shop", shop.domain),
    ]
    processes = [
        subprocess.Popen(  # noqa: ASYNC220 (waited for below, off the loop)
            [sys.executable, "-m", "app", *command],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    async with concurrent_client(config) as client:
        await asyncio.sleep(0.5)  # the processes have started and found the token due
        broker = await client.post(f"/shops/{shop.domain}/access-token", headers=ADMIN)
    outputs = [await asyncio.to_thread(process.communicate, timeout=60) for process in processes]

    assert broker.status_code == 200, broker.text
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert err.count("Traceback") == 0, err
        assert process.returncode in (0, 1), (out, err)  # 1: subscriptions missing, not a failure
        assert "refused" not in out + err
    assert len(token_calls(shopify_admin, shop.domain, "refresh_token")) == 1
    live = shopify_admin.oauth.access(shop.domain).live
    assert live is not None and broker.json()["access_token"] == live.access_token
    runs = await queries.fetch(db, "SELECT status FROM sync_runs WHERE shop_id = $1", shop.domain)
    assert [run["status"] for run in runs] == ["succeeded"]


async def test_a_refresh_answer_lost_after_shopify_rotated_is_recovered(
    db: Database, access_config: Settings, shopify_admin: ShopifyStandIn, shop: FakeShop
) -> None:
    await hand_over(db, access_config, shopify_admin, shop, access_ttl=60)
    shopify_admin.inject(Fault.drop_after(), times=1, kind="token", shop=shop.domain)

    async with http_client() as http:
        service = TokenService(db, access_config, http, sleep=no_sleep)
        credentials = await service.current(shop.domain)

    calls = token_calls(shopify_admin, shop.domain, "refresh_token")
    assert len(calls) == 2  # the lost answer, then the same refresh token again
    assert calls[0].body["refresh_token"] == calls[1].body["refresh_token"]
    live = shopify_admin.oauth.access(shop.domain).live
    assert live is not None and credentials.access_token == live.access_token
    row = await credentials_row(db, shop.domain)
    assert row is not None and row["invalid_at"] is None and row["refresh_claim"] is None
    _, status = await sync(db, access_config, shop)
    assert status is SyncRunStatus.succeeded


async def test_a_lost_answer_is_recovered_when_a_replay_gives_a_new_pair_too(
    db: Database, access_config: Settings, shopify_admin: ShopifyStandIn, shop: FakeShop
) -> None:
    await hand_over(db, access_config, shopify_admin, shop, access_ttl=60)
    shopify_admin.oauth.replay_returns_same_pair = False
    shopify_admin.inject(Fault.drop_after(), times=1, kind="token", shop=shop.domain)
    try:
        async with http_client() as http:
            credentials = await TokenService(db, access_config, http, sleep=no_sleep).current(
                shop.domain
            )
    finally:
        shopify_admin.oauth.replay_returns_same_pair = True
    live = shopify_admin.oauth.access(shop.domain).live
    assert live is not None and credentials.access_token == live.access_token
    _, status = await sync(db, access_config, shop)
    assert status is SyncRunStatus.succeeded


async def test_a_refused_refresh_marks_the_shop_once_and_it_is_skipped_until_connected_again(
    db: Database, access_config: Settings, shopify_admin: ShopifyStandIn, shop: FakeShop
) -> None:
    issued = shopify_admin.oauth.issue(shop.domain)
    shopify_admin.oauth.issue(shop.domain)  # another component refreshed: ours is revoked
    async with concurrent_client(access_config) as client:
        put = await client.put(
            f"/shops/{shop.domain}/credentials",
            json={
                "access_token": issued["access_token"],
                "refresh_token": issued["refresh_token"],
                "expires_in": 30,
            },
            headers=ADMIN,
        )
        assert put.status_code == 204
        refused_before = refreshes("refused")

        _, status = await sync(db, access_config, shop)
        again = await client.post(f"/shops/{shop.domain}/sync", headers=ADMIN)
        scraped = (await client.get("/metrics")).text

        assert status is SyncRunStatus.failed
        assert again.status_code == 409 and "re-authorization" in again.json()["detail"]
        assert len(token_calls(shopify_admin, shop.domain)) == 1  # no retry storm
        assert refreshes("refused") == refused_before + 1
        assert "shopify_ingest_shops_needing_reauthorization 1.0" in scraped
        row = await credentials_row(db, shop.domain)
        assert row is not None and "invalid_grant" in row["invalid_reason"]
        run = await queries.fetchrow(db, "SELECT * FROM sync_runs WHERE shop_id = $1", shop.domain)
        assert run["error_kind"] == "credentials_unusable"
        assert "re-authorization" in run["last_error"]
        async with runner_for(db, access_config) as runner:
            assert shop.domain not in await sync_all_once(runner)  # skipped, not failed again
        assert len(token_calls(shopify_admin, shop.domain)) == 1

        # The merchant opens the embedded app: a token exchange clears the mark.
        token = session_token(shopify_admin.oauth.app, shop.domain)
        exchanged = await client.post(
            "/auth/token-exchange", headers={"Authorization": f"Bearer {token}"}
        )
        assert exchanged.status_code == 200, exchanged.text
    row = await credentials_row(db, shop.domain)
    assert row is not None and row["invalid_at"] is None and row["invalid_reason"] is None


async def test_an_outage_of_the_token_endpoint_is_retried_and_never_marks_the_shop(
    db: Database, access_config: Settings, shopify_admin: ShopifyStandIn, shop: FakeShop
) -> None:
    await hand_over(db, access_config, shopify_admin, shop, access_ttl=60)
    shopify_admin.inject(Fault.status(503), times=2, kind="token", shop=shop.domain)
    async with http_client() as http:
        service = TokenService(db, access_config, http, sleep=no_sleep)
        await service.current(shop.domain)  # third attempt answers
        assert len(token_calls(shopify_admin, shop.domain, "refresh_token")) == 3

        shopify_admin.oauth.expire_now(shop.domain)
        shopify_admin.inject(
            Fault.status(429, retry_after=1), times=5, kind="token", shop=shop.domain
        )
        failed_before = refreshes("failed")
        _, status = await sync(db, access_config, shop)

    assert status is SyncRunStatus.failed
    run = await queries.fetchrow(
        db, "SELECT * FROM sync_runs WHERE shop_id = $1 ORDER BY started_at DESC", shop.domain
    )
    assert run["error_kind"] == "token_refresh_failed", run["last_error"]
    assert refreshes("failed") == failed_before + 1
    row = await credentials_row(db, shop.domain)
    assert row is not None and row["invalid_at"] is None and row["refresh_claim"] is None
    shopify_admin.clear_faults()
    _, status = await sync(db, access_config, shop)
    assert status is SyncRunStatus.succeeded


async def test_a_refresh_token_near_its_end_is_renewed_even_if_nothing_needs_the_shop(
    db: Database, access_config: Settings, shopify_admin: ShopifyStandIn, shop: FakeShop
) -> None:
    await hand_over(db, access_config, shopify_admin, shop, refresh_ttl=3 * 86400)
    fresh = new_shop(shopify_admin)
    await hand_over(db, access_config, shopify_admin, fresh)
    async with http_client() as http:
        renewed = await TokenService(db, access_config, http).keep_refresh_tokens_alive()
    assert renewed == 1
    assert len(token_calls(shopify_admin, shop.domain, "refresh_token")) == 1
    assert token_calls(shopify_admin, fresh.domain, "refresh_token") == []
    row = await credentials_row(db, shop.domain)
    assert row is not None
    assert row["refresh_token_expires_at"] > datetime.now(UTC) + timedelta(days=80)


async def test_shops_side_by_side_each_refresh_their_token_once(
    db: Database, access_config: Settings, shopify_admin: ShopifyStandIn
) -> None:
    """A pass of the scheduler over several shops whose tokens are due for a refresh, each
    shop's customers and orders exported side by side: one refresh per shop."""
    shops = [new_shop(shopify_admin) for _ in range(4)]
    for shop in shops:
        shop.generate(customers=2, orders=2, line_items=1)
        await hand_over(db, access_config, shopify_admin, shop, access_ttl=60)
    config = dataclasses.replace(access_config, sync_concurrency=len(shops))

    async with runner_for(db, config) as runner:
        failed = await sync_all_once(runner)

    assert failed == []
    for shop in shops:
        assert len(token_calls(shopify_admin, shop.domain, "refresh_token")) == 1
        assert len(await stored_customers(db, shop.domain)) == 2
