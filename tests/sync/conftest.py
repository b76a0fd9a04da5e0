"""Fixtures of the sync tests: settings aimed at the stand-in, and a shop of its own per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.config import Settings
from app.db.database import Database
from app.devtools.standin import FakeShop, ShopifyStandIn
from app.shopify import bulk, client
from tests.support.sync import give_credentials, new_shop, sync_settings


@pytest.fixture(autouse=True)
def quick_bulk_polls(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Polls every 50 ms instead of every second: the stand-in's operations finish at once."""
    monkeypatch.setattr(bulk, "POLL_FIRST_SECONDS", 0.05)
    monkeypatch.setattr(bulk, "POLL_MAX_SECONDS", 0.05)
    monkeypatch.setattr(bulk, "FINISH_CHECK_SECONDS", 0.05)
    yield


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Retries back off from 50 ms instead of half a second: the stand-in's faults are injected
    for a set number of answers, not for a stretch of time (a Retry-After is still obeyed)."""
    monkeypatch.setattr(client, "BACKOFF_BASE_SECONDS", 0.05)
    yield


@pytest.fixture
def sync_config(settings: Settings, shopify_admin: ShopifyStandIn) -> Settings:
    return sync_settings(settings, shopify_admin)


@pytest.fixture
async def shop(db: Database, sync_config: Settings, shopify_admin: ShopifyStandIn) -> FakeShop:
    """A new shop on the stand-in, with its token stored for the service."""
    fake = new_shop(shopify_admin)
    await give_credentials(db, sync_config, fake)
    return fake
