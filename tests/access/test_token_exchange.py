"""Embedded apps: a page's App Bridge session token connects its shop (token exchange)."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from app.config import Settings
from app.db.database import Database
from app.devtools.signing import PREVIOUS_SECRET
from app.devtools.standin import FakeShop, ShopifyStandIn
from app.devtools.standin.oauth import ID_TOKEN, StandInApp, session_token
from tests.support.access import credentials_row, finished_run, new_shop, token_calls
from tests.support.asgi import concurrent_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_session_token_connects_its_shop_and_no_token_is_answered(
    db: Database, access_config: Settings, shopify_admin: ShopifyStandIn, shop: FakeShop
) -> None:
    token = session_token(shopify_admin.oauth.app, shop.domain)
    async with concurrent_client(access_config) as client:
        answer = await client.post("/auth/token-exchange", headers=bearer(token))
        run = await finished_run(db, shop.domain)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"shop", "scope", "expires_at"}
    assert body["shop"] == shop.domain
    assert body["scope"] == "read_customers,read_orders,read_all_orders"
    live = shopify_admin.oauth.access(shop.domain).live
    assert live is not None
    assert live.access_token not in answer.text and live.refresh_token not in answer.text
    [exchange] = token_calls(shopify_admin, shop.domain)
    assert exchange.body["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
    assert exchange.body["subject_token_type"] == ID_TOKEN
    assert exchange.body["requested_token_type"].endswith("offline-access-token")
    assert exchange.body["expiring"] == "1"
    # The first connection's steps ran: the shop's history arrived.
    assert run["status"] == "succeeded" and run["kind"] == "full"
    row = await credentials_row(db, shop.domain)
    assert row is not None and row["refresh_token_encrypted"] is not None


async def test_a_shop_with_working_tokens_keeps_them(
    db: Database, access_config: Settings, shopify_admin: ShopifyStandIn, shop: FakeShop
) -> None:
    """A second exchange would revoke the service's own token: it is not made."""
    async with concurrent_client(access_config) as client:
        first = await client.post(
            "/auth/token-exchange",
            headers=bearer(session_token(shopify_admin.oauth.app, shop.domain)),
        )
        await finished_run(db, shop.domain)
        again = await client.post(
            "/auth/token-exchange",
            headers=bearer(session_token(shopify_admin.oauth.app, shop.domain)),
        )
    assert first.status_code == again.status_code == 200
    assert again.json()["expires_at"] == first.json()["expires_at"]
    assert len(token_calls(shopify_admin, shop.domain)) == 1


async def test_a_session_token_signed_with_the_previous_secret_is_accepted(
    db: Database, access_config: Settings, shopify_admin: ShopifyStandIn, shop: FakeShop
) -> None:
    token = session_token(shopify_admin.oauth.app, shop.domain, secret=PREVIOUS_SECRET)
    async with concurrent_client(access_config) as client:
        answer = await client.post("/auth/token-exchange", headers=bearer(token))
    # Our check passed; the stand-in (which knows only the current secret) then refused it.
    assert answer.status_code == 400, answer.text
    assert "invalid_subject_token" in answer.json()["detail"]
    assert len(token_calls(shopify_admin, shop.domain)) == 1


@pytest.mark.parametrize(
    "forgery",
    [
        "wrong signature",
        "wrong audience",
        "expired",
        "not yet valid",
        "dest not a shop",
        "issuer of another shop",
        "alg none",
        "garbage",
        "no bearer",
    ],
)
async def test_an_invalid_session_token_is_refused_and_shopify_not_called(
    db: Database,
    access_config: Settings,
    shopify_admin: ShopifyStandIn,
    shop: FakeShop,
    forgery: str,
) -> None:
    app = shopify_admin.oauth.app
    other = new_shop(shopify_admin)
    now = time.time()
    headers = {
        "wrong signature": bearer(session_token(app, shop.domain, secret="not-the-secret")),
        "wrong audience": bearer(session_token(app, shop.domain, audience="another-app")),
        # Beyond the 10 s of leeway.
        "expired": bearer(session_token(app, shop.domain, issued_at=now - 90, lifetime=60)),
        "not yet valid": bearer(session_token(app, shop.domain, issued_at=now + 60)),
        "dest not a shop": bearer(session_token(app, shop.domain, dest="https://evil.example")),
        "issuer of another shop": bearer(_other_issuer(app, shop.domain, other.domain)),
        "alg none": bearer(_unsigned(shop.domain, app.api_key)),
        "garbage": bearer("not.a.jwt"),
        "no bearer": {},
    }[forgery]
    async with concurrent_client(access_config) as client:
        answer = await client.post("/auth/token-exchange", headers=headers)
    assert answer.status_code == 401, answer.text
    assert answer.json()["detail"]
    assert token_calls(shopify_admin, shop.domain) == []
    assert await credentials_row(db, shop.domain) is None


def _other_issuer(app: StandInApp, shop: str, other: str) -> str:
    now = int(time.time())
    claims = {
        "iss": f"https://{other}/admin",
        "dest": f"https://{shop}",
        "aud": app.api_key,
        "exp": now + 60,
        "nbf": now,
        "iat": now,
    }
    return jwt.encode(claims, app.api_secret, algorithm="HS256")


def _unsigned(shop: str, api_key: str) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    now = int(time.time())
    claims = {"iss": f"https://{shop}/admin", "dest": f"https://{shop}", "aud": api_key}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({**claims, 'exp': now + 60, 'nbf': now})}."
