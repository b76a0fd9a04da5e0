"""Helpers for the sync tests: settings pointing at the stand-in, a runner, what was stored."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from app.access.cipher import TokenCipher
from app.access.credentials import connect
from app.access.tokens import TokenService
from app.config import Settings
from app.db.database import Database
from app.devtools.standin import FakeShop, ShopifyStandIn
from app.shopify.client import http_client
from app.shopify.oauth import IssuedToken
from app.sync.runner import SyncRequest, SyncRunner
from tests.support import queries

# A fixed Fernet key for the tests (Fernet.generate_key() prints keys like it).
TOKEN_KEY = "sC1G9kPb6bqGX0yXQyq3n2a8cKkAAnM2FQv6m2mX0iE="
OTHER_TOKEN_KEY = "Wm9y1P9p7sQ4h2lJ3k5N8q0R2t4V6x8Z0b2D4f6H8jE="
ALL_SCOPES = "read_customers,read_orders,read_all_orders"


def sync_settings(settings: Settings, stand_in: ShopifyStandIn, **changes: Any) -> Settings:
    return dataclasses.replace(
        settings,
        shopify_admin_base_url=stand_in.base_url,
        token_encryption_keys=(TOKEN_KEY,),
        **changes,
    )


def new_shop(stand_in: ShopifyStandIn, **options: Any) -> FakeShop:
    """A shop of its own for each test (the stand-in lives for the whole session)."""
    domain = f"sync-{uuid.uuid4().hex[:12]}.myshopify.com"
    return stand_in.add_shop(domain, token=f"shpat_{uuid.uuid4().hex}", **options)


async def give_credentials(
    db: Database, settings: Settings, shop: FakeShop, scope: str = ALL_SCOPES
) -> None:
    cipher = TokenCipher(settings.token_encryption_keys)
    await connect(db, cipher, shop.domain, IssuedToken(shop.token, scope, None, None, None))


@asynccontextmanager
async def runner_for(db: Database, settings: Settings) -> AsyncIterator[SyncRunner]:
    async with http_client() as http:
        yield SyncRunner(db, settings, http, TokenService(db, settings, http))


async def sync(db: Database, settings: Settings, shop: FakeShop, **request: Any) -> Any:
    """One run of the real runner; returns (run, status)."""
    async with runner_for(db, settings) as runner:
        return await runner.sync(SyncRequest(shop=shop.domain, **request))


async def stored_customers(db: Database, shop: str) -> dict[str, dict[str, Any]]:
    rows = await queries.fetch(db, "SELECT * FROM customers WHERE shop_id = $1", shop)
    return {row["shopify_id"]: row for row in rows}


async def stored_orders(db: Database, shop: str) -> dict[str, dict[str, Any]]:
    rows = await queries.fetch(db, "SELECT * FROM orders WHERE shop_id = $1", shop)
    return {row["shopify_id"]: row for row in rows}
