"""GET /metrics: Prometheus counters and histograms move as deliveries are handled;
labels stay low-cardinality (no shop, unknown topics as "other")."""

from __future__ import annotations

import httpx

from app.db.database import Database
from tests.support import shopify
from tests.support.ops import ADMIN, samples, scrape, value

DELIVERIES = "shopify_ingest_deliveries_total"
SECONDS_COUNT = "shopify_ingest_webhook_request_seconds_count"
SECONDS_SUM = "shopify_ingest_webhook_request_seconds_sum"
SECONDS_BUCKET = "shopify_ingest_webhook_request_seconds_bucket"
REPLAYED = "shopify_ingest_replayed_total"
POOL = "shopify_ingest_db_pool_connections"
POOL_MAX = "shopify_ingest_db_pool_max_connections"


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    scraped = samples(response.text)
    names = {name for name, _ in scraped}
    assert {SECONDS_COUNT, SECONDS_SUM, SECONDS_BUCKET, POOL, POOL_MAX} <= names
    assert "# TYPE shopify_ingest_deliveries_total counter" in response.text
    assert "# TYPE shopify_ingest_webhook_request_seconds histogram" in response.text
    assert "# TYPE shopify_ingest_replayed_total counter" in response.text


async def test_delivery_counters_move_with_each_outcome(
    client: httpx.AsyncClient, db: Database
) -> None:
    before = await scrape(client)

    # processed x2, then a duplicate of the second
    assert (await shopify.post(client, "orders/create", shopify.order(1), webhook_id="m-1")).json()[
        "status"
    ] == "processed"
    await shopify.post(client, "orders/create", shopify.order(2), webhook_id="m-2")
    duplicate = await shopify.post(client, "orders/create", shopify.order(2), webhook_id="m-2")
    assert duplicate.json()["status"] == "duplicate"
    # failed: JSON of the wrong shape
    failed = await shopify.post(client, "customers/create", {"id": "x"}, webhook_id="m-3")
    assert failed.json()["status"] == "failed"
    # ignored: a topic without a handler, counted as "other"
    ignored = await shopify.post(client, "products/create", {"id": 5}, webhook_id="m-4")
    assert ignored.json()["status"] == "ignored"
    # rejected: bad signature, then a bad header, then a body that is not JSON
    body = shopify.encode(shopify.order(3))
    bad_signature = shopify.headers("orders/create", body, secret="not-the-secret")
    assert (await shopify.post_raw(client, body, bad_signature)).status_code == 401
    no_shop = shopify.headers("orders/create", body)
    del no_shop["X-Shopify-Shop-Domain"]
    assert (await shopify.post_raw(client, body, no_shop)).status_code == 400
    not_json = b"{this is not json"
    assert (
        await shopify.post_raw(client, not_json, shopify.headers("orders/create", not_json))
    ).status_code == 400

    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(DELIVERIES, topic="orders/create", outcome="processed") == 2
    assert delta(DELIVERIES, topic="orders/create", outcome="duplicate") == 1
    assert delta(DELIVERIES, topic="customers/create", outcome="failed") == 1
    assert delta(DELIVERIES, topic="other", outcome="ignored") == 1
    assert delta(DELIVERIES, topic="products/create", outcome="ignored") == 0
    # Before the signature is checked, nothing in the request is trusted: no topic.
    assert delta(DELIVERIES, topic="unknown", outcome="rejected_signature") == 1
    # Headers that do not parse: no topic; a body that is not JSON: the topic is known.
    assert delta(DELIVERIES, topic="unknown", outcome="rejected_bad_request") == 1
    assert delta(DELIVERIES, topic="orders/create", outcome="rejected_bad_request") == 1
    # Every request to POST /webhooks/shopify is timed, rejected ones included.
    assert delta(SECONDS_COUNT) == 8
    assert delta(SECONDS_SUM) > 0
    assert delta(SECONDS_BUCKET, le="+Inf") == 8


async def test_labels_stay_low_cardinality(client: httpx.AsyncClient, db: Database) -> None:
    for number, topic in enumerate(("weird/topic_one", "weird/topic_two", "products/update")):
        shop = f"metrics-shop-{number}.myshopify.com"
        response = await shopify.post(client, topic, {"id": number + 1}, shop=shop)
        assert response.json()["status"] == "ignored"
    response = await client.get("/metrics")
    scraped = samples(response.text)
    ours = {key: v for key, v in scraped.items() if key[0].startswith("shopify_ingest_")}
    assert ours
    for name, labels in ours:
        # `caller`: the token broker's callers, a handful per app (app/access/metrics.py).
        allowed = {"topic", "outcome", "state", "status", "le", "caller"}
        assert {label for label, _ in labels} <= allowed, name
    assert "metrics-shop-" not in response.text
    assert "weird/topic" not in response.text
    assert "products/update" not in response.text
    topics = {dict(labels)["topic"] for name, labels in ours if name == DELIVERIES}
    assert topics <= {
        "other",
        "unknown",
        "customers/create",
        "customers/update",
        "customers/enable",
        "customers/disable",
        "customers/delete",
        "orders/create",
        "orders/updated",
        "orders/paid",
        "orders/cancelled",
        "orders/fulfilled",
        "orders/partially_fulfilled",
        "orders/delete",
        "customers/redact",
        "customers/data_request",
        "shop/redact",
        "app/uninstalled",
        "customer.tags_added",
        "customer.tags_removed",
        "customers_email_marketing_consent/update",
        "customers_marketing_consent/update",
        "customers/purchasing_summary",
        "customers/merge",
        "bulk_operations/finish",
    }


async def test_pool_gauges(client: httpx.AsyncClient, db: Database) -> None:
    await shopify.post(client, "customers/create", shopify.customer(9))
    scraped = await scrape(client)
    open_connections = value(scraped, POOL, state="open")
    in_use = value(scraped, POOL, state="in_use")
    assert (POOL, frozenset({("state", "open")})) in scraped
    assert (POOL, frozenset({("state", "in_use")})) in scraped
    assert 1 <= open_connections <= 10  # the delivery opened one; DB_POOL_SIZE is 10
    assert 0 <= in_use <= open_connections
    assert value(scraped, POOL_MAX) == 10


async def test_replay_counters(client: httpx.AsyncClient, db: Database) -> None:
    await shopify.post(client, "customers/create", {"id": "x"}, webhook_id="r-failed")
    await shopify.post(client, "customers/create", shopify.customer(11), webhook_id="r-ok")
    await shopify.post(client, "products/create", {"id": 1}, webhook_id="r-ignored")
    before = await scrape(client)
    response = await client.post(
        "/replay", json={"webhook_ids": ["r-failed", "r-ok", "r-ignored"]}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    after = await scrape(client)
    for outcome in ("failed", "processed", "ignored"):
        assert (
            value(after, REPLAYED, outcome=outcome) - value(before, REPLAYED, outcome=outcome) == 1
        )
    # Replays are not deliveries.
    assert value(after, SECONDS_COUNT) == value(before, SECONDS_COUNT)
