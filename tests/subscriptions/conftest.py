"""Fixtures of the subscription tests: settings aimed at the stand-in with a PUBLIC_URL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.config import Settings
from app.db.database import Database
from app.devtools.standin import FakeShop, ShopifyStandIn
from tests.support.sync import give_credentials, new_shop, sync_settings

PUBLIC_URL = "https://ingest.example.com"
CALLBACK = f"{PUBLIC_URL}/webhooks/shopify"


@pytest.fixture
def public_config(settings: Settings, shopify_admin: ShopifyStandIn) -> Settings:
    return sync_settings(settings, shopify_admin, public_url=PUBLIC_URL)


@pytest.fixture
async def shop(db: Database, public_config: Settings, shopify_admin: ShopifyStandIn) -> FakeShop:
    """A new shop on the stand-in (no subscriptions), with its token stored for the service."""
    fake = new_shop(shopify_admin)
    await give_credentials(db, public_config, fake)
    return fake


@pytest.fixture
async def api(db: Database, public_config: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with AsyncTestClient(app=create_app(public_config)) as test_client:
        yield test_client
