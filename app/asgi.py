"""The Litestar application: wiring of configuration, database and HTTP routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from app.config import Settings, load_settings
from app.db.database import Database
from app.db.engine import create_engine
from app.operations.admin import AdminController
from app.operations.health import health, ready
from app.operations.logs import configure_logging
from app.operations.metrics import metrics_endpoint
from app.webhooks.controller import receive_webhook

log = logging.getLogger("app")


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the application; the server calls this once per worker process."""
    settings = settings or load_settings()
    settings.require_secret()
    configure_logging(settings.log_level)
    database = Database(
        create_engine(settings.database_url, settings.db_connect_timeout),
        pool_size=settings.db_pool_size,
        acquire_timeout=settings.db_acquire_timeout,
        statement_timeout=settings.db_statement_timeout,
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await database.start()
        try:
            yield
        finally:
            await database.stop()

    app = Litestar(
        route_handlers=[receive_webhook, health, ready, metrics_endpoint, AdminController],
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        exception_handlers={HTTP_500_INTERNAL_SERVER_ERROR: internal_error},
        # Logging is ours (app.operations.logs): one JSON format for everything.
        logging_config=None,
        openapi_config=OpenAPIConfig(
            title="shopify-ingest",
            version="0.1.0",
            path="/schema",
            components=Components(
                security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}
            ),
        ),
    )
    app.state.database = database
    app.state.settings = settings
    return app


def internal_error(request: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    """An unexpected error: logged with its traceback, answered 500 without details."""
    log.error(
        "unhandled error",
        exc_info=error,
        extra={"fields": {"path": request.url.path, "method": request.method}},
    )
    return Response(
        {"status_code": HTTP_500_INTERNAL_SERVER_ERROR, "detail": "Internal Server Error"},
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )
