"""Helpers for the shop access tests: settings, what the stand-in saw, what was stored."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from app.config import Settings
from app.db.database import Database
from app.devtools.standin import FakeShop, ShopifyStandIn
from app.devtools.standin.oauth import query_hmac
from tests.support import queries
from tests.support.sync import TOKEN_KEY

ADMIN = {"Authorization": "Bearer test-admin-token"}


def access_settings(
    settings: Settings, stand_in: ShopifyStandIn, port: int, **changes: Any
) -> Settings:
    """The service's settings for an app registered with the stand-in, served on `port`."""
    return dataclasses.replace(
        settings,
        shopify_admin_base_url=stand_in.base_url,
        shopify_api_key=stand_in.oauth.app.api_key,
        token_encryption_keys=(TOKEN_KEY,),
        public_url=f"http://127.0.0.1:{port}",
        webhook_topics=("orders/create", "customers/update"),
        **changes,
    )


def new_shop(stand_in: ShopifyStandIn, **options: Any) -> FakeShop:
    domain = f"access-{uuid.uuid4().hex[:12]}.myshopify.com"
    return stand_in.add_shop(domain, token=f"shpat_{uuid.uuid4().hex}", **options)


def token_calls(stand_in: ShopifyStandIn, shop: str, grant: str | None = None) -> list[Any]:
    """The stand-in's token endpoint requests for the shop (`grant`: refresh_token, code...)."""
    calls = [
        request
        for request in stand_in.requests
        if request.kind == "token" and request.path.startswith(f"/{shop}/")
    ]
    if grant is None:
        return calls
    return [call for call in calls if _grant(call.body) == grant]


def _grant(body: Any) -> str:
    if not isinstance(body, dict):
        return "?"
    if body.get("grant_type") == "refresh_token":
        return "refresh_token"
    if "code" in body:
        return "code"
    return str(body.get("subject_token_type", "?")).rsplit(":", 1)[-1]


async def credentials_row(db: Database, shop: str) -> dict[str, Any] | None:
    rows = await queries.fetch(db, "SELECT * FROM shop_credentials WHERE shop_id = $1", shop)
    return rows[0] if rows else None


def callback_query(
    stand_in: ShopifyStandIn,
    shop: str,
    state: str,
    *,
    code: str = "c0de",
    timestamp: float | None = None,
    secret: str | None = None,
) -> dict[str, str]:
    """A callback query signed as Shopify signs it (or with `secret`)."""
    params = {
        "code": code,
        "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvdGVzdA",
        "shop": shop,
        "state": state,
        "timestamp": str(int(time.time() if timestamp is None else timestamp)),
    }
    params["hmac"] = query_hmac(params, secret or stand_in.oauth.app.api_secret)
    return params


async def begin_install(client: httpx.AsyncClient, shop: str) -> tuple[str, str]:
    """GET /auth/install without following: the state sent to Shopify, and the cookie."""
    answer = await client.get("/auth/install", params={"shop": shop})
    assert answer.status_code == 302, answer.text
    state = parse_qs(urlsplit(answer.headers["location"]).query)["state"][0]
    cookie = answer.cookies.get("shopify_ingest_oauth_state")
    assert cookie
    return state, cookie


async def finished_run(db: Database, shop: str, within: float = 30.0) -> dict[str, Any]:
    """The shop's first sync run once it has ended."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        rows = await queries.fetch(
            db,
            "SELECT * FROM sync_runs WHERE shop_id = $1 AND status <> 'running'"
            " ORDER BY started_at",
            shop,
        )
        if rows:
            return rows[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no sync run of {shop} finished within {within} s")
