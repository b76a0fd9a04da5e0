"""POST /shops/{shop}/scores: a scoring pass of the shop, started in the background."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, post
from litestar.params import FromPath
from litestar.status_codes import HTTP_202_ACCEPTED

from app.http.background import BackgroundRuns
from app.http.guards import admin_only, shop_path
from app.http.openapi import ADMIN_ERRORS, error_response, example_response
from app.http.state import settings_of
from app.scores.scoring import score_shop


class ScoringStarted(msgspec.Struct):
    shop: str
    status: str = "scoring"


SCORES_RESPONSES = {
    202: example_response(
        "The pass has started; its outcome is logged (`scoring pass`)",
        ScoringStarted("example.myshopify.com"),
    ),
    400: error_response(400, "Not a shop domain", "shop must be a *.myshopify.com domain"),
    **ADMIN_ERRORS,
}


class ScoresController(Controller):
    guards = (admin_only,)
    tags = ("scores",)
    security = ({"bearer": []},)

    @post(
        "/shops/{shop:str}/scores",
        status_code=HTTP_202_ACCEPTED,
        summary="Recompute the shop's RFM scores and segments now, in the background",
        description=(
            "Answers 202 at once. The pass writes only the customers whose scores changed and"
            " announces each segment change (GET /shops/{shop}/customer-events)."
        ),
        responses=SCORES_RESPONSES,
    )
    async def score(self, request: Request[Any, Any, Any], shop: FromPath[str]) -> ScoringStarted:
        domain = shop_path(shop)
        settings = settings_of(request)
        background: BackgroundRuns = request.app.state.background_runs
        background.start(score_shop(request.app.state.database, domain, settings.new_customer_days))
        return ScoringStarted(domain)
