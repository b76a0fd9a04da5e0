"""Subscription check and fix, over HTTP and the command line, against the Admin API stand-in."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.config import Settings
from app.db.database import Database
from app.devtools.standin import FakeShop, Fault, ShopifyStandIn
from app.subscriptions.topics import COMPLIANCE_TOPICS, default_topics, enum_name
from app.webhooks.handlers import HANDLERS
from tests.subscriptions.conftest import CALLBACK, PUBLIC_URL
from tests.support import queries
from tests.support.ops import ADMIN, CliResult, call_cli
from tests.support.sync import TOKEN_KEY

ELSEWHERE = "https://old-host.example.com/webhooks/shopify"


def needed_enums() -> list[str]:
    return sorted(enum_name(topic) for topic in default_topics())


def subscribed(shop: FakeShop) -> list[tuple[str, str]]:
    with shop.lock:
        return sorted((s["topic"], s["uri"]) for s in shop.subscriptions)


def mutations(shop: FakeShop) -> int:
    with shop.lock:
        return sum("webhookSubscriptionCreate(" in query for query, _ in shop.queries)


async def stored_check(db: Database, shop: FakeShop) -> dict[str, Any] | None:
    return await queries.fetchrow(
        db, "SELECT * FROM subscription_checks WHERE shop_id = $1", shop.domain
    )


def test_default_topics_are_the_handled_ones_the_api_can_subscribe_to() -> None:
    topics = default_topics()
    assert topics and set(topics) < set(HANDLERS)
    assert not set(topics) & COMPLIANCE_TOPICS
    assert "orders/create" in topics and "app/uninstalled" in topics
    assert enum_name("customer.tags_added") == "CUSTOMER_TAGS_ADDED"
    assert (
        enum_name("customers_email_marketing_consent/update")
        == "CUSTOMERS_EMAIL_MARKETING_CONSENT_UPDATE"
    )


async def test_a_shop_with_no_subscriptions(
    api: httpx.AsyncClient, db: Database, shop: FakeShop
) -> None:
    needed = default_topics()
    check = await api.get(f"/shops/{shop.domain}/subscriptions", headers=ADMIN)
    assert check.status_code == 200, check.text
    report = check.json()
    assert report["uri"] == CALLBACK
    assert report["missing"] == needed and report["subscribed"] == []
    assert report["extra"] == [] and report["misdirected"] == [] and report["fixed"] is False
    assert subscribed(shop) == [] and mutations(shop) == 0  # a check changes nothing
    row = await stored_check(db, shop)
    assert row is not None and (row["missing"], row["extra"], row["misdirected"]) == (
        len(needed),
        0,
        0,
    )
    assert json.loads(row["report"])["missing"] == needed
    metrics = (await api.get("/metrics")).text
    assert "shopify_ingest_shops_missing_subscriptions 1.0" in metrics

    fixed = await api.post(f"/shops/{shop.domain}/subscriptions/fix", headers=ADMIN)
    assert fixed.status_code == 200, fixed.text
    report = fixed.json()
    assert report["fixed"] is True and report["missing"] == [] and report["failed"] == []
    assert sorted(c["topic"] for c in report["created"]) == needed_enums()
    assert report["subscribed"] == needed
    assert subscribed(shop) == sorted((topic, CALLBACK) for topic in needed_enums())
    row = await stored_check(db, shop)
    assert row is not None and row["missing"] == 0 and row["error"] is None

    again = (await api.get(f"/shops/{shop.domain}/subscriptions", headers=ADMIN)).json()
    assert again["missing"] == [] and again["subscribed"] == needed
    assert "shopify_ingest_shops_missing_subscriptions 0.0" in (await api.get("/metrics")).text
    assert shop.deprecated_fields_used == set()


async def test_a_shop_with_some_subscriptions_keeps_what_it_has(
    api: httpx.AsyncClient, db: Database, shop: FakeShop
) -> None:
    needed = default_topics()
    present = needed[:2]
    shop.subscribe([enum_name(t) for t in present], CALLBACK)
    wrong = shop.add_subscription(enum_name(needed[2]), ELSEWHERE)
    extra = shop.add_subscription("PRODUCTS_CREATE", CALLBACK)
    before = subscribed(shop)

    report = (await api.get(f"/shops/{shop.domain}/subscriptions", headers=ADMIN)).json()
    assert report["subscribed"] == present
    assert report["missing"] == needed[2:]  # a misdirected topic is missing here too
    assert report["misdirected"] == [
        {"id": wrong["id"], "topic": enum_name(needed[2]), "uri": ELSEWHERE}
    ]
    assert report["extra"] == [{"id": extra["id"], "topic": "PRODUCTS_CREATE", "uri": CALLBACK}]
    row = await stored_check(db, shop)
    assert row is not None
    assert (row["missing"], row["extra"], row["misdirected"]) == (len(needed) - 2, 1, 1)

    report = (await api.post(f"/shops/{shop.domain}/subscriptions/fix", headers=ADMIN)).json()
    assert sorted(c["topic"] for c in report["created"]) == sorted(enum_name(t) for t in needed[2:])
    assert report["missing"] == []
    after = subscribed(shop)
    # Never deletes: the misdirected and the extra subscription are still there.
    assert set(before) <= set(after)
    assert len(after) == len(before) + len(needed) - 2
    assert mutations(shop) == len(needed) - 2


async def test_a_shop_with_all_subscriptions(
    api: httpx.AsyncClient, db: Database, shop: FakeShop
) -> None:
    shop.subscribe(needed_enums(), CALLBACK + "/")  # a trailing slash is the same address
    report = (await api.post(f"/shops/{shop.domain}/subscriptions/fix", headers=ADMIN)).json()
    assert report["missing"] == [] and report["created"] == [] and report["extra"] == []
    assert report["subscribed"] == default_topics()
    assert mutations(shop) == 0
    row = await stored_check(db, shop)
    assert row is not None and (row["missing"], row["extra"], row["misdirected"]) == (0, 0, 0)


async def test_many_subscriptions_are_read_page_by_page(
    api: httpx.AsyncClient, shop: FakeShop
) -> None:
    shop.subscribe(needed_enums(), CALLBACK)
    for number in range(130):
        shop.add_subscription("PRODUCTS_UPDATE", f"https://other.example.com/hook/{number}")
    report = (await api.get(f"/shops/{shop.domain}/subscriptions", headers=ADMIN)).json()
    assert report["missing"] == [] and len(report["extra"]) == 130
    with shop.lock:
        pages = sum("webhookSubscriptions(" in query for query, _ in shop.queries)
    assert pages == 2


async def test_webhook_topics_chooses_the_topics_and_flags_unsupported_ones(
    db: Database, public_config: Settings, shop: FakeShop
) -> None:
    config = dataclasses.replace(
        public_config, webhook_topics=("orders/create", "shop/redact", "orders/paid")
    )
    shop.subscribe(["ORDERS_CREATE", "CUSTOMERS_CREATE"], CALLBACK)
    async with AsyncTestClient(app=create_app(config)) as api:
        report = (await api.post(f"/shops/{shop.domain}/subscriptions/fix", headers=ADMIN)).json()
    assert report["needed"] == ["orders/create", "orders/paid", "shop/redact"]
    assert report["unsupported"] == ["shop/redact"]  # only shopify.app.toml can declare it
    assert [c["topic"] for c in report["created"]] == ["ORDERS_PAID"]
    assert [e["topic"] for e in report["extra"]] == ["CUSTOMERS_CREATE"]


async def test_refusals_and_shopify_failures(
    db: Database, public_config: Settings, shop: FakeShop, shopify_admin: ShopifyStandIn
) -> None:
    async with AsyncTestClient(app=create_app(public_config)) as api:
        unknown = await api.get("/shops/nobody.myshopify.com/subscriptions", headers=ADMIN)
        assert unknown.status_code == 409
        assert "no Admin API credentials" in unknown.json()["detail"]
        assert (await api.get(f"/shops/{shop.domain}/subscriptions")).status_code == 401
        assert (await api.get("/shops/not-a-shop/subscriptions", headers=ADMIN)).status_code == 400

        shopify_admin.inject(Fault.status(401), shop=shop.domain)
        refused = await api.post(f"/shops/{shop.domain}/subscriptions/fix", headers=ADMIN)
        assert refused.status_code == 502
        assert "access token was refused" in refused.json()["detail"]
        assert shop.token not in refused.text
    row = await stored_check(db, shop)
    assert row is not None and "401" in row["error"]

    unset = dataclasses.replace(public_config, public_url=None)
    async with AsyncTestClient(app=create_app(unset)) as api:
        answer = await api.post(f"/shops/{shop.domain}/subscriptions/fix", headers=ADMIN)
    assert answer.status_code == 400
    assert "PUBLIC_URL" in answer.json()["detail"]
    assert subscribed(shop) == []


async def test_the_stand_in_refuses_an_invalid_address(
    shopify_admin: ShopifyStandIn, shop: FakeShop
) -> None:
    mutation = (
        "mutation($uri: String) { webhookSubscriptionCreate(topic: ORDERS_CREATE, "
        "webhookSubscription: {uri: $uri}) { webhookSubscription { id } "
        "userErrors { field message } } }"
    )
    headers = {"X-Shopify-Access-Token": shop.token}
    async with httpx.AsyncClient() as http:
        url = shopify_admin.graphql_url(shop.domain)
        for uri, message in (
            ("http://insecure.example.com/hook", "Address is invalid"),
            ("", "Address can't be blank"),
        ):
            body = (
                await http.post(
                    url, json={"query": mutation, "variables": {"uri": uri}}, headers=headers
                )
            ).json()
            answer = body["data"]["webhookSubscriptionCreate"]
            assert answer["webhookSubscription"] is None
            assert answer["userErrors"][0]["message"] == message
            assert body["extensions"]["cost"]["actualQueryCost"] == 10
        ok = {"query": mutation, "variables": {"uri": CALLBACK}}
        first = (await http.post(url, json=ok, headers=headers)).json()
        assert first["data"]["webhookSubscriptionCreate"]["userErrors"] == []
        second = (await http.post(url, json=ok, headers=headers)).json()
        assert "already been taken" in str(second["data"]["webhookSubscriptionCreate"])
    assert len(subscribed(shop)) == 1


def cli(settings: Settings, *args: str, public_url: str = PUBLIC_URL) -> CliResult:
    """`python -m app <args>`, in this process (call_cli)."""
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "SHOPIFY_ADMIN_BASE_URL": settings.shopify_admin_base_url,
        "TOKEN_ENCRYPTION_KEY": TOKEN_KEY,
        "PUBLIC_URL": public_url,
        "LOG_LEVEL": "WARNING",
    }
    env.pop("WEBHOOK_TOPICS", None)
    return call_cli(*args, env=env)


async def test_the_command_line_checks_and_fixes(
    db: Database, public_config: Settings, shop: FakeShop
) -> None:
    needed = default_topics()
    shop.subscribe([enum_name(needed[0])], CALLBACK)

    unset = cli(public_config, "subscriptions", "check", "--shop", shop.domain, public_url="")
    assert unset.returncode == 2
    assert "PUBLIC_URL" in unset.stderr

    check = cli(public_config, "subscriptions", "check", "--shop", shop.domain)
    assert check.returncode == 1, check.stderr
    assert f"1 of {len(needed)} needed topics subscribed at {CALLBACK}" in check.stdout
    assert f"missing: {needed[1]}" in check.stdout
    assert "--fix" in check.stdout
    assert len(subscribed(shop)) == 1

    fixed = cli(public_config, "subscriptions", "check", "--shop", shop.domain, "--fix")
    assert fixed.returncode == 0, fixed.stderr
    assert f"created: {enum_name(needed[1])}" in fixed.stdout
    assert len(subscribed(shop)) == len(needed)

    as_json = cli(public_config, "subscriptions", "check", "--shop", shop.domain, "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["subscribed"] == needed
    row = await stored_check(db, shop)
    assert row is not None and row["missing"] == 0

    nobody = cli(public_config, "subscriptions", "check", "--shop", "nobody.myshopify.com")
    assert nobody.returncode == 1
    assert "no Admin API credentials" in nobody.stderr


# --- answers no honest Shopify sends ------------------------------------------------------

NO_MORE = {"hasNextPage": False, "endCursor": None}


def listing(nodes: list[Any]) -> dict[str, Any]:
    return {"data": {"webhookSubscriptions": {"nodes": nodes, "pageInfo": NO_MORE}}}


MALFORMED = {
    "string nodes": [listing(["ORDERS_CREATE", "ORDERS_UPDATED"])],
    "nodes a string": [{"data": {"webhookSubscriptions": {"nodes": "all", "pageInfo": NO_MORE}}}],
    "NUL in a uri": [
        listing(
            [
                {
                    "id": "gid://shopify/WebhookSubscription/1",
                    "topic": "ORDERS_CREATE",
                    "uri": "https://ingest.example.com/webhooks/shopify\u0000",
                }
            ]
        )
    ],
    "string userErrors": [
        listing([]),
        {
            "data": {
                "webhookSubscriptionCreate": {
                    "webhookSubscription": None,
                    "userErrors": ["taken", "again"],
                }
            }
        },
    ],
}


@pytest.mark.parametrize("name", list(MALFORMED))
async def test_a_malformed_answer_is_shopifys_fault_and_recorded(
    db: Database,
    public_config: Settings,
    shop: FakeShop,
    shopify_admin: ShopifyStandIn,
    name: str,
) -> None:
    for answer in MALFORMED[name]:
        shopify_admin.inject(Fault.answer(answer), shop=shop.domain)
    async with AsyncTestClient(app=create_app(public_config)) as api:
        response = await api.post(f"/shops/{shop.domain}/subscriptions/fix", headers=ADMIN)
    assert response.status_code == 502, response.text
    assert response.json()["detail"].startswith("Shopify's answer:")
    row = await stored_check(db, shop)
    assert row is not None and row["error"]
    await queries.execute(db, "DELETE FROM subscription_checks")

    for answer in MALFORMED[name]:
        shopify_admin.inject(Fault.answer(answer), shop=shop.domain)
    result = cli(public_config, "subscriptions", "check", "--shop", shop.domain, "--fix")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Shopify's answer" in errors[0], errors
    row = await stored_check(db, shop)
    assert row is not None and row["error"]
    assert subscribed(shop) == []  # nothing was created from a malformed answer
