"""The admin API: the ledger, replay, and a customer's data export.

Protected by `Authorization: Bearer <ADMIN_TOKEN>`. Without ADMIN_TOKEN the
endpoints are off and answer 403 saying how to turn them on.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import ValidationException
from litestar.openapi.spec import Example
from litestar.params import Body, FromPath, FromQuery, QueryParameter

from app.admin_api.events import (
    MAX_CURSOR_LENGTH,
    MAX_LIST_LIMIT,
    EventFilter,
    get_event,
    list_events,
)
from app.admin_api.openapi import (
    EVENT_RESPONSES,
    EVENTS_RESPONSES,
    EXPORT_RESPONSES,
    REPLAY_RESPONSES,
)
from app.admin_api.replay import (
    DEFAULT_REPLAY_LIMIT,
    MAX_REPLAY_LIMIT,
    ReplayReport,
    replay_deliveries,
)
from app.admin_api.schemas import EventPage
from app.db.enums import DeliveryStatus
from app.http import inputs
from app.http.errors import NotFound
from app.http.guards import admin_only
from app.http.state import database_of
from app.webhooks.handlers.customer_events import MISMATCHED
from app.webhooks.privacy.export import CustomerExport, export_customer
from app.webhooks.recorded import Event

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
    ) -> EventPage:
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
        async with database_of(request).reading() as connection:
            return await list_events(
                connection, where, limit=limit, cursor=cursor, with_payload=include_payload
            )

    @get(
        "/events/{event_id:uuid}",
        summary="One recorded delivery, with its payload",
        responses=EVENT_RESPONSES,
    )
    async def event(self, request: Request[Any, Any, Any], event_id: FromPath[UUID]) -> Event:
        async with database_of(request).reading() as connection:
            event = await get_event(connection, event_id)
        if event is None:
            raise NotFound(f"no recorded delivery with id {event_id}")
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
    ) -> ReplayReport:
        selection = data.selection()
        if selection.matches_everything():
            raise ValidationException(
                "say which deliveries to replay: ids, webhook_ids, or a filter "
                "(shop, topic, status, since, until)"
            )
        return await replay_deliveries(
            database_of(request),
            selection,
            limit=data.limit,
            cursor=data.cursor,
            dry_run=data.dry_run,
        )

    @get(
        "/shops/{shop:str}/customers/{shopify_id:str}/export",
        summary="Everything held about one customer (answers customers/data_request)",
        responses=EXPORT_RESPONSES,
    )
    async def export(
        self, request: Request[Any, Any, Any], shop: FromPath[str], shopify_id: FromPath[str]
    ) -> CustomerExport:
        shop = inputs.text("shop", shop) or ""
        shopify_id = inputs.text("shopify_id", shopify_id) or ""
        async with database_of(request).reading() as connection:
            document = await export_customer(connection, shop.lower(), shopify_id)
        if document is None:
            raise NotFound(f"nothing is held about customer {shopify_id} of {shop}")
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
        async with database_of(request).reading() as connection:
            rows = await connection.fetch(_LIST_MISMATCHED, shop, limit)
        return MismatchedCustomers(
            shop=shop, customers=[MismatchedCustomer(**dict(row)) for row in rows]
        )
