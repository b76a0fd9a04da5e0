"""Errors as HTTP answers, in one place: what a failure looks like to a client.

Handlers and the code below them raise; this map turns what they raise into
answers, all with the same JSON body (`ErrorBody`). Domain errors say which
kind of failure they are by subclassing `BadRequest`, `Unauthorized`,
`NotFound`, `Conflict`, `BadGateway` or `ServiceUnavailable`. A database that
cannot serve us is never the request's fault: 503 with Retry-After, on every
endpoint, with the driver's text in the log only (it can name roles, hosts and
limits).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_502_BAD_GATEWAY,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from litestar.types import ExceptionHandlersMap

from app.db.database import DatabaseUnavailable, is_database_failure, is_refused_value

log = logging.getLogger("app")

RETRY_AFTER_SECONDS = "5"
UNAVAILABLE_DETAIL = "the database is unavailable; nothing was recorded, retry later"


class ErrorBody(msgspec.Struct, omit_defaults=True):
    """Every error answer: the status again, what was wrong, and details when there are any."""

    status_code: int
    detail: str
    extra: dict[str, Any] | list[Any] | None = None


class BadRequest(Exception):
    """The request cannot be served as sent (400); the message says why."""


class Unauthorized(Exception):
    """Missing or wrong credentials (401)."""


class NotFound(Exception):
    """Nothing matches what the request names (404)."""


class Conflict(Exception):
    """The request is fine, but the state of what it names does not allow it now (409)."""


class BadGateway(Exception):
    """Shopify, which the request needed, gave no usable answer (502)."""


class ServiceUnavailable(Exception):
    """The service cannot serve this now (503); with Retry-After unless it needs an operator."""

    retry_later = True


def error_response(
    status_code: int, detail: str, *, extra: Any = None, headers: dict[str, str] | None = None
) -> Response[ErrorBody]:
    return Response(
        ErrorBody(status_code, detail, extra or None), status_code=status_code, headers=headers
    )


def _answer_with(status_code: int) -> Any:
    def handler(request: Request[Any, Any, Any], error: Exception) -> Response[ErrorBody]:
        return error_response(status_code, str(error))

    return handler


def _service_unavailable(
    request: Request[Any, Any, Any], error: ServiceUnavailable
) -> Response[ErrorBody]:
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if error.retry_later else None
    return error_response(HTTP_503_SERVICE_UNAVAILABLE, str(error), headers=headers)


def _http_error(request: Request[Any, Any, Any], error: HTTPException) -> Response[ErrorBody]:
    """Litestar's own (validation, 401/403 guards, 404 routes, 413 bodies...), in our body."""
    if error.status_code == HTTP_500_INTERNAL_SERVER_ERROR:
        return _unexpected(request, error)
    return error_response(error.status_code, error.detail, extra=error.extra, headers=error.headers)


def _unavailable(request: Request[Any, Any, Any], error: Exception) -> Response[ErrorBody]:
    fields = {"path": request.url.path, "method": request.method, "error": _describe(error)}
    log.warning("database unavailable", extra={"fields": fields})
    return error_response(
        HTTP_503_SERVICE_UNAVAILABLE,
        UNAVAILABLE_DETAIL,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def _unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[ErrorBody]:
    """Whatever nothing above answered: a database failure (503), or a bug (500)."""
    if is_refused_value(error):
        # A value from the request that PostgreSQL cannot take; the edge
        # validation should have caught it, so it is logged as a warning.
        fields = {"path": request.url.path, "method": request.method}
        log.warning("database refused a request value", extra={"fields": fields})
        return error_response(HTTP_400_BAD_REQUEST, "a parameter has a value not allowed")
    if is_database_failure(error):
        return _unavailable(request, error)
    fields = {"path": request.url.path, "method": request.method}
    log.error("unhandled error", exc_info=error, extra={"fields": fields})
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR, "Internal Server Error")


ERROR_MAP: ExceptionHandlersMap = {
    BadRequest: _answer_with(HTTP_400_BAD_REQUEST),
    Unauthorized: _answer_with(HTTP_401_UNAUTHORIZED),
    NotFound: _answer_with(HTTP_404_NOT_FOUND),
    Conflict: _answer_with(HTTP_409_CONFLICT),
    BadGateway: _answer_with(HTTP_502_BAD_GATEWAY),
    ServiceUnavailable: _service_unavailable,
    DatabaseUnavailable: _unavailable,
    HTTPException: _http_error,
    Exception: _unexpected,
}


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
