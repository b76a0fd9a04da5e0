"""HTTP endpoints of the sync: a shop's credentials, starting runs, reading runs.

Behind the admin bearer token, like the rest of the admin API. Tokens go in
and never come out: no answer contains one.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import Body, FromPath, QueryParameter
from litestar.status_codes import (
    HTTP_202_ACCEPTED,
    HTTP_204_NO_CONTENT,
    HTTP_409_CONFLICT,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from app.access.cipher import TokenKeyMissing
from app.access.credentials import delete_credentials, store_credentials
from app.db.enums import SyncResource
from app.http.background import BackgroundRuns
from app.http.guards import admin_only, shop_path
from app.http.state import database_of
from app.sync.runner import ALL_RESOURCES, SyncRefused, SyncRequest, SyncRunner
from app.sync.runs import RunInProgress, get_run, recent_runs

log = logging.getLogger("app.sync")

# A printable token without spaces; Shopify's are `shpat_` + 32 hex digits.
AccessToken = Annotated[str, msgspec.Meta(min_length=1, max_length=1000, pattern=r"^[\x21-\x7e]+$")]


class CredentialsIn(msgspec.Struct, forbid_unknown_fields=True):
    """A shop's offline Admin API access token and the scopes it was granted."""

    access_token: AccessToken
    scope: Annotated[str, msgspec.Meta(max_length=2000, pattern=r"^[\x20-\x7e]*$")] | None = None


class SyncIn(msgspec.Struct, forbid_unknown_fields=True):
    full: bool = False
    resources: list[SyncResource] | None = None


class SyncStarted(msgspec.Struct):
    run_id: UUID
    status: str = "running"


class SyncRunOut(msgspec.Struct):
    id: UUID
    shop: str
    kind: str
    resource: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    fetched: int
    applied: int
    stale: int
    failed: int
    api_cost: int
    throttle_wait_seconds: float
    last_error: str | None
    note: str | None


class SyncRunList(msgspec.Struct):
    runs: list[SyncRunOut]


def _run_out(row: Any) -> SyncRunOut:
    values = dict(row)
    values["shop"] = values.pop("shop_id")
    return msgspec.convert(values, SyncRunOut, from_attributes=False)


class SyncController(Controller):
    guards = (admin_only,)
    tags = ("sync",)
    security = ({"bearer": []},)

    @put(
        "/shops/{shop:str}/credentials",
        status_code=HTTP_204_NO_CONTENT,
        summary="Store a shop's Admin API access token (encrypted at rest)",
        description="Does not call Shopify: a bad token shows at the shop's first sync.",
    )
    async def put_credentials(
        self,
        request: Request[Any, Any, Any],
        shop: FromPath[str],
        data: Annotated[CredentialsIn, Body()],
    ) -> None:
        runner: SyncRunner = request.app.state.sync_runner
        try:
            await store_credentials(
                database_of(request), runner.cipher, shop_path(shop), data.access_token, data.scope
            )
        except TokenKeyMissing as error:
            raise HTTPException(
                status_code=HTTP_503_SERVICE_UNAVAILABLE, detail=str(error)
            ) from None

    @delete(
        "/shops/{shop:str}/credentials",
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete a shop's Admin API credentials",
    )
    async def delete_credentials(
        self, request: Request[Any, Any, Any], shop: FromPath[str]
    ) -> None:
        await delete_credentials(database_of(request), shop_path(shop))

    @post(
        "/shops/{shop:str}/sync",
        status_code=HTTP_202_ACCEPTED,
        summary="Start a sync of the shop in the background",
        description=(
            "Answers 202 with the run's id at once; follow it with GET /sync/runs/{id}. "
            "409 when a run of the shop is in progress or it has no usable credentials."
        ),
    )
    async def start_sync(
        self,
        request: Request[Any, Any, Any],
        shop: FromPath[str],
        data: Annotated[SyncIn | None, Body()] = None,
    ) -> SyncStarted:
        options = data or SyncIn()
        resources = tuple(r for r in ALL_RESOURCES if r in (options.resources or ALL_RESOURCES))
        sync_request = SyncRequest(shop=shop_path(shop), full=options.full, resources=resources)
        runner: SyncRunner = request.app.state.sync_runner
        try:
            started = await runner.begin(sync_request)
        except RunInProgress as busy:
            raise HTTPException(
                status_code=HTTP_409_CONFLICT,
                detail=f"a sync of this shop is already running: run {busy.run_id}",
            ) from None
        except SyncRefused as refused:
            raise HTTPException(status_code=HTTP_409_CONFLICT, detail=str(refused)) from None
        background: BackgroundRuns = request.app.state.background_runs
        background.start(runner.execute(started))
        return SyncStarted(run_id=started.run.id)

    @get("/shops/{shop:str}/sync", summary="The shop's recent sync runs, newest first")
    async def list_runs(
        self,
        request: Request[Any, Any, Any],
        shop: FromPath[str],
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 20,
    ) -> SyncRunList:
        async with database_of(request).reading() as connection:
            rows = await recent_runs(connection, shop_path(shop), limit)
        return SyncRunList(runs=[_run_out(row) for row in rows])

    @get("/sync/runs/{run_id:uuid}", summary="One sync run: kind, status, counts, cost, errors")
    async def get_run(self, request: Request[Any, Any, Any], run_id: FromPath[UUID]) -> SyncRunOut:
        async with database_of(request).reading() as connection:
            row = await get_run(connection, run_id)
        if row is None:
            raise NotFoundException(f"no sync run with id {run_id}")
        return _run_out(row)
