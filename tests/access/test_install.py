"""The OAuth install of a standalone app, end to end through a real server and the stand-in."""

from __future__ import annotations

import dataclasses
import time

import httpx
import pytest

from app.access.cipher import Purpose, TokenCipher
from app.config import Settings
from app.db.database import Database
from app.devtools.standin import FakeShop, ShopifyStandIn
from app.devtools.standin.oauth import query_hmac
from tests.support import queries
from tests.support.access import (
    begin_install,
    callback_query,
    credentials_row,
    finished_run,
    new_shop,
    token_calls,
)
from tests.support.asgi import served
from tests.support.sync import TOKEN_KEY


async def test_install_end_to_end_ends_with_the_shops_history_synced(
    db: Database, access_config: Settings, shopify_admin: ShopifyStandIn, shop: FakeShop, port: int
) -> None:
    async with (
        served(access_config, port=port),
        httpx.AsyncClient(follow_redirects=True, timeout=30) as browser,
    ):
        page = await browser.get(
            f"http://127.0.0.1:{port}/auth/install", params={"shop": shop.domain}
        )
        assert page.status_code == 200, page.text
        assert shop.domain in page.text and page.headers["content-type"].startswith("text/html")
        # The browser went through Shopify's authorize page and back to the callback.
        assert [str(r.url).split("?")[0] for r in page.history] == [
            f"http://127.0.0.1:{port}/auth/install",
            f"{shopify_admin.base_url.format(shop=shop.domain)}/admin/oauth/authorize",
        ]
        run = await finished_run(db, shop.domain)

    assert run["status"] == "succeeded", run["last_error"]
    assert run["kind"] == "full"
    stored = await queries.fetchval(
        db, "SELECT count(*) FROM customers WHERE shop_id = $1", shop.domain
    )
    assert stored == len(shop.customers)
    orders = await queries.fetchval(
        db, "SELECT count(*) FROM orders WHERE shop_id = $1", shop.domain
    )
    assert orders == len(shop.orders)
    # Expiring offline tokens, encrypted and bound to the shop.
    row = await credentials_row(db, shop.domain)
    assert row is not None and row["invalid_at"] is None
    live = shopify_admin.oauth.access(shop.domain).live
    assert live is not None
    cipher = TokenCipher((TOKEN_KEY,))
    assert cipher.decrypt(row["access_token_encrypted"], shop.domain, Purpose.access) == (
        live.access_token
    )
    assert cipher.decrypt(row["refresh_token_encrypted"], shop.domain, Purpose.refresh) == (
        live.refresh_token
    )
    assert 3500 < (row["expires_at"].timestamp() - time.time()) <= 3600
    [exchange] = token_calls(shopify_admin, shop.domain)
    assert exchange.body["expiring"] == "1" and "grant_type" not in exchange.body
    # The shop's webhook subscriptions were created, pointing at PUBLIC_URL.
    assert {s["topic"] for s in shop.subscriptions} == {"ORDERS_CREATE", "CUSTOMERS_UPDATE"}
    assert {s["uri"] for s in shop.subscriptions} == {f"http://127.0.0.1:{port}/webhooks/shopify"}


async def test_after_the_install_the_browser_goes_to_post_install_redirect(
    db: Database, access_config: Settings, shopify_admin: ShopifyStandIn, shop: FakeShop, port: int
) -> None:
    config = dataclasses.replace(
        access_config, post_install_redirect="https://app.example/welcome?shop={shop}"
    )
    async with served(config, port=port), httpx.AsyncClient(timeout=30) as browser:
        start = await browser.get(
            f"http://127.0.0.1:{port}/auth/install", params={"shop": shop.domain}
        )
        approved = await browser.get(start.headers["location"])
        assert approved.status_code == 302
        done = await browser.get(approved.headers["location"])
        await finished_run(db, shop.domain)

    assert done.status_code == 302, done.text
    assert done.headers["location"] == f"https://app.example/welcome?shop={shop.domain}"
    assert "shopify_ingest_oauth_state=" in done.headers["set-cookie"]  # cleared
    assert "max-age=0" in done.headers["set-cookie"].lower()


async def test_the_install_sets_a_short_lived_httponly_state_cookie(
    db: Database, access_config: Settings, shop: FakeShop, port: int
) -> None:
    async with served(access_config, port=port) as client:
        answer = await client.get("/auth/install", params={"shop": shop.domain.upper()})
    assert answer.status_code == 302
    location = httpx.URL(answer.headers["location"])
    assert location.path.endswith(f"/{shop.domain}/admin/oauth/authorize")
    assert location.params["client_id"] == access_config.shopify_api_key
    assert location.params["scope"] == "read_customers,read_orders,read_all_orders"
    assert location.params["redirect_uri"] == f"http://127.0.0.1:{port}/auth/callback"
    assert len(location.params["state"]) >= 32
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/auth" in cookie
    assert "max-age=600" in cookie
    assert "secure" not in cookie  # PUBLIC_URL is http here; https sets Secure


@pytest.mark.parametrize(
    "forgery",
    [
        "bad hmac",
        "hmac with another secret",
        "stale timestamp",
        "timestamp in the future",
        "wrong state",
        "foreign shop",
        "no cookie",
        "tampered cookie",
        "no hmac",
    ],
)
async def test_a_forged_callback_is_refused_with_nothing_stored_and_shopify_not_called(
    db: Database,
    access_config: Settings,
    shopify_admin: ShopifyStandIn,
    shop: FakeShop,
    port: int,
    forgery: str,
) -> None:
    other = new_shop(shopify_admin)
    async with served(access_config, port=port) as client:
        state, cookie = await begin_install(client, shop.domain)
        query = callback_query(shopify_admin, shop.domain, state)
        if forgery == "bad hmac":
            query["hmac"] = "0" * 64
        elif forgery == "hmac with another secret":
            query = callback_query(shopify_admin, shop.domain, state, secret="not-the-secret")
        elif forgery == "stale timestamp":
            query = callback_query(shopify_admin, shop.domain, state, timestamp=time.time() - 600)
        elif forgery == "timestamp in the future":
            query = callback_query(shopify_admin, shop.domain, state, timestamp=time.time() + 600)
        elif forgery == "wrong state":
            query = callback_query(shopify_admin, shop.domain, state[:-2] + "xx")
        elif forgery == "foreign shop":  # validly signed, but the install was for another shop
            query = callback_query(shopify_admin, other.domain, state)
        elif forgery == "tampered cookie":
            cookie = cookie[:-4] + "0000"
        elif forgery == "no hmac":
            del query["hmac"]
        client.cookies.clear()
        if forgery != "no cookie":
            client.cookies.set("shopify_ingest_oauth_state", cookie)
        answer = await client.get("/auth/callback", params=query)

    assert answer.status_code in (400, 401), answer.text
    assert answer.json()["status_code"] == answer.status_code and answer.json()["detail"]
    assert await queries.fetchval(db, "SELECT count(*) FROM shop_credentials") == 0
    assert token_calls(shopify_admin, shop.domain) == []
    assert token_calls(shopify_admin, other.domain) == []


async def test_launch_parameters_must_verify_when_present(
    db: Database, access_config: Settings, shopify_admin: ShopifyStandIn, shop: FakeShop, port: int
) -> None:
    signed = callback_query(shopify_admin, shop.domain, "unused")
    launch = {k: v for k, v in signed.items() if k not in ("code", "state")}
    launch["hmac"] = query_hmac(launch, shopify_admin.oauth.app.api_secret)
    async with served(access_config, port=port) as client:
        good = await client.get("/auth/install", params=launch)
        forged = await client.get("/auth/install", params={**launch, "hmac": "f" * 64})
        not_a_shop = await client.get("/auth/install", params={"shop": "evil.example.com"})
    assert good.status_code == 302
    assert forged.status_code == 401 and "hmac" in forged.json()["detail"]
    assert not_a_shop.status_code == 400 and "myshopify.com" in not_a_shop.json()["detail"]


async def test_without_the_apps_client_id_connecting_says_which_setting_is_missing(
    db: Database, access_config: Settings, shop: FakeShop, port: int
) -> None:
    config = dataclasses.replace(access_config, shopify_api_key=None)
    async with served(config, port=port) as client:
        answer = await client.get("/auth/install", params={"shop": shop.domain})
    assert answer.status_code == 503
    assert "SHOPIFY_API_KEY" in answer.json()["detail"]
    assert "retry-after" not in answer.headers  # an operator has to act; retrying won't help


async def test_a_refused_code_is_a_clear_error_and_stores_nothing(
    db: Database, access_config: Settings, shopify_admin: ShopifyStandIn, shop: FakeShop, port: int
) -> None:
    async with served(access_config, port=port) as client:
        state, _ = await begin_install(client, shop.domain)  # the client keeps the cookie
        query = callback_query(shopify_admin, shop.domain, state, code="never-issued")
        answer = await client.get("/auth/callback", params=query)
    assert answer.status_code == 400, answer.text
    assert "invalid_request" in answer.json()["detail"]
    assert len(token_calls(shopify_admin, shop.domain, "code")) == 1
    assert await credentials_row(db, shop.domain) is None
