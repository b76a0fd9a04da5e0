"""The admin API: the ledger, replay, and a customer's data export.

Protected by `Authorization: Bearer <ADMIN_TOKEN>`. Without ADMIN_TOKEN the
endpoints are off and answer 403 saying how to turn them on.
"""

from __future__ import annotations

import hmac
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import (
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.handlers import BaseRouteHandler
from litestar.openapi.spec import Example
from litestar.params import Body, FromPath, FromQuery, QueryParameter

from app.admin.events import (
    MAX_CURSOR_LENGTH,
    MAX_LIST_LIMIT,
    EventFilter,
    InvalidCursor,
    get_event,
    list_events,
)
from app.admin.export import export_customer
from app.admin.replay import DEFAULT_REPLAY_LIMIT, MAX_REPLAY_LIMIT, replay_deliveries
from app.db.enums import DeliveryStatus
from app.http import inputs
from app.http.openapi import (
    EVENT_RESPONSES,
    EVENTS_RESPONSES,
    EXPORT_RESPONSES,
    REPLAY_RESPONSES,
)
from app.http.state import database_of, settings_of
from app.sync.metrics import MISMATCHED
from app.webhooks.delivery import shop_domain

MAX_MISMATCHED = 1000

_LIST_MISMATCHED = f"""
SELECT c.shopify_id, c.order_count, c.total_spent, c.shopify_order_count,
       c.shopify_amount_spent, c.shopify_summary_at
FROM customers AS c
WHERE c.shop_id = $1 AND {MISMATCHED}
ORDER BY c.shopify_id
LIMIT $2
"""  # noqa: S608 (a constant condition)


class MismatchedCustomer(msgspec.Struct):
    """A customer whose totals differ from Shopify's customers/purchasing_summary."""

    shopify_id: str
    order_count: int | None
    total_spent: Decimal | None
    shopify_order_count: int | None
    shopify_amount_spent: Decimal | None
    shopify_summary_at: datetime | None


class MismatchedCustomers(msgspec.Struct):
    shop: str
    customers: list[MismatchedCustomer]


def admin_only(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    token = settings_of(connection).admin_token
    if not token:
        raise PermissionDeniedException("the admin API is disabled: set ADMIN_TOKEN to enable it")
    scheme, _, supplied = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(supplied.encode(), token.encode()):
        raise NotAuthorizedException(
            "missing or wrong admin token: send Authorization: Bearer <ADMIN_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )


def shop_path(shop: str) -> str:
    """A `{shop}` path parameter as a domain; 400 when it is not a *.myshopify.com domain."""
    domain = shop_domain(shop)
    if domain is None:
        raise ValidationException("shop must be a *.myshopify.com domain")
    return domain


class ReplayRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Which stored deliveries to replay: explicit ids or webhook ids, or a filter."""

    ids: list[UUID] = []
    webhook_ids: list[str] = []
    shop: str | None = None
    topic: str | None = None
    status: DeliveryStatus | None = None
    since: datetime | None = None
    until: datetime | None = None
    dry_run: bool = False
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_REPLAY_LIMIT)] = DEFAULT_REPLAY_LIMIT
    cursor: str | None = None

    def selection(self) -> EventFilter:
        """The filter, its values checked (400 naming the field)."""
        inputs.text("cursor", self.cursor, MAX_CURSOR_LENGTH)
        return EventFilter(
            shop=inputs.text("shop", self.shop),
            topic=inputs.text("topic", self.topic),
            status=self.status,
            since=inputs.time("since", self.since),
            until=inputs.time("until", self.until),
            webhook_ids=inputs.texts("webhook_ids", self.webhook_ids),
            ids=self.ids,
        )


REPLAY_EXAMPLE = Example(
    summary="Replay the failed deliveries of one shop",
    value={"shop": "example.myshopify.com", "status": "failed", "limit": 1000},
)


class AdminController(Controller):
    guards = (admin_only,)
    tags = ("admin",)
    security = ({"bearer": []},)

    @get(
        "/events",
        summary="List recorded deliveries, newest first",
        description="Keyset pagination: pass `next_cursor` back as `cursor` for the next page.",
        responses=EVENTS_RESPONSES,
    )
    async def events(
        self,
        request: Request[Any, Any, Any],
        shop: FromQuery[str | None] = None,
        topic: FromQuery[str | None] = None,
        status: FromQuery[DeliveryStatus | None] = None,
        since: Annotated[
            datetime | None, QueryParameter(description="received at or after")
        ] = None,
        until: Annotated[datetime | None, QueryParameter(description="received before")] = None,
        webhook_id: FromQuery[str | None] = None,
        event_id: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIST_LIMIT)] = 100,
        cursor: FromQuery[str | None] = None,
        include_payload: FromQuery[bool] = False,
    ) -> dict[str, Any]:
        webhook_id = inputs.text("webhook_id", webhook_id)
        where = EventFilter(
            shop=inputs.text("shop", shop),
            topic=inputs.text("topic", topic),
            status=status,
            since=inputs.time("since", since),
            until=inputs.time("until", until),
            webhook_ids=[webhook_id] if webhook_id else [],
            event_id=inputs.text("event_id", event_id),
        )
        inputs.text("cursor", cursor, MAX_CURSOR_LENGTH)
        async with database_of(request).connection() as connection:
            try:
                page = await list_events(
                    connection, where, limit=limit, cursor=cursor, with_payload=include_payload
                )
            except InvalidCursor as error:
                raise ValidationException(str(error)) from None
        return {"events": page.events, "next_cursor": page.next_cursor}

    @get(
        "/events/{event_id:uuid}",
        summary="One recorded delivery, with its payload",
        responses=EVENT_RESPONSES,
    )
    async def event(
        self, request: Request[Any, Any, Any], event_id: FromPath[UUID]
    ) -> dict[str, Any]:
        async with database_of(request).connection() as connection:
            event = await get_event(connection, event_id)
        if event is None:
            raise NotFoundException(f"no recorded delivery with id {event_id}")
        return event

    @post(
        "/replay",
        status_code=200,
        summary="Replay stored deliveries through the live handlers",
        description=(
            "Applies the selected deliveries in triggered_at order (then received_at), each "
            "in its own transaction, and answers counts and the ids that failed. `dry_run` "
            "only reports what would be replayed. At most `limit` per call; pass `next_cursor` "
            "back as `cursor` to continue. Payloads always come from the ledger."
        ),
        responses=REPLAY_RESPONSES,
    )
    async def replay(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[ReplayRequest, Body(examples=[REPLAY_EXAMPLE])],
    ) -> dict[str, Any]:
        selection = data.selection()
        if selection.matches_everything():
            raise ValidationException(
                "say which deliveries to replay: ids, webhook_ids, or a filter "
                "(shop, topic, status, since, until)"
            )
        try:
            report = await replay_deliveries(
                database_of(request),
                selection,
                limit=data.limit,
                cursor=data.cursor,
                dry_run=data.dry_run,
            )
        except InvalidCursor as error:
            raise ValidationException(str(error)) from None
        return asdict(report)

    @get(
        "/shops/{shop:str}/customers/{shopify_id:str}/export",
        summary="Everything held about one customer (answers customers/data_request)",
        responses=EXPORT_RESPONSES,
    )
    async def export(
        self, request: Request[Any, Any, Any], shop: FromPath[str], shopify_id: FromPath[str]
    ) -> dict[str, Any]:
        shop = inputs.text("shop", shop) or ""
        shopify_id = inputs.text("shopify_id", shopify_id) or ""
        async with database_of(request).connection() as connection:
            document = await export_customer(connection, shop.lower(), shopify_id)
        if document is None:
            raise NotFoundException(f"nothing is held about customer {shopify_id} of {shop}")
        return document

    @get(
        "/shops/{shop:str}/customers/mismatched",
        summary="Customers whose totals differ from Shopify's own figures",
        description=(
            "Customers whose order_count or total_spent differ by more than 0.01 from the "
            "figures of Shopify's last customers/purchasing_summary (shopify_order_count, "
            "shopify_amount_spent). Deleted, merged and redacted customers are left out."
        ),
    )
    async def mismatched(
        self,
        request: Request[Any, Any, Any],
        shop: FromPath[str],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_MISMATCHED)] = 100,
    ) -> MismatchedCustomers:
        shop = (inputs.text("shop", shop) or "").lower()
        async with database_of(request).connection() as connection:
            rows = await connection.fetch(_LIST_MISMATCHED, shop, limit)
        return MismatchedCustomers(
            shop=shop, customers=[MismatchedCustomer(**dict(row)) for row in rows]
        )
