"""Tokens handed in (PUT credentials) and handed out (the token broker), and nothing else."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.access import metrics
from app.config import Settings
from app.db.database import Database
from app.devtools.standin import FakeShop, ShopifyStandIn
from tests.support.access import ADMIN, credentials_row, token_calls
from tests.support.asgi import concurrent_client
from tests.support.ops import collected_logs


@pytest.fixture
def broker_config(access_config: Settings) -> Settings:
    return dataclasses.replace(access_config, token_broker_enabled=True)


async def put_pair(
    client: httpx.AsyncClient, shop: FakeShop, issued: dict[str, Any], expires_in: int
) -> None:
    answer = await client.put(
        f"/shops/{shop.domain}/credentials",
        json={
            "access_token": issued["access_token"],
            "refresh_token": issued["refresh_token"],
            "expires_in": expires_in,
            "refresh_token_expires_in": issued["refresh_token_expires_in"],
            "scope": issued["scope"],
        },
        headers=ADMIN,
    )
    assert answer.status_code == 204, answer.text


async def test_without_token_broker_enabled_there_is_no_token_endpoint(
    db: Database, access_config: Settings, shop: FakeShop
) -> None:
    async with concurrent_client(access_config) as client:
        answer = await client.post(f"/shops/{shop.domain}/access-token", headers=ADMIN)
        schema = (await client.get("/schema/openapi.json")).json()
    assert answer.status_code == 404
    assert not any(path.endswith("/access-token") for path in schema["paths"])


async def test_the_broker_hands_out_a_token_with_the_margin_left_refreshing_first(
    db: Database,
    broker_config: Settings,
    shopify_admin: ShopifyStandIn,
    shop: FakeShop,
) -> None:
    issued = shopify_admin.oauth.issue(shop.domain, access_ttl=100)  # under the 300 s margin
    issued_before = metrics.TOKENS_ISSUED.labels(caller="mailer")._value.get()
    async with concurrent_client(broker_config) as client:
        with collected_logs() as logs:
            await put_pair(client, shop, issued, 100)
            first = await client.post(
                f"/shops/{shop.domain}/access-token", headers={**ADMIN, "X-Caller": "mailer"}
            )
            second = await client.post(
                f"/shops/{shop.domain}/access-token", headers={**ADMIN, "X-Caller": "mailer"}
            )
            bad_caller = await client.post(
                f"/shops/{shop.domain}/access-token", headers={**ADMIN, "X-Caller": "a b"}
            )
            no_admin = await client.post(f"/shops/{shop.domain}/access-token")

    assert first.status_code == second.status_code == 200, first.text
    live = shopify_admin.oauth.access(shop.domain).live
    assert live is not None and live.access_token != issued["access_token"]
    assert first.json()["access_token"] == second.json()["access_token"] == live.access_token
    expires_at = datetime.fromisoformat(first.json()["expires_at"])
    assert expires_at > datetime.now(UTC) + timedelta(seconds=broker_config.token_refresh_margin)
    assert len(token_calls(shopify_admin, shop.domain, "refresh_token")) == 1
    assert metrics.TOKENS_ISSUED.labels(caller="mailer")._value.get() == issued_before + 2
    issuances = [e for e in logs.entries if e["message"] == "access token issued"]
    assert [e["caller"] for e in issuances] == ["mailer", "mailer"]
    assert all(e["shop"] == shop.domain for e in issuances)
    refreshed = [e for e in logs.entries if e["message"] == "token refresh ok"]
    assert len(refreshed) == 1 and refreshed[0]["shop"] == shop.domain
    assert live.access_token not in logs.text and live.refresh_token not in logs.text
    assert bad_caller.status_code == 400 and "X-Caller" in bad_caller.json()["detail"]
    assert no_admin.status_code == 401


async def test_the_broker_refuses_a_shop_without_usable_credentials(
    db: Database, broker_config: Settings, shopify_admin: ShopifyStandIn, shop: FakeShop
) -> None:
    async with concurrent_client(broker_config) as client:
        unknown = await client.post(f"/shops/{shop.domain}/access-token", headers=ADMIN)
        issued = shopify_admin.oauth.issue(shop.domain)
        shopify_admin.oauth.issue(shop.domain)  # revoked behind the service's back
        await put_pair(client, shop, issued, 10)
        refused = await client.post(f"/shops/{shop.domain}/access-token", headers=ADMIN)
        again = await client.post(f"/shops/{shop.domain}/access-token", headers=ADMIN)
    assert unknown.status_code == 409 and "no Admin API credentials" in unknown.json()["detail"]
    assert refused.status_code == 409 and "re-authorization" in refused.json()["detail"]
    assert again.status_code == 409
    assert len(token_calls(shopify_admin, shop.domain)) == 1


async def test_a_non_expiring_token_is_handed_out_as_it_is(
    db: Database, broker_config: Settings, shop: FakeShop
) -> None:
    async with concurrent_client(broker_config) as client:
        put = await client.put(
            f"/shops/{shop.domain}/credentials",
            json={"access_token": shop.token, "scope": "read_orders"},
            headers=ADMIN,
        )
        answer = await client.post(f"/shops/{shop.domain}/access-token", headers=ADMIN)
    assert put.status_code == 204
    assert answer.json() == {"access_token": shop.token, "expires_at": None, "scope": "read_orders"}


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"access_token": "shpat a"}, "access_token"),
        ({"access_token": "shpat_a", "expires_in": 60}, "refresh_token"),
        ({"access_token": "shpat_a", "refresh_token": "shprt_a"}, "expires_in"),
        (
            {
                "access_token": "a",
                "refresh_token": "b",
                "expires_in": 60,
                "expires_at": "2030-01-01T00:00:00Z",
            },
            "not both",
        ),
        ({"access_token": "a", "refresh_token": "b", "expires_at": "2030-01-01T00:00:00"}, "zone"),
        ({"access_token": "a", "refresh_token": "b", "expires_in": 0}, "expires_in"),
        ({"access_token": "a", "refresh_token": "b", "expires_in": 10**12}, "expires_in"),
        ({"access_token": "a", "unknown": 1}, "unknown"),
    ],
)
async def test_handed_over_tokens_are_checked_and_nothing_is_stored_when_wrong(
    db: Database, access_config: Settings, shop: FakeShop, body: dict[str, object], complaint: str
) -> None:
    async with concurrent_client(access_config) as client:
        answer = await client.put(f"/shops/{shop.domain}/credentials", json=body, headers=ADMIN)
    assert answer.status_code == 400, answer.text
    assert complaint in answer.text
    assert await credentials_row(db, shop.domain) is None


async def test_handing_over_tokens_needs_an_encryption_key(
    db: Database, access_config: Settings, shop: FakeShop
) -> None:
    config = dataclasses.replace(access_config, token_encryption_keys=())
    async with concurrent_client(config) as client:
        answer = await client.put(
            f"/shops/{shop.domain}/credentials", json={"access_token": "shpat_x"}, headers=ADMIN
        )
    assert answer.status_code == 503 and "TOKEN_ENCRYPTION_KEY" in answer.json()["detail"]
    assert await credentials_row(db, shop.domain) is None


def test_callers_beyond_the_first_few_are_counted_together() -> None:
    for number in range(metrics.MAX_CALLERS + 5):
        metrics.count_issued(f"caller-{number}")
    labels = {
        sample.labels["caller"]
        for family in metrics.TOKENS_ISSUED.collect()
        for sample in family.samples
    }
    assert len(labels - {"other"}) <= metrics.MAX_CALLERS
    assert "other" in labels
