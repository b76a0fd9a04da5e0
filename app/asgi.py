"""The Litestar application: wiring of configuration, database and HTTP routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.openapi import OpenAPIConfig

from app.config import Settings, load_settings
from app.db.database import Database
from app.db.engine import create_engine
from app.operations.health import health, ready
from app.operations.logs import configure_logging
from app.webhooks.controller import receive_webhook


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
        route_handlers=[receive_webhook, health, ready],
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(title="shopify-ingest", version="0.1.0", path="/schema"),
    )
    app.state.database = database
    app.state.settings = settings
    app.state.shopify_secrets = settings.shopify_secrets
    return app
