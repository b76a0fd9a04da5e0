"""No access, refresh or original token in clear: not in logs, answers, metrics, the database
or the OpenAPI document, whatever path the tokens took (the token broker's answer excepted)."""

from __future__ import annotations

import dataclasses

import httpx

from app.access.cipher import TokenCipher
from app.access.credentials import connect
from app.config import Settings
from app.db.database import Database
from app.devtools.standin import FakeShop, ShopifyStandIn
from app.devtools.standin.oauth import session_token
from app.shopify.oauth import IssuedToken
from tests.support import queries
from tests.support.access import ADMIN, finished_run, new_shop
from tests.support.asgi import served
from tests.support.ops import collected_logs
from tests.support.sync import TOKEN_KEY, sync

TABLES = (
    "shops",
    "shop_credentials",
    "sync_runs",
    "sync_state",
    "webhook_events",
    "subscription_checks",
    "customers",
    "orders",
)


def every_token(stand_in: ShopifyStandIn, *shops: FakeShop) -> set[str]:
    tokens = set()
    for shop in shops:
        access = stand_in.oauth.access(shop.domain)
        tokens |= access.revoked | {shop.token}
        if access.live is not None:
            tokens |= {access.live.access_token, access.live.refresh_token}
    return tokens


async def test_no_token_in_clear_anywhere(
    db: Database, access_config: Settings, shopify_admin: ShopifyStandIn, shop: FakeShop, port: int
) -> None:
    config = dataclasses.replace(access_config, token_broker_enabled=True)
    embedded, legacy = new_shop(shopify_admin), new_shop(shopify_admin)
    await connect(
        db,
        TokenCipher((TOKEN_KEY,)),
        legacy.domain,
        IssuedToken(legacy.token, "read_orders", None, None, None),
    )
    seen: list[str] = []
    async with served(config, port=port) as client:
        with collected_logs() as logs:
            async with httpx.AsyncClient(follow_redirects=True, timeout=30) as browser:
                page = await browser.get(
                    f"{client.base_url}/auth/install", params={"shop": shop.domain}
                )
                seen.append(page.text)
            await finished_run(db, shop.domain)
            token = session_token(shopify_admin.oauth.app, embedded.domain)
            exchanged = await client.post(
                "/auth/token-exchange", headers={"Authorization": f"Bearer {token}"}
            )
            seen.append(exchanged.text)
            await finished_run(db, embedded.domain)
            shopify_admin.oauth.expire_now(shop.domain)  # the next call refreshes after a 401
            await sync(db, config, shop)
            broker = await client.post(f"/shops/{shop.domain}/access-token", headers=ADMIN)
            assert broker.status_code == 200
            for path in (
                "/metrics",
                "/schema/openapi.json",
                f"/shops/{shop.domain}/sync",
                f"/shops/{legacy.domain}/subscriptions",
                "/events?limit=1000&with_payload=true",
            ):
                seen.append((await client.get(path, headers=ADMIN)).text)
            put = await client.put(
                f"/shops/{legacy.domain}/credentials",
                json={"access_token": "shpat not a token"},
                headers=ADMIN,
            )
            seen.append(put.text)

    tokens = every_token(shopify_admin, shop, embedded, legacy)
    assert len(tokens) >= 6
    rows = []
    for table in TABLES:
        rows += await queries.fetch(db, f"SELECT to_jsonb(t)::text AS row FROM {table} t")
    stored = "\n".join(row["row"] for row in rows)
    assert "shop_credentials" in TABLES and "access_token_encrypted" in stored
    for token in tokens:
        assert token not in logs.text, "a token in a log line"
        assert token not in stored, "a token in clear in the database"
        for text in seen:
            assert token not in text, "a token in an answer"
