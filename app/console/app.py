"""The operator console: Piccolo Admin, mounted at /admin/ when CONSOLE_ENABLED is set.

Read-only lists of shops, customers, orders, webhook deliveries and sync runs
(app/console/views.py: chosen columns only), filterable by shop, topic,
status and time; two forms (app/console/forms.py); Piccolo's session login
against `piccolo_user` (users come from `python -m app console create-user`).

Read-only is Piccolo Admin's `read_only=True`: the tables get GET routes
only, so nothing can be added, changed or deleted through the console
(forms are separate endpoints). Its page knows nothing of that and offers
Add Row, Save, Update and Delete all the same (each refused with 405): a
stylesheet added to the page (READ_ONLY_CSS) hides them. Reads use the console's own small pool
(app/console/pool.py). A database that cannot answer in time gives 503 with
Retry-After, as everywhere in the service.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from litestar import Litestar
from litestar.handlers import ASGIRouteHandler, asgi
from litestar.types import Receive, Scope, Send
from piccolo.columns import Column
from piccolo.table import Table
from piccolo_admin.endpoints import FormConfig, TableConfig, create_admin
from piccolo_admin.translations.data import ENGLISH
from piccolo_api.crud.endpoints import OrderBy
from piccolo_api.rate_limiting.middleware import InMemoryLimitProvider
from piccolo_api.session_auth.tables import SessionsBase
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount

from app.config import Settings
from app.console import views
from app.console.forms import ReplayFailed, StartSync, replay_form, sync_form
from app.console.lockout import CLIENT_ADDRESS
from app.console.pool import start_pool, stop_pool
from app.console.users import ConsoleUser
from app.db.database import Database, DatabaseUnavailable, is_refused_value
from app.http.background import BackgroundRuns
from app.sync.runner import SyncRunner

log = logging.getLogger("app.console")

PATH = "/admin"
# Requests to the login endpoint one client address may make in this many seconds.
LOGIN_FLOOD_REQUESTS = 100
LOGIN_FLOOD_SECONDS = 300
# What Piccolo Admin's page offers that a read-only console refuses: Add Row,
# selecting rows (for Update / Delete selected), a row's Edit / Delete menu, and
# a row page's Save and Delete. The row page's fields are shown, not editable.
READ_ONLY_CSS = """
.title_bar .buttons a.button[href$="/add/"],
.table_wrapper tr > :first-child:has(> input[type="checkbox"]),
.table_wrapper td:has(> span > a > svg.fa-ellipsis-vertical),
form button[data-uitest="save_button"],
.header a[data-uitest="drop_down_button"] { display: none !important; }
form:has(button[data-uitest="save_button"]) :is(input, select, textarea) { pointer-events: none; }
"""
RETRY_AFTER_SECONDS = "5"
# What, raised while serving a console request, means the database could not serve it.
DATABASE_FAILURES: tuple[type[Exception], ...] = (
    DatabaseUnavailable,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)


def _shown(view: type[Table]) -> list[Column]:
    """Every column of a view but its primary key, in order.

    Piccolo Admin lists the primary key among a table's default visible
    columns but leaves it out of the schema its page reads: the page then
    failed on every row (TypeError in isBoolean) and listed nothing.
    """
    return [column for column in view._meta.columns if not column._meta.primary_key]


def _tables() -> list[TableConfig]:
    delivery, shop, customer, order, run = (
        views.DeliveryView,
        views.ShopView,
        views.CustomerView,
        views.OrderView,
        views.SyncRunView,
    )
    return [
        TableConfig(
            delivery,
            visible_columns=[
                delivery.received_at,
                delivery.shop_id,
                delivery.topic,
                delivery.status,
                delivery.attempts,
                delivery.last_error,
                delivery.processed_at,
            ],
            visible_filters=[
                delivery.shop_id,
                delivery.topic,
                delivery.status,
                delivery.received_at,
                delivery.webhook_id,
            ],
            order_by=[OrderBy(delivery.received_at, ascending=False)],
            link_column=delivery.received_at,
        ),
        TableConfig(
            shop,
            visible_columns=_shown(shop),
            visible_filters=[shop.shop_id, shop.uninstalled_at, shop.redacted_at],
            order_by=[OrderBy(shop.shop_id)],
            link_column=shop.shop_id,
        ),
        TableConfig(
            customer,
            visible_columns=_shown(customer),
            visible_filters=[
                customer.shop_id,
                customer.shopify_id,
                customer.segment,
                customer.deleted_at,
                customer.redacted_at,
            ],
            order_by=[OrderBy(customer.created_at, ascending=False)],
            link_column=customer.shopify_id,
        ),
        TableConfig(
            order,
            visible_columns=_shown(order),
            visible_filters=[
                order.shop_id,
                order.shopify_id,
                order.name,
                order.financial_status,
                order.created_at,
            ],
            order_by=[OrderBy(order.created_at, ascending=False)],
            link_column=order.shopify_id,
        ),
        TableConfig(
            run,
            visible_columns=_shown(run),
            visible_filters=[run.shop_id, run.status, run.kind, run.started_at],
            order_by=[OrderBy(run.started_at, ascending=False)],
            link_column=run.started_at,
        ),
    ]


def _database_failure(request: Request, error: Exception) -> Response:
    """503 with Retry-After (or 400 for a value PostgreSQL refused); the driver's text is logged."""
    fields = {"path": request.url.path, "method": request.method}
    if is_refused_value(error):
        log.warning("console: database refused a request value", extra={"fields": fields})
        return JSONResponse(
            {"status_code": 400, "detail": "a parameter has a value not allowed"}, status_code=400
        )
    fields["error"] = f"{type(error).__name__}: {error}"
    log.warning("console: database unavailable", extra={"fields": fields})
    return JSONResponse(
        {"status_code": 503, "detail": "the database is unavailable or too slow; retry later"},
        status_code=503,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def _answer_database_failures(admin: Starlette) -> None:
    """On Piccolo Admin's app and its two inner apps (the API behind the login, and the login)."""
    apps: list[Starlette] = [admin]
    for route in admin.routes:
        if isinstance(route, Mount) and route.path in ("/api", "/public"):
            inner: Any = route.app
            # The API sits behind Starlette's AuthenticationMiddleware.
            apps.append(getattr(inner, "app", inner))
    if len(apps) != 3 or not all(isinstance(app, Starlette) for app in apps):
        raise RuntimeError("Piccolo Admin's layout changed: cannot install the 503 handlers")
    for app in apps:
        for failure in DATABASE_FAILURES:
            app.add_exception_handler(failure, _database_failure)


class Console:
    """The console of one worker: the mounted app and the lifespan of its pool."""

    def __init__(
        self, settings: Settings, database: Database, background_runs: BackgroundRuns
    ) -> None:
        self.settings = settings
        self._litestar: Litestar | None = None
        # Secure cookies when the service is public over HTTPS (PUBLIC_URL); CSRF
        # then also checks that a form comes from that host.
        secure = settings.public_url is not None
        hosts = [urlsplit(settings.public_url).hostname or ""] if settings.public_url else []
        if not secure:
            # Piccolo warns at every login that cookies are not Secure: a choice made here.
            warnings.filterwarnings("ignore", message="If running sessions in production")
        self.admin = create_admin(
            tables=_tables(),
            forms=[
                FormConfig(
                    name="Replay failed deliveries",
                    pydantic_model=ReplayFailed,
                    endpoint=replay_form(database),
                    description=(
                        "Apply a shop's failed deliveries again, through the live handlers."
                        " First with Dry Run True, to see how many would be replayed; then False."
                        " Times are UTC."
                    ),
                ),
                FormConfig(
                    name="Start a sync",
                    pydantic_model=StartSync,
                    endpoint=sync_form(self._sync_runner, background_runs),
                    description=(
                        "Fetch the shop's customers and orders through the Admin API,"
                        " in the background. Needs the shop's stored access token."
                    ),
                ),
            ],
            auth_table=ConsoleUser,
            session_table=SessionsBase,
            # A flood guard per client address that expires (Piccolo's own blocks
            # until a restart); failed logins lock accounts and addresses (lockout.py).
            rate_limit_provider=InMemoryLimitProvider(
                timespan=LOGIN_FLOOD_SECONDS,
                limit=LOGIN_FLOOD_REQUESTS,
                block_duration=LOGIN_FLOOD_SECONDS,
            ),
            read_only=True,
            production=secure,
            allowed_hosts=hosts,
            site_name="shopify-ingest console",
            auto_include_related=False,
            default_language_code="en",
            translations=[ENGLISH],
            sidebar_links={"Failed deliveries": f"{PATH}/#/webhook_events?status=failed"},
        )
        _answer_database_failures(self.admin)
        self.admin.template = self.admin.template.replace(
            "</head>", f"<style>{READ_ONLY_CSS}</style></head>", 1
        )
        self.route_handler: ASGIRouteHandler = asgi(PATH, is_mount=True, copy_scope=True)(
            self._serve
        )

    def _sync_runner(self) -> SyncRunner:
        if self._litestar is None:
            raise RuntimeError("the console is not started")
        runner: SyncRunner = self._litestar.state.sync_runner
        return runner

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        CLIENT_ADDRESS.set(client[0] if client else "unknown")  # this request's task only
        asgi_scope: dict[str, Any] = dict(scope)
        raw_path: bytes = asgi_scope.get("raw_path") or b""
        if asgi_scope["path"] == "/" and not raw_path.endswith(b"/"):
            # /admin -> /admin/: the console's pages use links relative to it.
            redirect = RedirectResponse(raw_path.decode("latin-1") + "/", status_code=308)
            await redirect(asgi_scope, receive, send)  # type: ignore[arg-type]
            return
        await self.admin(asgi_scope, receive, send)

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        self._litestar = app
        await start_pool(self.settings)
        try:
            yield
        finally:
            await stop_pool()
