"""The stand-in's OAuth side behaves as Shopify is documented to (docs/connecting-shops.md)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from app.devtools.standin import FakeShop, ShopifyStandIn
from app.devtools.standin.oauth import (
    ID_TOKEN,
    OFFLINE_TOKEN,
    TOKEN_EXCHANGE,
    query_hmac,
    session_token,
)
from tests.support.access import new_shop

# The stand-in on a loopback port: no database, but a server.
pytestmark = pytest.mark.integration


@pytest.fixture
def fake(shopify_admin: ShopifyStandIn) -> FakeShop:
    return new_shop(shopify_admin)


def token_url(stand_in: ShopifyStandIn, shop: FakeShop) -> str:
    return f"{stand_in.base_url.format(shop=shop.domain)}/admin/oauth/access_token"


def client_credentials(stand_in: ShopifyStandIn) -> dict[str, str]:
    return {"client_id": stand_in.oauth.app.api_key, "client_secret": stand_in.oauth.app.api_secret}


async def grant(stand_in: ShopifyStandIn, shop: FakeShop, **body: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(
            token_url(stand_in, shop), json={**client_credentials(stand_in), **body}
        )


async def authorized_code(stand_in: ShopifyStandIn, shop: FakeShop) -> dict[str, str]:
    url = f"{stand_in.base_url.format(shop=shop.domain)}/admin/oauth/authorize"
    params = {
        "client_id": stand_in.oauth.app.api_key,
        "scope": "read_orders",
        "redirect_uri": "https://app.example/auth/callback",
        "state": "nonce-1",
    }
    async with httpx.AsyncClient() as http:
        answer = await http.get(url, params=params)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == params["redirect_uri"]
    return {key: values[0] for key, values in parse_qs(location.query).items()}


async def admin_call(stand_in: ShopifyStandIn, shop: FakeShop, token: str) -> int:
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            stand_in.graphql_url(shop.domain),
            json={"query": "{ shop { id } }"},
            headers={"X-Shopify-Access-Token": token},
        )
    return answer.status_code


async def test_authorize_redirects_with_a_signed_callback_and_a_single_use_code(
    shopify_admin: ShopifyStandIn, fake: FakeShop
) -> None:
    callback = await authorized_code(shopify_admin, fake)
    assert set(callback) == {"code", "hmac", "host", "shop", "state", "timestamp"}
    assert callback["state"] == "nonce-1" and callback["shop"] == fake.domain
    assert callback["hmac"] == query_hmac(callback, shopify_admin.oauth.app.api_secret)

    first = await grant(shopify_admin, fake, code=callback["code"], expiring="1")
    again = await grant(shopify_admin, fake, code=callback["code"], expiring="1")

    assert first.status_code == 200
    assert set(first.json()) == {
        "access_token",
        "scope",
        "expires_in",
        "refresh_token",
        "refresh_token_expires_in",
    }
    assert first.json()["scope"] == "read_orders"
    assert first.json()["expires_in"] == 3600
    assert first.json()["refresh_token_expires_in"] == 90 * 86400
    assert again.status_code == 400 and again.json()["error"] == "invalid_request"


async def test_a_non_expiring_grant_has_no_expiry_and_no_refresh_token(
    shopify_admin: ShopifyStandIn, fake: FakeShop
) -> None:
    callback = await authorized_code(shopify_admin, fake)
    answer = await grant(shopify_admin, fake, code=callback["code"])
    assert set(answer.json()) == {"access_token", "scope"}


async def test_one_live_token_per_shop_and_a_used_refresh_token_lives_until_its_replacement_is_used(
    shopify_admin: ShopifyStandIn, fake: FakeShop
) -> None:
    first = shopify_admin.oauth.issue(fake.domain)
    refreshed = (
        await grant(
            shopify_admin, fake, grant_type="refresh_token", refresh_token=first["refresh_token"]
        )
    ).json()
    assert refreshed["access_token"] != first["access_token"]
    assert await admin_call(shopify_admin, fake, first["access_token"]) == 401  # revoked at once
    assert await admin_call(shopify_admin, fake, refreshed["access_token"]) == 200

    # The answer may have been lost: the used refresh token still works, same pair.
    replay = await grant(
        shopify_admin, fake, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert replay.status_code == 200 and replay.json()["access_token"] == refreshed["access_token"]

    # Using the replacement retires its predecessor for good.
    newest = await grant(
        shopify_admin, fake, grant_type="refresh_token", refresh_token=refreshed["refresh_token"]
    )
    assert newest.status_code == 200
    dead = await grant(
        shopify_admin, fake, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"

    # A new token from any grant revokes the live one, refresh token included.
    shopify_admin.oauth.issue(fake.domain)
    stale = await grant(
        shopify_admin,
        fake,
        grant_type="refresh_token",
        refresh_token=newest.json()["refresh_token"],
    )
    assert stale.status_code == 400 and stale.json()["error"] == "invalid_grant"


async def test_migration_returns_the_same_pair_when_asked_again(
    shopify_admin: ShopifyStandIn, fake: FakeShop
) -> None:
    body: dict[str, Any] = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": fake.token,
        "subject_token_type": OFFLINE_TOKEN,
        "requested_token_type": OFFLINE_TOKEN,
        "expiring": "1",
    }
    first = await grant(shopify_admin, fake, **body)
    again = await grant(shopify_admin, fake, **body)
    assert first.status_code == again.status_code == 200
    assert again.json()["access_token"] == first.json()["access_token"]
    assert again.json()["refresh_token"] == first.json()["refresh_token"]
    assert await admin_call(shopify_admin, fake, fake.token) == 401  # the old token is retired

    # Once the pair has been refreshed, the original token no longer recovers it.
    await grant(
        shopify_admin, fake, grant_type="refresh_token", refresh_token=first.json()["refresh_token"]
    )
    late = await grant(shopify_admin, fake, **body)
    assert late.status_code == 400 and late.json()["error"] == "invalid_subject_token"


async def test_id_token_exchange_and_its_refusals(
    shopify_admin: ShopifyStandIn, fake: FakeShop
) -> None:
    app = shopify_admin.oauth.app
    body = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token_type": ID_TOKEN,
        "requested_token_type": OFFLINE_TOKEN,
        "expiring": "1",
    }
    good = await grant(shopify_admin, fake, subject_token=session_token(app, fake.domain), **body)
    other = new_shop(shopify_admin)
    foreign = await grant(
        shopify_admin, fake, subject_token=session_token(app, other.domain), **body
    )
    forged = await grant(
        shopify_admin, fake, subject_token=session_token(app, fake.domain, secret="x" * 32), **body
    )
    assert good.status_code == 200 and "refresh_token" in good.json()
    for refused in (foreign, forged):
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_subject_token"


async def test_bad_client_credentials_and_form_bodies(
    shopify_admin: ShopifyStandIn, fake: FakeShop
) -> None:
    issued = shopify_admin.oauth.issue(fake.domain)
    async with httpx.AsyncClient() as http:
        wrong = await http.post(
            token_url(shopify_admin, fake),
            json={"client_id": "someone", "client_secret": "else", "code": "x"},
        )
        form = await http.post(
            token_url(shopify_admin, fake),
            data={
                **client_credentials(shopify_admin),
                "grant_type": "refresh_token",
                "refresh_token": issued["refresh_token"],
            },
        )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert form.status_code == 200 and "access_token" in form.json()
