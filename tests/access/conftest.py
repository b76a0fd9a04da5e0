"""Shop access tests: the service and the stand-in Shopify agree on the app's credentials."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.db.database import Database
from app.devtools.pgbouncer import free_port
from app.devtools.standin import FakeShop, ShopifyStandIn
from app.shopify import bulk
from tests.support.access import access_settings, new_shop


@pytest.fixture(autouse=True)
def quick_bulk_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Polls every 50 ms: the stand-in's bulk operations finish at once."""
    monkeypatch.setattr(bulk, "POLL_FIRST_SECONDS", 0.05)
    monkeypatch.setattr(bulk, "FINISH_CHECK_SECONDS", 0.05)


@pytest.fixture
def port() -> int:
    """The port the service under test listens on (PUBLIC_URL names it)."""
    return free_port()


@pytest.fixture
def access_config(settings: Settings, shopify_admin: ShopifyStandIn, port: int) -> Settings:
    return access_settings(settings, shopify_admin, port)


@pytest.fixture
def shop(db: Database, shopify_admin: ShopifyStandIn) -> FakeShop:
    """A shop on the stand-in with a little history, not yet connected to the service."""
    fake = new_shop(shopify_admin)
    fake.generate(customers=6, orders=9, line_items=2)
    return fake
