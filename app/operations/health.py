"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from app.db.database import Database, DatabaseUnavailable
from app.db.migrations import pending_migration_ids
from app.operations.openapi import HEALTH_RESPONSES, READY_RESPONSES
from app.state import database_of

READINESS_TIMEOUT = 1.0


@get(
    "/health",
    summary="Liveness: the process answers",
    tags=["health"],
    sync_to_thread=False,
    responses=HEALTH_RESPONSES,
)
def health() -> dict[str, str]:
    """Never touches the database, so a database outage does not get the service restarted."""
    return {"status": "ok"}


@get(
    "/health/ready",
    summary="Readiness: the database answers and the schema is current",
    tags=["health"],
    responses=READY_RESPONSES,
)
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
    problem = await readiness_problem(database_of(request))
    if problem is None:
        return Response({"status": "ready"}, status_code=HTTP_200_OK)
    return Response(
        {"status": "not ready", **problem},
        status_code=HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


async def readiness_problem(database: Database) -> dict[str, str] | None:
    """None when ready; otherwise the failing part and why."""
    try:
        async with asyncio.timeout(READINESS_TIMEOUT):
            async with database.connection() as connection:
                pending = await pending_migration_ids(connection)
    except (DatabaseUnavailable, TimeoutError) as error:
        reason = str(error) or f"no answer within {READINESS_TIMEOUT:g} s"
        return {"database": reason}
    if pending:
        names = ", ".join(pending)
        return {"migrations": f"{len(pending)} pending ({names}): run `python -m app migrate`"}
    return None
