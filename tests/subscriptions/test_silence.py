"""Silent shops, from the ledger: GET /shops/silent and the /metrics gauges."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.config import Settings
from app.db.database import Database
from tests.support import queries
from tests.support.ops import ADMIN


async def deliveries(db: Database, shop: str, now: datetime, *ages: timedelta) -> None:
    """Ledger rows of accepted deliveries, received `ages` ago, and the shop's row.

    The service writes a shop's row with its first ledger row; the silence
    query finds the shops there.
    """
    await queries.execute(
        db,
        "INSERT INTO shops (id, shop_id) VALUES ($1, $2) ON CONFLICT (shop_id) DO NOTHING",
        uuid.uuid4(),
        shop,
    )
    for age in ages:
        await queries.execute(
            db,
            "INSERT INTO webhook_events (id, shop_id, webhook_id, topic, received_at, status)"
            " VALUES ($1, $2, $3, 'orders/create', $4, 'processed')",
            uuid.uuid4(),
            shop,
            str(uuid.uuid4()),
            now - age,
        )


def every(step: timedelta, start: timedelta, count: int) -> list[timedelta]:
    return [start + step * i for i in range(count)]


async def test_silent_shops_and_the_gauges(db: Database, settings: Settings) -> None:
    minutes, hours = timedelta(minutes=1), timedelta(hours=1)
    now = datetime.now(UTC)  # at the test, not at import: the suite runs for minutes
    # Busy, every 10 minutes, silent for 2 hours: beyond SILENCE_AFTER (1 h).
    await deliveries(db, "busy-silent.myshopify.com", now, *every(10 * minutes, 2 * hours, 60))
    # Busy and still talking.
    await deliveries(db, "busy-ok.myshopify.com", now, *every(10 * minutes, 5 * minutes, 60))
    # Quiet: a delivery a day; 36 hours is within 3 x its usual gap.
    await deliveries(db, "quiet-ok.myshopify.com", now, *every(24 * hours, 36 * hours, 10))
    # Quiet, and silent for 4 days: beyond 3 x its usual gap.
    await deliveries(db, "quiet-silent.myshopify.com", now, *every(24 * hours, 96 * hours, 10))
    # One delivery ever, a little under 2 hours ago: only SILENCE_AFTER applies.
    await deliveries(db, "once.myshopify.com", now, 2 * hours - minutes)
    # Uninstalled after its last delivery: its silence is expected.
    await deliveries(db, "gone.myshopify.com", now, *every(10 * minutes, 3 * hours, 5))
    await queries.execute(
        db,
        "UPDATE shops SET uninstalled_at = now() WHERE shop_id = $1",
        "gone.myshopify.com",
    )
    await queries.execute(
        db,
        "INSERT INTO subscription_checks (id, shop_id, checked_at, missing, extra, misdirected)"
        " VALUES ($1, 'busy-silent.myshopify.com', now(), 3, 1, 0)",
        uuid.uuid4(),
    )

    config = dataclasses.replace(settings, silence_after_seconds=3600.0)
    async with AsyncTestClient(app=create_app(config)) as api:
        assert (await api.get("/shops/silent")).status_code == 401
        answer = await api.get("/shops/silent", headers=ADMIN)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        metrics = (await api.get("/metrics")).text

    assert body["silence_after_seconds"] == 3600.0
    shops = {shop["shop"]: shop for shop in body["shops"]}
    assert list(shops) == [  # longest silent first
        "quiet-silent.myshopify.com",
        "busy-silent.myshopify.com",
        "once.myshopify.com",
    ]
    busy = shops["busy-silent.myshopify.com"]
    assert busy["usual_gap_seconds"] == 600.0
    assert busy["threshold_seconds"] == 3600.0
    assert busy["recent_deliveries"] == 50  # bounded
    assert 7100 < busy["silent_seconds"] < 7300
    assert busy["last_check"]["missing"] == 3 and busy["last_check"]["error"] is None
    quiet = shops["quiet-silent.myshopify.com"]
    assert quiet["usual_gap_seconds"] == 86400.0 and quiet["threshold_seconds"] == 3 * 86400.0
    assert quiet["last_check"] is None
    once = shops["once.myshopify.com"]
    assert once["usual_gap_seconds"] is None and once["recent_deliveries"] == 1

    assert "shopify_ingest_shops_silent 3.0" in metrics
    assert "shopify_ingest_shops_missing_subscriptions 1.0" in metrics


async def test_no_traffic_no_silence(client: httpx.AsyncClient) -> None:
    body = (await client.get("/shops/silent", headers=ADMIN)).json()
    assert body["shops"] == []
    metrics = (await client.get("/metrics")).text
    assert "shopify_ingest_shops_silent 0.0" in metrics
    assert "shopify_ingest_shops_missing_subscriptions 0.0" in metrics
