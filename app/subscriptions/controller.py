"""HTTP endpoints of subscription health, behind the admin bearer token.

GET /shops/{shop}/subscriptions checks a shop's webhook subscriptions, POST
/shops/{shop}/subscriptions/fix also creates the missing ones (never deletes),
GET /shops/silent lists shops that went quiet, with their last check.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath, QueryParameter
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_400_BAD_REQUEST,
    HTTP_409_CONFLICT,
    HTTP_502_BAD_GATEWAY,
)

from app.http.guards import admin_only, shop_path
from app.http.state import database_of, settings_of
from app.shopify.errors import ShopifyError
from app.subscriptions.check import CheckRefused, CheckReport, NotConfigured, SubscriptionChecker
from app.subscriptions.silence import GAP_FACTOR, SilentShop, silent_shops
from app.sync.runner import SyncRunner


class SilentShops(msgspec.Struct):
    silence_after_seconds: float
    gap_factor: float
    shops: list[SilentShop]


def _checker(request: Request[Any, Any, Any]) -> SubscriptionChecker:
    runner: SyncRunner = request.app.state.sync_runner
    return SubscriptionChecker(runner.database, runner.settings, runner.http, runner.tokens)


async def _check(request: Request[Any, Any, Any], shop: str, *, fix: bool) -> CheckReport:
    try:
        return await _checker(request).check(shop_path(shop), fix=fix)
    except NotConfigured as error:
        raise HTTPException(status_code=HTTP_400_BAD_REQUEST, detail=str(error)) from None
    except CheckRefused as error:
        raise HTTPException(status_code=HTTP_409_CONFLICT, detail=str(error)) from None
    except ShopifyError as error:
        raise HTTPException(
            status_code=HTTP_502_BAD_GATEWAY, detail=f"Shopify's answer: {error}"
        ) from None


class SubscriptionController(Controller):
    guards = (admin_only,)
    tags = ("subscriptions",)
    security = ({"bearer": []},)

    @get(
        "/shops/{shop:str}/subscriptions",
        summary="Check the shop's webhook subscriptions against the topics the service needs",
        description=(
            "Reads webhookSubscriptions through the Admin API and reports missing, "
            "misdirected and extra subscriptions; changes nothing. 400 when PUBLIC_URL is "
            "not set, 409 without usable credentials, 502 when Shopify gives no answer."
        ),
    )
    async def check(self, request: Request[Any, Any, Any], shop: FromPath[str]) -> CheckReport:
        return await _check(request, shop, fix=False)

    @post(
        "/shops/{shop:str}/subscriptions/fix",
        status_code=HTTP_200_OK,
        summary="Create the shop's missing webhook subscriptions (never deletes any)",
    )
    async def fix(self, request: Request[Any, Any, Any], shop: FromPath[str]) -> CheckReport:
        return await _check(request, shop, fix=True)

    @get(
        "/shops/silent",
        summary="Shops that had webhook traffic and went silent, with their last check",
        description=(
            "Silent: no accepted delivery for longer than 3 times the shop's usual gap "
            "(90th percentile of its last 50 gaps), and at least SILENCE_AFTER."
        ),
    )
    async def silent(
        self,
        request: Request[Any, Any, Any],
        limit: Annotated[int, QueryParameter(ge=1, le=10000)] = 1000,
    ) -> SilentShops:
        silence_after = settings_of(request).silence_after_seconds
        async with database_of(request).reading() as connection:
            shops = await silent_shops(connection, silence_after, limit)
        return SilentShops(silence_after_seconds=silence_after, gap_factor=GAP_FACTOR, shops=shops)
