"""The Litestar application: wiring of configuration, database and HTTP routes."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Controller, Litestar, Request
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from app.access.controller import AuthController, CredentialsController, TokenBrokerController
from app.access.metrics import refresh_access_metrics
from app.access.tokens import TokenService
from app.admin_api.controller import AdminController
from app.config import Settings, load_settings
from app.console import console_parts
from app.db.database import Database
from app.health import health, ready
from app.http.background import BackgroundRuns
from app.http.errors import ERROR_MAP
from app.http.limits import UnverifiedBodyBudget
from app.http.state import database_of
from app.observability.logs import configure_logging
from app.observability.metrics import metrics_controller, record_pool
from app.outbox.feed import CustomerEventsController
from app.outbox.metrics import refresh_relay_metrics
from app.outbox.retention import background_retention
from app.scores.controller import ScoresController
from app.shopify.client import http_client
from app.subscriptions.check import NotConfigured, SubscriptionChecker
from app.subscriptions.controller import SubscriptionController
from app.subscriptions.metrics import refresh_subscription_metrics
from app.sync.controller import SyncController
from app.sync.metrics import refresh_sync_metrics
from app.sync.runner import SyncRequest, SyncRunner
from app.sync.runs import RunInProgress
from app.webhooks.controller import receive_webhook
from app.webhooks.privacy.erasure import background_erasures

log = logging.getLogger("app")


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the application; the server calls this once per worker process."""
    settings = settings or load_settings()
    settings.require_secret()
    configure_logging(settings.log_level)
    database = Database.from_settings(settings)

    background_runs = BackgroundRuns()
    # Piccolo Admin at /admin/ with its own small pool, when CONSOLE_ENABLED (app/console).
    console_routes, console_lifespans = console_parts(settings, database, background_runs)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await database.start()
        try:
            async with http_client() as http:
                tokens = app.state.tokens = TokenService(database, settings, http)
                runner = app.state.sync_runner = SyncRunner(database, settings, http, tokens)
                app.state.first_connection = _first_connection(runner, background_runs)
                try:
                    yield
                finally:
                    await background_runs.stop()
        finally:
            await database.stop()

    app = Litestar(
        route_handlers=[
            receive_webhook,
            health,
            ready,
            _metrics(settings),
            AdminController,
            AuthController,
            CredentialsController,
            *([TokenBrokerController] if settings.token_broker_enabled else []),
            SyncController,
            SubscriptionController,
            CustomerEventsController,
            ScoresController,
            *console_routes,
        ],
        # Then: redact erasures in progress finish in the background (webhooks/privacy/erasure.py),
        # and customer events older than EVENT_RETENTION_DAYS are deleted (outbox/retention.py).
        lifespan=[
            lifespan,
            background_erasures(database),
            background_retention(database, settings.event_retention_days),
            *console_lifespans,
        ],
        request_max_body_size=settings.max_body_bytes,
        # Outermost: refuses a body over the budget before any of it is read.
        middleware=[
            DefineMiddleware(
                UnverifiedBodyBudget,
                limit=settings.unverified_body_budget_bytes,
                max_body=settings.max_body_bytes,
            )
        ],
        exception_handlers=ERROR_MAP,
        # Logging is ours (app.observability.logs): one JSON format for everything.
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
    app.state.background_runs = background_runs
    return app


def _first_connection(
    runner: SyncRunner, background: BackgroundRuns
) -> Callable[[str], Awaitable[None]]:
    """A newly connected shop: its webhook subscriptions created, its history synced."""

    async def subscribe_and_sync(shop: str) -> None:
        checker = SubscriptionChecker(runner.database, runner.settings, runner.http, runner.tokens)
        try:
            await checker.check(shop, fix=True)
        except NotConfigured as error:
            log.warning(
                "new shop: subscriptions not checked",
                extra={"fields": {"shop": shop, "reason": str(error)}},
            )
        except Exception as error:  # the sync still runs; the check is recorded for the shop
            log.warning(
                "new shop: subscription check failed",
                extra={"fields": {"shop": shop, "reason": str(error)}},
            )
        with contextlib.suppress(RunInProgress):  # a sync of the shop is already under way
            await runner.sync(SyncRequest(shop=shop, full=True))

    async def start(shop: str) -> None:
        background.start(subscribe_and_sync(shop))

    return start


def _metrics(settings: Settings) -> type[Controller]:
    """/metrics, with the pool's, the sync's, the subscriptions', the shops' access and the
    event relay's figures read at each scrape."""

    async def pool(request: Request[Any, Any, Any]) -> None:
        record_pool(database_of(request))

    async def sync(request: Request[Any, Any, Any]) -> None:
        await refresh_sync_metrics(database_of(request), settings.sync_overdue_seconds)

    async def subscriptions(request: Request[Any, Any, Any]) -> None:
        await refresh_subscription_metrics(database_of(request), settings.silence_after_seconds)

    async def access(request: Request[Any, Any, Any]) -> None:
        await refresh_access_metrics(database_of(request))

    async def relay(request: Request[Any, Any, Any]) -> None:
        await refresh_relay_metrics(database_of(request))

    return metrics_controller(pool, sync, subscriptions, access, relay)
