"""Errors as HTTP answers, in one place: what a failure looks like to a client.

Every answer is JSON (`{"status_code": ..., "detail": ...}`). A database that
cannot serve us is never the request's fault: 503 with Retry-After, on every
endpoint, with the driver's text in the log only (it can name roles, hosts
and limits).
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from app.db.database import is_database_failure, is_refused_value

log = logging.getLogger("app")

RETRY_AFTER_SECONDS = "5"
UNAVAILABLE_DETAIL = "the database is unavailable; nothing was recorded, retry later"


def unavailable_response(detail: str = UNAVAILABLE_DETAIL) -> Response[dict[str, Any]]:
    return Response(
        {"status_code": HTTP_503_SERVICE_UNAVAILABLE, "detail": detail},
        status_code=HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def unexpected_error(request: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    """Whatever no handler answered: a database failure (503), or a bug (500)."""
    fields = {"path": request.url.path, "method": request.method}
    if is_refused_value(error):
        # A value from the request that PostgreSQL cannot take; the edge
        # validation should have caught it, so it is logged as a warning.
        log.warning("database refused a request value", extra={"fields": fields})
        return Response(
            {"status_code": HTTP_400_BAD_REQUEST, "detail": "a parameter has a value not allowed"},
            status_code=HTTP_400_BAD_REQUEST,
        )
    if is_database_failure(error):
        log.warning(
            "database unavailable",
            extra={"fields": {**fields, "error": _describe(error)}},
        )
        return unavailable_response("the database is unavailable, retry later")
    log.error("unhandled error", exc_info=error, extra={"fields": fields})
    return Response(
        {"status_code": HTTP_500_INTERNAL_SERVER_ERROR, "detail": "Internal Server Error"},
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
