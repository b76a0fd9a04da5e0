"""The console's forms: replay a shop's failed deliveries, start a sync.

Each form posts a pydantic model to an endpoint that does what the admin API
does (`POST /replay`, `POST /shops/{shop}/sync`) on the service's own
database and sync runner, and answers a line of text shown in the console.
A ValueError's message is shown as the form's error instead.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request

from app.admin_api.events import EventFilter
from app.admin_api.replay import DEFAULT_REPLAY_LIMIT, ReplayReport, replay_deliveries
from app.db.database import Database, DatabaseUnavailable
from app.db.enums import DeliveryStatus
from app.http.background import BackgroundRuns
from app.shopify.domains import shop_domain
from app.sync.runner import ALL_RESOURCES, SyncRefused, SyncRequest, SyncRunner
from app.sync.runs import RunInProgress

log = logging.getLogger("app.console")

UNAVAILABLE = "the database is unavailable or too slow right now: nothing was done, try again"


class ReplayFailed(BaseModel):
    shop: str = Field(
        min_length=1, max_length=255, description="The shop's domain: example.myshopify.com"
    )
    since: datetime | None = Field(
        default=None, description="Only deliveries received at or after this time (UTC)"
    )
    until: datetime | None = Field(
        default=None, description="Only deliveries received before this time (UTC)"
    )
    dry_run: bool = Field(
        default=True, description="True: only count what would be replayed; False: replay"
    )


class StartSync(BaseModel):
    shop: str = Field(
        min_length=1, max_length=255, description="The shop's domain: example.myshopify.com"
    )
    full: bool = Field(
        default=False, description="The whole history (bulk operations), not only what changed"
    )


def _shop(value: str) -> str:
    domain = shop_domain(value)
    if domain is None:
        raise ValueError(f"{value!r} is not a *.myshopify.com domain")
    return domain


def _utc(name: str, value: datetime | None) -> datetime | None:
    """A form time in UTC; a time without a zone is taken as UTC."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(f"{name} is outside the years 1 to 9999 in UTC") from None


def _operator(request: Request) -> str | None:
    """The logged-in console user's id, for the log (never a name or a password)."""
    user = request.scope.get("user")
    user_id = getattr(user, "user_id", None)
    return None if user_id is None else str(user_id)


def _summary(shop: str, report: ReplayReport, limit: int) -> str:
    topics = Counter(delivery.topic for delivery in report.deliveries)
    by_topic = ", ".join(f"{topic}: {count}" for topic, count in sorted(topics.items()))
    more = (
        f" More than {limit} match: submit again for the next ones (or use `python -m app replay`)."
        if report.next_cursor
        else ""
    )
    if report.matched == 0:
        return f"No failed deliveries of {shop} match: nothing to replay."
    deliveries = _plural(report.matched, "failed delivery", "failed deliveries")
    if report.dry_run:
        return (
            f"Dry run: {deliveries} of {shop} would be replayed ({by_topic})."
            f" Nothing was changed.{more}"
        )
    return (
        f"Replayed {report.done} of {deliveries} of {shop} ({by_topic}):"
        f" {report.processed} processed, {report.stale} stale, {report.failed} still failed,"
        f" {report.ignored} ignored, {report.erasing} erasing, {report.missing} gone.{more}"
    )


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def replay_form(database: Database, limit: int = DEFAULT_REPLAY_LIMIT) -> Any:
    async def replay(request: Request, data: ReplayFailed) -> str:
        shop = _shop(data.shop)
        since, until = _utc("since", data.since), _utc("until", data.until)
        if since and until and since >= until:
            raise ValueError("since must be before until")
        where = EventFilter(shop=shop, status=DeliveryStatus.failed, since=since, until=until)
        try:
            report = await replay_deliveries(database, where, limit=limit, dry_run=data.dry_run)
        except DatabaseUnavailable as error:
            log.warning(
                "console replay: database unavailable", extra={"fields": {"error": str(error)}}
            )
            raise ValueError(UNAVAILABLE) from None
        log.info(
            "console replay",
            extra={
                "fields": {
                    "operator": _operator(request),
                    "shop": shop,
                    "dry_run": report.dry_run,
                    "matched": report.matched,
                    "processed": report.processed,
                    "stale": report.stale,
                    "failed": report.failed,
                }
            },
        )
        return _summary(shop, report, limit)

    return replay


def sync_form(runner_of: Callable[[], SyncRunner], background: BackgroundRuns) -> Any:
    async def start_sync(request: Request, data: StartSync) -> str:
        shop = _shop(data.shop)
        runner = runner_of()
        try:
            started = await runner.begin(
                SyncRequest(shop=shop, full=data.full, resources=ALL_RESOURCES)
            )
        except RunInProgress as busy:
            raise ValueError(f"a sync of {shop} is already running: run {busy.run_id}") from None
        except SyncRefused as refused:
            raise ValueError(f"cannot sync {shop}: {refused}") from None
        except DatabaseUnavailable as error:
            log.warning(
                "console sync: database unavailable", extra={"fields": {"error": str(error)}}
            )
            raise ValueError(UNAVAILABLE) from None
        background.start(runner.execute(started))
        run = started.run
        log.info(
            "console sync started",
            extra={"fields": {"operator": _operator(request), "shop": shop, "run_id": str(run.id)}},
        )
        return (
            f"Sync of {shop} started: run {run.id} ({run.kind.value}, {run.resource})."
            " Follow it under Sync runs."
        )

    return start_sync
