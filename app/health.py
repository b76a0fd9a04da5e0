"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

import msgspec
from litestar import Request, Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from app.db.database import Database, is_database_failure
from app.db.migrations import pending_migration_ids
from app.http.errors import RETRY_AFTER_SECONDS
from app.http.openapi import example_response
from app.http.state import database_of

READINESS_TIMEOUT = 1.0

log = logging.getLogger("app.health")


class Liveness(msgspec.Struct):
    status: Literal["ok"] = "ok"


class Readiness(msgspec.Struct, omit_defaults=True):
    """`ready`, or `not ready` with the failing part (`database`, `migrations`) and why."""

    status: Literal["ready", "not ready"]
    database: str | None = None
    migrations: str | None = None


READY_RESPONSES = {
    200: example_response("Ready to take deliveries", Readiness("ready")),
    503: example_response(
        "Not ready: the failing part and why (with Retry-After)",
        Readiness("not ready", database=f"no answer within {READINESS_TIMEOUT:g} s"),
        Readiness(
            "not ready",
            migrations="1 pending (ingest_2026_11_23t23_08_52_314599): run `python -m app migrate`",
        ),
    ),
}


@get(
    "/health",
    summary="Liveness: the process answers",
    tags=["health"],
    sync_to_thread=False,
    responses={200: example_response("The process answers", Liveness())},
)
def health() -> Liveness:
    """Never touches the database, so a database outage does not get the service restarted."""
    return Liveness()


@get(
    "/health/ready",
    summary="Readiness: the database answers and the schema is current",
    tags=["health"],
    responses=READY_RESPONSES,
)
async def ready(request: Request[Any, Any, Any]) -> Response[Readiness]:
    problem = await readiness_problem(database_of(request))
    if problem is None:
        return Response(Readiness("ready"), status_code=HTTP_200_OK)
    return Response(
        Readiness("not ready", **problem),
        status_code=HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


async def readiness_problem(database: Database) -> dict[str, str] | None:
    """None when ready; otherwise the failing part and why."""
    try:
        async with asyncio.timeout(READINESS_TIMEOUT):
            async with database.connection() as connection:
                pending = await pending_migration_ids(connection)
    except Exception as error:
        if not is_database_failure(error):
            raise
        # The driver's text names roles, hosts and limits: for the log only.
        reason = str(error) or f"no answer within {READINESS_TIMEOUT:g} s"
        log.warning("not ready: database", extra={"fields": {"error": reason}})
        if isinstance(error, TimeoutError):
            return {"database": f"no answer within {READINESS_TIMEOUT:g} s"}
        return {"database": "unavailable"}
    if pending:
        names = ", ".join(pending)
        return {"migrations": f"{len(pending)} pending ({names}): run `python -m app migrate`"}
    return None
