"""HTTP endpoints of the sync: starting runs, reading runs.

Behind the admin bearer token, like the rest of the admin API.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import Body, FromPath, QueryParameter
from litestar.status_codes import (
    HTTP_202_ACCEPTED,
    HTTP_409_CONFLICT,
)

from app.db.enums import SyncResource
from app.http.background import BackgroundRuns
from app.http.guards import admin_only, shop_path
from app.http.state import database_of
from app.sync.runner import ALL_RESOURCES, SyncRefused, SyncRequest, SyncRunner
from app.sync.runs import RunInProgress, get_run, recent_runs

log = logging.getLogger("app.sync")


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
    deleted: int
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
